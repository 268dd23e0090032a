"""Loads an emulator tenant from a seed: the demo tenant, a file in Graph's shapes, or a synthetic spec."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase
from ruamel.yaml.error import YAMLError

from entra_gitops.emulator.audit import seed_events
from entra_gitops.emulator.protocol import GraphFault
from entra_gitops.emulator.routes import Op, RouteTable
from entra_gitops.emulator.store import Tenant
from entra_gitops.model.errors import SeedError
from entra_gitops.model.references import object_references
from entra_gitops.model.registry import Registry, ResourceType

DIRECTORY_DELETED = "directory/deletedItems"
DEFAULT_TENANT_ID = "00000000-0000-4000-8000-000000000000"

SEED_HELP = "a seed is 'demo', a .json/.yaml file path, or 'synthetic:users=N,groups=N,apps=N,...'"


def read_seed(spec: str) -> tuple[Mapping[str, Any], str]:
    """The seed mapping that `spec` names, and a label for messages."""
    if spec == "demo":
        text = resources.files("entra_gitops.emulator").joinpath("seeds/demo.yaml").read_text(encoding="utf-8")
        return _parse_yaml(text, "demo.yaml"), "demo.yaml"
    if spec.startswith("synthetic:") or spec == "synthetic":
        from entra_gitops.emulator import synthetic

        try:
            return synthetic.generate(synthetic.parse_spec(spec.partition(":")[2])), spec
        except ValueError as err:
            raise SeedError(f"seed {spec!r}: {err}") from None
    path = Path(spec)
    if not path.is_file():
        raise SeedError(f"seed {spec!r}: no such file", hint=SEED_HELP)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SeedError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    else:
        data = _parse_yaml(text, str(path))
    return data, str(path)


def _parse_yaml(text: str, label: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        raise SeedError(f"{where}: invalid YAML: {getattr(err, 'problem', None) or err}") from None


def _line(container: Any, key: Any) -> str:
    """':LINE' for a key of a YAML mapping (or index of a list) when the loader kept positions."""
    lc = getattr(container, "lc", None)
    try:
        line = lc.key(key)[0] if isinstance(key, str) else lc.item(key)[0]
    except (AttributeError, KeyError, IndexError, TypeError):
        return ""
    return f":{line + 1}"


def _plain(value: Any) -> Any:
    """Ruamel's round-trip containers as plain dicts and lists, so the tenant holds JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class SeedLoader:
    """Puts a seed mapping into a Tenant, refusing unknown keys and dangling references."""

    def __init__(self, registry: Registry, data: Mapping[str, Any], label: str) -> None:
        if not isinstance(data, Mapping):
            raise SeedError(f"{label}: a seed is a mapping of Graph collection paths to objects")
        self.registry = registry
        self.data = data
        self.label = label
        self.routes = RouteTable(registry)
        self.by_odata_type = {f"#{t.odata_type}": t for t in registry}
        # A deleted agent user is listed with its own @odata.type, and is a user.
        self.by_odata_type.update({f"#{k}": t for t in registry for k in t.kinds})

    def fail(self, key: Any, message: str, index: int | None = None) -> SeedError:
        where = _line(self.data, key)
        if index is not None:
            where = _line(self.data[key], index) or where
        return SeedError(f"{self.label}{where}: {key}: {message}")

    def load(self) -> Tenant:
        organization = next((t for t in self.registry if t.tenant_identity), None)
        orgs = self.data.get(organization.collection) if organization and organization.collection else None
        tenant_id = (
            orgs[0]["id"] if isinstance(orgs, list) and orgs and isinstance(orgs[0], Mapping) else DEFAULT_TENANT_ID
        )
        tenant = Tenant(self.registry, str(tenant_id))
        later: list[tuple[str, Callable[[], None]]] = []
        for key, value in self.data.items():
            key = str(key)
            try:
                self._load_key(tenant, key, value, later)
            except GraphFault as fault:
                raise self.fail(key, fault.message) from None
        for key, step in later:
            try:
                step()
            except GraphFault as fault:
                raise self.fail(key, fault.message) from None
        self._check_references(tenant)
        return tenant

    def _objects(self, key: str, value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        if not isinstance(value, list):
            raise self.fail(key, "expected a list of objects")
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise self.fail(key, f"item {index} is not an object with a string id", index)
            # Round-trip YAML containers become plain values; generated seeds are plain already.
            yield index, _plain(item) if isinstance(item, CommentedBase) else item

    def _load_key(self, tenant: Tenant, key: str, value: Any, later: list[tuple[str, Callable[[], None]]]) -> None:
        if key == DIRECTORY_DELETED:
            for index, obj in self._objects(key, value):
                rtype = self.by_odata_type.get(str(obj.get("@odata.type")))
                if rtype is None or not rtype.is_directory_object:
                    raise self.fail(
                        key,
                        f"item {index} needs an '@odata.type' of a directory type, like '#microsoft.graph.user'",
                        index,
                    )
                later.append((key, lambda r=rtype, o=obj: self._insert_deleted(tenant, r, o)))
            return
        matched = self.routes.match(key)
        if matched is None:
            raise self.fail(key, f"unknown collection ({self._expected()})")
        route, params = matched
        if route.op is Op.AUDIT_LIST:
            # Events from before the emulator started, as Graph's log holds them (audit.py checks their shape).
            if not isinstance(value, list):
                raise self.fail(key, "expected a list of directoryAudit events")
            try:
                seed_events(tenant, [_plain(v) for v in value])
            except ValueError as err:
                raise self.fail(key, str(err)) from None
            return
        rtype = route.rtype if route.types else None
        if route.op is Op.SINGLETON and rtype is not None:
            if not isinstance(value, Mapping):
                raise self.fail(key, "a singleton is one object")
            obj = _plain(value)
            obj.setdefault("id", rtype.name)
            tenant.set_singleton(rtype, obj)
        elif route.op is Op.COLLECTION and rtype is not None:
            objects = list(self._objects(key, value))
            for index, obj in objects:
                self._check_kind(key, rtype, obj, index, route.kind)
            if rtype.parent is None:
                for _, obj in objects:
                    tenant.insert(rtype, obj)
            else:
                later.insert(0, (key, lambda: self._insert_children(tenant, route.rtype, params, objects, key)))
        elif route.op is Op.LINKS and rtype is not None and route.prop is not None:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(key, "expected a list of object ids")
            later.append(
                (key, lambda: self._insert_links(tenant, route.rtype, route.prop.name, params["id"], value, key))
            )
        elif route.op is Op.DELETED_LIST and rtype is not None:
            for _, obj in self._objects(key, value):
                later.append((key, lambda o=obj: self._insert_deleted(tenant, route.rtype, o)))
        else:
            raise self.fail(key, f"not a collection a seed can fill ({self._expected()})")

    def _check_kind(self, key: str, rtype: ResourceType, obj: dict[str, Any], index: int, cast: str | None) -> None:
        """An object's @odata.type is its type or one of its kinds; under a cast key it is that kind."""
        if cast is not None:
            obj.setdefault("@odata.type", f"#{cast}")
        stated = obj.get("@odata.type")
        if stated is None or stated == f"#{rtype.odata_type}" or rtype.subtypes:
            return
        if rtype.kind_of(obj) is None or (cast is not None and str(stated).removeprefix("#") != cast):
            kinds = ", ".join(f"'#{k}'" for k in rtype.kinds) or "none"
            message = f"item {index}: '@odata.type' {stated!r} is not a kind of {rtype.name} ({kinds})"
            raise self.fail(key, message, index)
        obj["@odata.type"] = f"#{str(stated).removeprefix('#')}"  # served as Graph writes it

    def _expected(self) -> str:
        return (
            "expected a type's collection path such as 'users', a singleton path, 'groups/<id>/members', "
            "'directory/deletedItems' or 'auditLogs/directoryAudits'"
        )

    def _insert_children(
        self,
        tenant: Tenant,
        rtype: ResourceType,
        params: Mapping[str, str],
        objects: list[tuple[int, dict[str, Any]]],
        key: str,
    ) -> None:
        assert rtype.parent is not None
        parent_type = self.registry.get(rtype.parent.type_name)
        parent_id = params[rtype.parent.param]
        if tenant.find(parent_type, parent_id) is None:
            raise self.fail(key, f"{rtype.parent.type_name} {parent_id!r} does not exist")
        for _, obj in objects:
            tenant.insert(rtype, obj, parent_id)

    def _insert_links(
        self, tenant: Tenant, rtype: ResourceType, link: str, owner_id: str, members: list[str], key: str
    ) -> None:
        if tenant.find(rtype, owner_id) is None:
            raise self.fail(key, f"{rtype.name} {owner_id!r} does not exist")
        for member_id in members:
            if member_id not in tenant.directory:
                raise self.fail(key, f"member {member_id!r} is not a directory object in this seed")
            tenant.add_link((rtype.name, link), owner_id, member_id)

    def _insert_deleted(self, tenant: Tenant, rtype: ResourceType, obj: dict[str, Any]) -> None:
        deleted_at = obj.get("deletedDateTime")
        tenant.insert(rtype, obj)
        tenant.delete(rtype, obj["id"])
        if deleted_at:
            obj["deletedDateTime"] = deleted_at

    def _check_references(self, tenant: Tenant) -> None:
        """Every id a schema marks as a reference (x-entra-ref) must name an object of the seed.

        Except where Graph itself keeps ids of objects deleted since (`staleReferences`: a Conditional
        Access policy may still name a user or group that is gone), which is a normal tenant.
        """
        for rtype in self.registry:
            if rtype.stale_references or not rtype.referenced_types:
                continue
            objects = list(tenant.all_objects(rtype))
            if rtype.name in tenant.singletons:
                objects.append(tenant.singletons[rtype.name])
            for obj in objects:
                for reference in object_references(rtype, obj, links=False):
                    if not any(_exists(tenant, self.registry.get(t), reference.target) for t in reference.types):
                        raise SeedError(
                            f"{self.label}: {rtype.name} {obj.get('id')!r}: {reference.path} refers to "
                            f"{reference.target!r}, which is not a {' or '.join(reference.types)} in this seed"
                        )


def _exists(tenant: Tenant, rtype: ResourceType, object_id: str) -> bool:
    if rtype.parent is not None:
        return any(object_id in bucket for bucket in tenant.live[rtype.name].values())
    return tenant.find(rtype, object_id) is not None or object_id in tenant.deleted[rtype.name]


def load_tenant(registry: Registry, spec: str) -> Tenant:
    """A tenant built from the seed `spec` (see SEED_HELP)."""
    data, label = read_seed(spec)
    return SeedLoader(registry, data, label).load()
