"""Who changed it: directory audit events as values, and the latest event behind each change (pure).

Graph's directoryAudit (resources/directoryaudit.md) names who did what to which objects:
`initiatedBy.user` or `initiatedBy.app`, `targetResources[]` with their `modifiedProperties[]`, and when.
Events come from the tenant, so every one passes `parse_event` first: a malformed event is skipped, never
guessed at. Matching is by object id only; display names are shown, never compared. Nothing here
escapes text except the commit-message lines, which are finished text for `git log` on a terminal.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from entra_gitops.model.ids import fold_id
from entra_gitops.model.textsafe import printable

# activityDateTime as Graph writes it: seconds, an optional fraction of up to 7 digits, Z or an offset.
_WHEN = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
_TEXT_LIMIT = 1024  # longer names or ids than this are no directory object's: the event is not trusted
# Results that mean the change was made (resources/directoryaudit.md: success, failure, timeout, ...).
_DONE = frozenset({"success"})


class ActorKind(enum.Enum):
    """Who initiated an event: a signed-in user, or an application on its own."""

    USER = "user"
    APP = "app"


@dataclass(frozen=True)
class Actor:
    """The initiator of an audit event: a user (id, upn, name) or an app (appId, name, servicePrincipalId)."""

    kind: ActorKind
    id: str | None = None  # a user's object id
    user_principal_name: str | None = None
    display_name: str | None = None
    app_id: str | None = None
    service_principal_id: str | None = None

    @property
    def label(self) -> str:
        """How people name the actor, as the tenant has it (not escaped): `mallory@contoso.com`, `app Contoso Sync`."""
        if self.kind is ActorKind.USER:
            return self.user_principal_name or self.display_name or self.id or "an unnamed user"
        return f"app {self.display_name or self.app_id or self.service_principal_id or '(unnamed)'}"

    @property
    def key(self) -> tuple[str, str]:
        """What makes two actors the same one: the kind and the most stable id the event gave."""
        if self.kind is ActorKind.USER:
            return (self.kind.value, fold_id(self.id or self.user_principal_name or self.display_name or ""))
        return (self.kind.value, fold_id(self.app_id or self.service_principal_id or self.display_name or ""))

    def document(self) -> dict[str, Any]:
        """The actor as JSON, in Graph's own field names."""
        if self.kind is ActorKind.USER:
            return {
                "type": "user",
                "id": self.id,
                "userPrincipalName": self.user_principal_name,
                "displayName": self.display_name,
            }
        return {
            "type": "app",
            "appId": self.app_id,
            "displayName": self.display_name,
            "servicePrincipalId": self.service_principal_id,
        }


@dataclass(frozen=True)
class Target:
    """One object an event touched: its id (folded) and the properties it says were modified (lower-cased)."""

    id: str
    type: str | None
    display_name: str | None
    modified: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AuditEvent:
    """One directory audit event, checked: when, what, who, to which objects."""

    when: dt.datetime  # aware, UTC
    activity: str
    actor: Actor
    targets: tuple[Target, ...]
    correlation_id: str | None = None
    category: str | None = None

    def touches(self, object_id: str) -> bool:
        return any(t.id == object_id for t in self.targets)

    def modifies(self, object_id: str, prop: str) -> bool:
        wanted = prop.lower()
        return any(t.id == object_id and wanted in t.modified for t in self.targets)


@dataclass(frozen=True)
class ChangedBy:
    """Who made a change and when, from the latest audit event that matches it."""

    actor: Actor
    when: dt.datetime
    correlation_id: str | None
    activity: str

    @property
    def when_text(self) -> str:
        """activityDateTime as Graph writes it, to the microsecond when it has one: 2026-11-21T10:41:07.123456Z."""
        if self.when.microsecond:
            return self.when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return utc_seconds(self.when)

    @property
    def short_when(self) -> str:
        """The time as a line of a report shows it: 2026-11-21 10:41Z."""
        return self.when.strftime("%Y-%m-%d %H:%MZ")

    def document(self) -> dict[str, Any]:
        return {
            "actor": self.actor.document(),
            "activityDateTime": self.when_text,
            "correlationId": self.correlation_id,
            "activityDisplayName": self.activity,
        }


class Untraced(enum.Enum):
    """Why a change has no ChangedBy: the log was read and holds no event for it, or it could not be read."""

    NOT_IN_LOG = "notInAuditLog"  # older than the log's retention, or made by a sync, which logs no such event
    UNKNOWN = "unknown"

    @property
    def text(self) -> str:
        return "not in the audit log" if self is Untraced.NOT_IN_LOG else "unknown"


By = ChangedBy | Untraced


