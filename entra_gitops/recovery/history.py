"""Recovery history: one record per apply, committed under history/ and read back newest first."""

from __future__ import annotations

import datetime as dt
from typing import Any

from entra_gitops.model import canonical
from entra_gitops.recovery.outcome import ApplyOutcome
from entra_gitops.recovery.plan import Plan
from entra_gitops.recovery.steps import LINK_STEPS
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.history import HISTORY_DIR, History, read_history

__all__ = ["HISTORY_DIR", "History", "history_record", "read_history", "record_history"]


def history_record(plan: Plan, outcome: ApplyOutcome) -> dict[str, Any]:
    """What recovery history keeps of one apply (no request bodies: they are in the plan)."""
    applied = [plan.writes[i] for i in outcome.applied]
    return {
        "id": f"{outcome.started.translate(str.maketrans('', '', '-:.'))}-{plan.checksum.removeprefix('sha256:')[:12]}",
        "status": outcome.status.value,
        "backup": plan.backup,
        "backupCommit": plan.backup_commit,
        "source": plan.kind.value,
        "tenant": plan.tenant,
        "planChecksum": plan.checksum,
        "started": outcome.started,
        "finished": outcome.finished,
        "writes": len(plan.writes),
        "written": len(applied),
        "objectsModified": sorted({f"{w.type_name}/{w.object_id}" for w in applied}),
        "linksModified": sum(1 for w in applied if w.step in LINK_STEPS),
        "permanentlyDeleted": sorted({f"{w.type_name}/{w.object_id}" for w in applied if w.irreversible}),
        "overrides": list(outcome.overrides),
        "skippedStale": [f"{t}/{i}" for t, i in outcome.stale],
        "failures": [f.record() for f in outcome.failures],
        "warnings": list(outcome.warnings),
        # Only then, so other records read as before: the backup id each re-created object had, and its new one.
        **(
            {"recreated": [{"type": t, "backupId": old, "newId": new} for t, old, new in outcome.recreated]}
            if outcome.recreated
            else {}
        ),
    }


def record_history(store: StateRepo, plan: Plan, outcome: ApplyOutcome, when: dt.datetime) -> str:
    """Commit one apply's history record to the repository; returns the record's path."""
    record = history_record(plan, outcome)
    path = f"{HISTORY_DIR}/{record['id']}.yaml"
    store.commit_files({path: canonical.dump(record)}, f"Recovery {record['status']}: {plan.backup}\n", when)
    return path
