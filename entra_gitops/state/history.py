"""Recovery history as the repository holds it: the records under history/, and what they say was re-created."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from entra_gitops.model import canonical
from entra_gitops.model.errors import StateFileError
from entra_gitops.model.ids import fold_id
from entra_gitops.state.gitstore import StateRepo

HISTORY_DIR = "history"


class Recreation(NamedTuple):
    """One object an apply created again from a backup: its type, the id the backup had, the id Graph gave it."""

    type_name: str
    backup_id: str
    new_id: str
    backup: str  # the plan's source: a backup tag such as backup/20261201T030000Z
    record: str  # the history record's id

    def line(self) -> str:
        return (
            f"{self.type_name} {self.backup_id} re-created from {self.backup} as {self.new_id} (history {self.record})"
        )


@dataclass(frozen=True)
class History:
    """The readable history records at HEAD, newest first, and a warning for each record that is not readable."""

    records: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]

    @property
    def plans(self) -> frozenset[str]:
        """The checksums of the plans history has a record of."""
        return frozenset(str(r.get("planChecksum")) for r in self.records)

    def recreations(self, since: Mapping[str, dt.datetime | None]) -> tuple[Recreation, ...]:
        """Each re-creation by an apply that finished after `since[type]` (None: any time), oldest apply first."""
        found = []
        for record in reversed(self.records):
            finished = _moment(record.get("finished"))
            entries = record.get("recreated")
            if finished is None or not isinstance(entries, list):
                continue  # a record from before re-creation, or one whose time cannot be read: it names nothing
            for entry in entries:
                if not isinstance(entry, Mapping):
                    continue
                type_name, old, new = (str(entry.get(k, "")) for k in ("type", "backupId", "newId"))
                after = since.get(type_name)
                if type_name in since and (after is None or finished > after) and old and new:
                    found.append(Recreation(type_name, old, new, str(record.get("backup")), str(record.get("id"))))
        return tuple(found)


def _moment(value: object) -> dt.datetime | None:
    try:
        moment = (
            value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def read_history(store: StateRepo) -> History:
    """Every readable recovery history record at HEAD, newest first; an unreadable one becomes a warning."""
    records, warnings = [], []
    for path, content in store.read_files("HEAD", HISTORY_DIR).items():
        if not path.endswith(".yaml"):
            continue
        try:
            records.append(canonical.load(content, path))
        except StateFileError as err:
            # One damaged file must not hide the others, nor block every later apply (which reads them all).
            warnings.append(f"skipped {err}: not a readable recovery record")
    records.sort(key=lambda r: str(r.get("started")), reverse=True)
    return History(tuple(records), tuple(warnings))


def recreated_in(recreations: tuple[Recreation, ...], added: Mapping[str, frozenset[str]]) -> tuple[Recreation, ...]:
    """The re-creations whose new object this snapshot adds (type -> folded ids of its added objects)."""
    return tuple(r for r in recreations if fold_id(r.new_id) in added.get(r.type_name, frozenset()))
