"""What an apply did, as frozen values: each failure with Graph's error, and the outcome history records."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from entra_gitops.model.errors import GraphError
from entra_gitops.recovery.steps import Write


class Status(enum.Enum):
    """How an apply ended, as recovery history records it."""

    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_WARNINGS = "succeededWithWarnings"
    PARTIALLY_APPLIED = "partiallyApplied"
    FAILED = "failed"


@dataclass(frozen=True)
class Failure:
    """A write Graph refused, as history keeps it."""

    write: int
    type_name: str
    object_id: str
    method: str
    path: str
    status: int | None
    code: str | None
    message: str
    request_id: str | None

    @classmethod
    def of(cls, index: int, write: Write, err: GraphError) -> Failure:
        return cls(
            index, write.type_name, write.object_id, write.method, write.path, err.status, err.code, str(err),
            err.request_id,
        )  # fmt: skip

    def record(self) -> dict[str, Any]:
        return {
            "write": self.write,
            "type": self.type_name,
            "id": self.object_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply did, for the summary and for recovery history (writes by their index in the plan)."""

    status: Status = Status.SUCCEEDED
    earlier: tuple[int, ...] = ()  # done by an earlier, interrupted run of the same plan
    written: tuple[int, ...] = ()
    confirmed: tuple[int, ...] = ()
    stale: tuple[tuple[str, str], ...] = ()
    failures: tuple[Failure, ...] = ()
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    started: str = ""
    finished: str = ""
    recreated: tuple[tuple[str, str, str], ...] = ()  # (type, backup id, new id) of each object created again

    @property
    def applied(self) -> tuple[int, ...]:
        """Every write in effect after this run: done earlier, written now, or confirmed in the tenant."""
        return self.earlier + self.written + self.confirmed


def ending(succeeded: int, failures: tuple[Failure, ...], warned: bool) -> Status:
    """How a run ended: any failure makes it partial (or failed when nothing succeeded); warnings qualify success."""
    if failures:
        return Status.PARTIALLY_APPLIED if succeeded else Status.FAILED
    return Status.SUCCEEDED_WITH_WARNINGS if warned else Status.SUCCEEDED