def utc_seconds(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_when(value: Any) -> dt.datetime | None:
    """An activityDateTime as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _WHEN.match(value)
    if match is None:
        return None
    base, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    try:
        moment = dt.datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return moment.astimezone(dt.UTC)


def _text(value: Any) -> str | None:
    """A short string, or None; anything else means the field is absent."""
    if isinstance(value, str) and value and len(value) <= _TEXT_LIMIT:
        return value
    return None


def _actor(initiated: Any) -> Actor | None:
    if not isinstance(initiated, Mapping):
        return None
    user, app = initiated.get("user"), initiated.get("app")
    if isinstance(user, Mapping):
        found = Actor(
            ActorKind.USER,
            id=_text(user.get("id")),
            user_principal_name=_text(user.get("userPrincipalName")),
            display_name=_text(user.get("displayName")),
        )
        if found.id or found.user_principal_name or found.display_name:
            return found
    if isinstance(app, Mapping):
        found = Actor(
            ActorKind.APP,
            display_name=_text(app.get("displayName")),
            app_id=_text(app.get("appId")),
            service_principal_id=_text(app.get("servicePrincipalId")),
        )
        if found.app_id or found.service_principal_id or found.display_name:
            return found
    return None


def _target(raw: Any) -> Target | None:
    if not isinstance(raw, Mapping):
        return None
    target_id = _text(raw.get("id"))
    if target_id is None:
        return None
    modified = raw.get("modifiedProperties") or ()
    if not isinstance(modified, list | tuple):
        return None
    names = frozenset(
        name.lower() for item in modified if isinstance(item, Mapping) and (name := _text(item.get("displayName")))
    )
    # Graph's own examples spell the key both `type` and `Type`.
    kind = _text(raw.get("type")) or _text(raw.get("Type"))
    return Target(fold_id(target_id), kind, _text(raw.get("displayName")), names)


def parse_event(raw: Any) -> AuditEvent | None:
    """One directoryAudit as Graph sends it, checked; None when it is malformed or records no change made."""
    if not isinstance(raw, Mapping):
        return None
    when = parse_when(raw.get("activityDateTime"))
    actor = _actor(raw.get("initiatedBy"))
    result = raw.get("result")
    targets_raw = raw.get("targetResources")
    if when is None or actor is None or not isinstance(targets_raw, list | tuple):
        return None
    if result is not None and (not isinstance(result, str) or result.lower() not in _DONE):
        return None  # a failed or timed-out operation changed nothing
    targets = tuple(t for t in (_target(r) for r in targets_raw) if t is not None)
    if not targets:
        return None
    return AuditEvent(
        when=when,
        activity=_text(raw.get("activityDisplayName")) or "(unnamed activity)",
        actor=actor,
        targets=targets,
        correlation_id=_text(raw.get("correlationId")),
        category=_text(raw.get("category")),
    )


def parse_events(raws: Iterable[Any]) -> tuple[tuple[AuditEvent, ...], int]:
    """Every well-formed event, newest first, and how many were skipped as malformed or failed."""
    events, skipped = [], 0
    for raw in raws:
        event = parse_event(raw)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    # Stable: among events of the same instant, the order Graph gave (newest first) stays.
    events.sort(key=lambda e: e.when, reverse=True)
    return tuple(events), skipped


@dataclass(frozen=True)
class ObjectAttribution:
    """Who changed one object: the object as a whole, each changed property, each added or removed link member."""

    changed_by: By
    properties: Mapping[str, By] = field(default_factory=lambda: MappingProxyType({}))
    links: Mapping[tuple[str, str], By] = field(default_factory=lambda: MappingProxyType({}))  # (link, member id)

    def property(self, name: str) -> By:
        return self.properties.get(name, self.changed_by)

    def link(self, name: str, member_id: str) -> By:
        return self.links.get((name, fold_id(member_id)), self.changed_by)


@dataclass(frozen=True)
class Attribution:
    """The attribution of a whole report: per (type, id), and whether the audit log could be read at all."""

    available: bool
    objects: Mapping[tuple[str, str], ObjectAttribution] = field(default_factory=lambda: MappingProxyType({}))
    since: dt.datetime | None = None

    def of(self, type_name: str, object_id: str) -> ObjectAttribution:
        found = self.objects.get((type_name, fold_id(object_id)))
        if found is not None:
            return found
        return ObjectAttribution(Untraced.NOT_IN_LOG if self.available else Untraced.UNKNOWN)


UNAVAILABLE = Attribution(False)


@dataclass(frozen=True)
class Wanted:
    """What one changed object asks to be attributed: its id, changed property names, changed link members."""

    type_name: str
    object_id: str
    properties: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (link name, member id)


def _by(event: AuditEvent | None) -> By:
    if event is None:
        return Untraced.NOT_IN_LOG
    return ChangedBy(event.actor, event.when, event.correlation_id, event.activity)


def in_window(
    events: Iterable[AuditEvent], since: dt.datetime | None, until: dt.datetime | None = None
) -> tuple[AuditEvent, ...]:
    """The events from `since` (inclusive: a backup's time has whole seconds) up to `until`, newest first."""
    return tuple(e for e in events if (since is None or e.when >= since) and (until is None or e.when <= until))


def _index(events: Sequence[AuditEvent]) -> dict[str, list[AuditEvent]]:
    by_id: dict[str, list[AuditEvent]] = {}
    for event in events:
        for target_id in dict.fromkeys(t.id for t in event.targets):
            by_id.setdefault(target_id, []).append(event)
    return by_id


def attribute_one(events_of: Sequence[AuditEvent], wanted: Wanted) -> ObjectAttribution:
    """The attribution of one object from the events naming it (newest first)."""
    object_id = fold_id(wanted.object_id)
    latest = events_of[0] if events_of else None
    properties = {
        name: _by(next((e for e in events_of if e.modifies(object_id, name)), latest)) for name in wanted.properties
    }
    # A link add or remove lists the owner and the member as targets; an event naming only one is another change.
    links = {
        (name, fold_id(member)): _by(next((e for e in events_of if e.touches(fold_id(member))), None))
        for name, member in wanted.links
    }
    return ObjectAttribution(_by(latest), MappingProxyType(properties), MappingProxyType(links))


def attribute(
    events: Iterable[AuditEvent],
    wanted: Iterable[Wanted],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Attribution:
    """For each wanted object, property and link, the latest event behind it among those from `since` to `until`.

    Object: the latest event naming its id. Property: the latest naming it in that target's modifiedProperties
    (case-insensitive), else the object's latest. Link: the latest naming both the owner and the member.
    """
    chosen = sorted(in_window(events, since, until), key=lambda e: e.when, reverse=True)
    by_id = _index(chosen)
    found = {(w.type_name, fold_id(w.object_id)): attribute_one(by_id.get(fold_id(w.object_id), []), w) for w in wanted}
    return Attribution(True, MappingProxyType(found), since)


@dataclass(frozen=True)
class ObjectActors:
    """The distinct actors behind one changed object, newest first, each with their latest event's time."""

    type_name: str
    object_id: str
    display_name: str | None
    actors: tuple[tuple[Actor, dt.datetime], ...]

    @property
    def line(self) -> str:
        """One commit-message line, printable: `user 6f1d0c1e (Alice): mallory@contoso.com (2026-11-21 10:41Z)`."""
        name = f" ({self.display_name})" if self.display_name else ""
        who = ", ".join(f"{a.label} ({w.strftime('%Y-%m-%d %H:%MZ')})" for a, w in self.actors)
        return printable(f"{self.type_name} {self.object_id}{name}: {who or Untraced.NOT_IN_LOG.text}")


def actors_of_changes(
    events: Iterable[AuditEvent],
    changed: Iterable[tuple[str, str, str | None]],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[ObjectActors, ...]:
    """Per changed (type_name, object_id, display name), the distinct actors of the events naming it, newest first.

    For the snapshot's commit message, so `git log` of tenant-state/ says who as well as what.
    """
    by_id = _index(sorted(in_window(events, since, until), key=lambda e: e.when, reverse=True))
    found = []
    for type_name, object_id, display in changed:
        seen: dict[tuple[str, str], tuple[Actor, dt.datetime]] = {}
        for event in by_id.get(fold_id(object_id), ()):
            seen.setdefault(event.actor.key, (event.actor, event.when))
        found.append(ObjectActors(type_name, object_id, display, tuple(seen.values())))
    return tuple(found)


def by_document(by: By) -> dict[str, Any] | str:
    """`changedBy` as JSON: the ChangedBy's document, or the Untraced's name (`notInAuditLog`, `unknown`)."""
    return by.document() if isinstance(by, ChangedBy) else by.value


def by_from_document(document: Any) -> By:
    """A `changedBy` read back from a file (a plan): what by_document wrote; ValueError for anything else."""
    if isinstance(document, str):
        return Untraced(document)
    if not isinstance(document, Mapping) or not isinstance(document.get("actor"), Mapping):
        raise ValueError("changedBy is neither a status nor an actor with a time")
    actor = document["actor"]
    when = parse_when(document.get("activityDateTime"))
    if when is None:
        raise ValueError(f"changedBy has no valid activityDateTime: {document.get('activityDateTime')!r}")
    kind = ActorKind(actor.get("type"))
    found = (
        Actor(kind, _text(actor.get("id")), _text(actor.get("userPrincipalName")), _text(actor.get("displayName")))
        if kind is ActorKind.USER
        else Actor(
            kind,
            display_name=_text(actor.get("displayName")),
            app_id=_text(actor.get("appId")),
            service_principal_id=_text(actor.get("servicePrincipalId")),
        )
    )
    return ChangedBy(
        found, when, _text(document.get("correlationId")), _text(document.get("activityDisplayName")) or ""
    )


def by_text(by: By) -> str:
    """One line, as the tenant has it (escape before showing): `by mallory@contoso.com at 2026-11-21 10:41Z`."""
    if isinstance(by, ChangedBy):
        return f"by {by.actor.label} at {by.short_when}"
    return f"changed by: {by.text}"
