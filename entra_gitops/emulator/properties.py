"""What Graph knows of each type's properties: the names $select and writes may use, and how a reply is shaped."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from entra_gitops.emulator import values
from entra_gitops.emulator.odata import project
from entra_gitops.emulator.protocol import bad_request
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.registry import ResourceType


class Properties:
    """Property names per type, learnt once from the schema and the seed, and the checks built on them."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._known: dict[str, frozenset[str]] = {}

    def known(self, rtype: ResourceType) -> frozenset[str]:
        """Names Graph would accept in $select for this type: the schema's and any the seed served."""
        if rtype.name not in self._known:
            names = {p.name for p in rtype.properties} | set(rtype.default_select or ())
            objects = [self.tenant.singletons[rtype.name]] if rtype.name in self.tenant.singletons else []
            objects.extend(itertools.islice(self.tenant.all_objects(rtype), 200))
            for obj in objects:
                names.update(obj)
            self._known[rtype.name] = frozenset(names)
        return self._known[rtype.name]

    def check_select(self, rtype: ResourceType, select: tuple[str, ...] | None) -> None:
        for name in select or ():
            if name not in self.known(rtype):
                raise bad_request(f"Could not find a property named '{name}' on type '{rtype.odata_type}'.")

    def shape(self, rtype: ResourceType, obj: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
        if select is None and rtype.default_select is not None:
            select = rtype.default_select
        arrays = frozenset(p.name for p in rtype.properties if p.is_array)
        return project(obj, tuple(n for n in select if not is_link(rtype, n)) if select else None, arrays)

    def check_writable(
        self,
        rtype: ResourceType,
        body: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None = None,
        creating: bool = False,
    ) -> dict[str, Any]:
        """Refuse what Graph refuses: read-only, unknown and action-only properties, values of the wrong type or
        outside an enum, built-in and synced objects. Returns the body as stored (OData's "true" read as true)."""
        if current is not None and rtype.is_read_only(current):
            raise bad_request(f"Built-in {rtype.name} '{current.get('id')}' cannot be modified.")
        if current is not None and rtype.is_synchronized(current):
            raise bad_request(
                "Unable to update the specified properties for on-premises mastered Directory Sync objects "
                "or objects currently undergoing migration."
            )
        if (
            rtype.subtypes
            and not creating
            and current is not None
            and body.get("@odata.type", current.get("@odata.type")) != current.get("@odata.type")
        ):
            raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match the object's type.")
        if rtype.subtypes and "@odata.type" not in body:
            raise bad_request(f"The request body for a {rtype.name} must state its '@odata.type'.")
        if rtype.kinds and "@odata.type" in body:
            body = _stated_kind(rtype, body, current)
        known = self.known(rtype)
        for name in body:
            if name == "@odata.type" or name == "passwordProfile" or name.endswith("@odata.bind"):
                continue
            prop = rtype.prop(name)
            if prop is None and name not in known:
                raise bad_request(f"Property '{name}' does not exist as a declared property or extension property.")
            if creating and name in rtype.server_generated:
                continue
            if prop is not None and prop.read_only and not creating:
                raise bad_request(f"Property '{name}' is read-only and cannot be set.")
            if prop is not None and prop.write_action and not creating:
                raise bad_request(
                    f"Property '{name}' can only be changed through {prop.write_action.rsplit('/', 1)[-1]}."
                )
            if prop is not None and prop.link is not None:
                raise bad_request(f"Property '{name}' is a relationship: use its $ref endpoint.")
        return values.checked(rtype, body)


def _stated_kind(rtype: ResourceType, body: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body with its @odata.type as stored: a kind as `#microsoft.graph.…`, the base type left out.

    An object's type never changes: a PATCH may state the base type or the object's own kind, nothing else.
    """
    stated = str(body["@odata.type"]).removeprefix("#")
    if stated.startswith("graph."):
        stated = f"microsoft.{stated}"
    if stated != rtype.odata_type and stated not in rtype.kinds:
        raise bad_request(f"The @odata.type '{body['@odata.type']}' is not a {rtype.odata_type}.")
    kind = f"#{stated}" if stated in rtype.kinds else None
    if current is not None and kind is not None and kind != current.get("@odata.type"):
        raise bad_request(f"The @odata.type '{body['@odata.type']}' does not match the object's type.")
    rest = {k: v for k, v in body.items() if k != "@odata.type"}
    return {"@odata.type": kind, **rest} if kind else rest


def short(kind: str) -> str:
    """`microsoft.graph.agentIdentity` (or `#…`, `graph.…`) -> `agentIdentity`, as ResourceType.kind_of names kinds."""
    return kind.rsplit(".", 1)[-1]


def is_link(rtype: ResourceType, name: str) -> bool:
    prop = rtype.prop(name)
    return prop is not None and prop.link is not None
