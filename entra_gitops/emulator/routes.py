"""The emulator's URL table, derived from the registry so a new schema is a new set of routes."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote

from entra_gitops.model.registry import PropertySpec, Registry, ResourceType


class Op(enum.Enum):
    """What a matched URL addresses."""

    COLLECTION = "collection"
    COUNT = "count"
    ITEM = "item"
    ALTERNATE_ITEM = "alternateItem"
    SINGLETON = "singleton"
    SINGLETON_ITEMS = "singletonItems"
    SINGLETON_ITEM = "singletonItem"
    DELTA = "delta"
    LINKS = "links"
    LINK_ADD = "linkAdd"
    LINK_REMOVE = "linkRemove"
    DELETED_LIST = "deletedList"
    DELETED_ITEM = "deletedItem"
    RESTORE = "restore"
    ACTION = "action"
    DIRECTORY_OBJECT = "directoryObject"
    BATCH = "batch"
    AUDIT_LIST = "auditList"
    AUDIT_ITEM = "auditItem"


@dataclass(frozen=True)
class Route:
    """One URL pattern: the operation, the types it may address, and for links or actions, which property."""

    op: Op
    pattern: re.Pattern[str]
    types: tuple[ResourceType, ...]
    prop: PropertySpec | None = None
    alternate_key: str | None = None
    kind: str | None = None  # a derived-type cast segment (microsoft.graph.agentIdentity): only objects of that kind

    @property
    def rtype(self) -> ResourceType:
        return self.types[0]


def _regex(template: str) -> str:
    """`users/{id}/members/$ref` -> a regex with one named group per `{param}`."""
    parts = re.split(r"(\{\w+\})", template)
    return "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)


def _compile(body: str) -> re.Pattern[str]:
    return re.compile(f"^{body}$")


def _cast(name: str) -> str:
    # The SDK sends `graph.user` where documentation writes `microsoft.graph.user`; Graph takes both.
    return "(?:microsoft\\.)?" + re.escape(name.removeprefix("microsoft."))


def _deleted_list_regex(path: str) -> str:
    prefix, _, cast = path.rpartition("/")
    if cast.startswith("microsoft.graph."):
        return _regex(prefix) + "/" + _cast(cast)
    return _regex(path)


class RouteTable:
    """Matches a request path (relative to /v1.0/) to its Route and path parameters."""

    def __init__(self, registry: Registry) -> None:
        self.routes: list[Route] = [
            Route(Op.BATCH, _compile(re.escape("$batch")), ()),
            Route(Op.DIRECTORY_OBJECT, _compile("directoryObjects/(?P<id>[^/]+)"), ()),
            # Not a backed-up type (no schema): the audit log is the emulator's own. directoryaudit-list.md
            # writes the path both as auditLogs/directoryAudits and as /auditLogs/directoryaudits.
            Route(Op.AUDIT_LIST, _compile("(?i:auditLogs/directoryAudits)"), ()),
            Route(Op.AUDIT_ITEM, _compile("(?i:auditLogs/directoryAudits)/(?P<id>[^/]+)"), ()),
        ]
        shared: dict[tuple[Op, str], list[ResourceType]] = {}
        for rtype in registry:
            self._add_type(rtype, shared)
        # Soft-delete item and restore paths are shared by every directory type: one route each.
        for (op, body), types in shared.items():
            self.routes.append(Route(op, _compile(body), tuple(types)))
        self.routes.sort(key=lambda r: _ORDER.index(r.op))

    def _add_type(self, rtype: ResourceType, shared: dict[tuple[Op, str], list[ResourceType]]) -> None:
        add = self.routes.append
        if rtype.singleton_path:
            add(Route(Op.SINGLETON, _compile(_regex(rtype.singleton_path)), (rtype,)))
            for prop in rtype.properties:
                if prop.item_key and prop.is_array:
                    base = _regex(f"{rtype.singleton_path}/{prop.name}")
                    add(Route(Op.SINGLETON_ITEMS, _compile(base), (rtype,), prop))
                    add(Route(Op.SINGLETON_ITEM, _compile(base + "/(?P<key>[^/]+)"), (rtype,), prop))
        if rtype.collection:
            add(Route(Op.COLLECTION, _compile(_regex(rtype.collection)), (rtype,)))
            add(Route(Op.COUNT, _compile(_regex(rtype.collection) + re.escape("/$count")), (rtype,)))
        if rtype.item:
            add(Route(Op.ITEM, _compile(_regex(rtype.item)), (rtype,)))
            for key in rtype.alternate_keys:
                body = _regex(rtype.collection or "") + rf"\({key}='(?P<key>[^']*)'\)"
                add(Route(Op.ALTERNATE_ITEM, _compile(body), (rtype,), alternate_key=key))
        if rtype.collection and rtype.item:
            for kind in rtype.kinds:
                # Derived-type casts: after the collection (`servicePrincipals/microsoft.graph.agentIdentity`), and
                # after the key (agentidentity-get) or, as agentuser-get writes it, between collection and key.
                cast = _regex(rtype.collection) + "/" + _cast(kind)
                add(Route(Op.COLLECTION, _compile(cast), (rtype,), kind=kind))
                add(Route(Op.ITEM, _compile(_regex(rtype.item) + "/" + _cast(kind)), (rtype,), kind=kind))
                add(Route(Op.ITEM, _compile(cast + "/(?P<id>[^/]+)"), (rtype,), kind=kind))
        if rtype.delta:
            add(Route(Op.DELTA, _compile(_regex(rtype.delta) + r"(?:\(\))?"), (rtype,)))
        for prop in rtype.links:
            assert prop.link is not None
            add(Route(Op.LINKS, _compile(_regex(prop.link.list_path)), (rtype,), prop))
            add(Route(Op.LINK_ADD, _compile(_regex(prop.link.add_path)), (rtype,), prop))
            add(Route(Op.LINK_REMOVE, _compile(_regex(prop.link.remove_path)), (rtype,), prop))
        for prop in rtype.properties:
            if prop.write_action:
                add(Route(Op.ACTION, _compile(_regex(prop.write_action)), (rtype,), prop))
        if rtype.soft_delete:
            add(Route(Op.DELETED_LIST, _compile(_deleted_list_regex(rtype.soft_delete.list_path)), (rtype,)))
            shared.setdefault((Op.DELETED_ITEM, _regex(rtype.soft_delete.item_path)), []).append(rtype)
            shared.setdefault((Op.RESTORE, _regex(rtype.soft_delete.restore_path)), []).append(rtype)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route of a path as sent (percent-encoded), with its parameters decoded."""
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


# Literal paths first, so `users/delta` and `deletedItems/microsoft.graph.user` never read as ids.
_ORDER = [
    Op.BATCH,
    Op.AUDIT_LIST,
    Op.AUDIT_ITEM,
    Op.DELTA,
    Op.COUNT,
    Op.DELETED_LIST,
    Op.RESTORE,
    Op.ACTION,
    Op.LINK_ADD,
    Op.LINK_REMOVE,
    Op.LINKS,
    Op.SINGLETON_ITEM,
    Op.SINGLETON_ITEMS,
    Op.SINGLETON,
    Op.ALTERNATE_ITEM,
    Op.DELETED_ITEM,
    Op.COLLECTION,
    Op.ITEM,
    Op.DIRECTORY_OBJECT,
]
