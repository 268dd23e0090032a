"""What apply checks again before it writes: objects that moved since the plan, each step derived again, and
the writes an earlier run already put in effect (pure, apart from reading the live tenant).

Apply executes steps, never stored requests: every step is checked against the plan's source and the
live tenant, and its request derived again through the registry (steps.py). A plan whose stored request
differs, or whose step recovery would not make, is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from entra_gitops.graph.client import GraphClient
from entra_gitops.graph.targeted import Target
from entra_gitops.model.frozen import thaw
from entra_gitops.model.ids import fold_id
from entra_gitops.model.progress import Progress, Reads
from entra_gitops.model.registry import Registry
from entra_gitops.model.tenant import Lifecycle, TenantState
from entra_gitops.recovery.errors import PlanFileError
from entra_gitops.recovery.journal import JournalEvent
from entra_gitops.recovery.plan import Plan, fingerprint
from entra_gitops.recovery.recreate import recreated_ids
from entra_gitops.recovery.steps import LINK_STEPS, Step, StepError, Write, check_step, derive_request, link_ids
from entra_gitops.state.sources import live_state, targeted_live_state


def touched_objects(plan: Plan, events: Mapping[int, JournalEvent]) -> set[tuple[str, str]]:
    """Objects an earlier run of this plan may have written: they are expected to have moved."""
    return {plan.writes[i].key for i in events if i < len(plan.writes)}


def stale_objects(plan: Plan, live: TenantState, touched: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Objects whose live fingerprint moved since the plan; ones this plan already wrote are expected to."""
    stale: dict[tuple[str, str], None] = {}
    for write in plan.writes:
        if write.key in touched or write.step is Step.CREATE:
            continue
        if fingerprint(live.get(*write.key)) != write.fingerprint:
            stale[write.key] = None
    return list(stale)


def in_effect(write: Write, live: TenantState) -> bool:
    """Whether the tenant already shows what `write` does (a rerun after an answer was lost)."""
    now = live.get(*write.key)
    if write.step is Step.RESTORE:
        return now is not None and now.lifecycle is Lifecycle.ACTIVE
    if write.step is Step.SOFT_DELETE:
        return now is None or now.lifecycle is Lifecycle.SOFT_DELETED
    if write.step is Step.DELETE:
        return now is None
    if write.step in LINK_STEPS:
        present = fold_id(write.target or "") in link_ids(now, write.link or "")
        return now is not None and present == (write.step is Step.ADD_LINK)
    return False  # updates are resent (harmless); a re-created relationship has a new id to look for


def verify_plan(
    registry: Registry, plan: Plan, source: TenantState, live: TenantState, touched: set[tuple[str, str]]
) -> tuple[Plan, frozenset[int]]:
    """The plan as apply runs it: each step checked against its source, its request derived again, its name
    taken from the states rather than the file; and the writes an earlier run already put in effect.

    Raises PlanFileError, naming the steps, when any step is not one recovery to the source makes.
    """
    problems: list[str] = []
    writes: list[Write] = []
    settled: set[int] = set()
    recreated = recreated_ids(registry, plan.writes)
    for index, write in enumerate(plan.writes):
        was, now = source.get(*write.key), live.get(*write.key)
        label = f"step {index + 1} ({write.step.value} {write.type_name} {write.object_id})"
        if write.key in touched and in_effect(write, live):
            settled.add(index)
            writes.append(write)
            continue
        if write.step is Step.CREATE and now is not None and was is not None:
            # Graph derives some relationship ids from what they join (a grant's client and resource), so one
            # made again meanwhile has the backup's id: the same content is in effect, other content is news.
            if _relationship_content(registry, now) == _relationship_content(registry, was):
                settled.add(index)
                writes.append(write)
            else:
                problems.append(f"{label}: it exists again since the plan was made, with other values")
            continue
        try:
            check_step(
                registry, write, source, live, allow_delete=plan.options.allow_delete, touched=write.key in touched,
                recreate=plan.options.recreate, recreated=recreated,
            )  # fmt: skip
            derived = derive_request(registry, write, was, now)
        except StepError as err:
            problems.append(f"{label}: {err}")
            continue
        if derived != write.request:
            problems.append(f"{label}: the file's request {write.method} {write.path} is not what the step makes")
            continue
        rtype = registry.get(write.type_name)
        display = next((o.display(rtype.display) for o in (now, was) if o is not None), None) or write.display
        writes.append(replace(write, display=display, request=derived))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PlanFileError(
            f"the plan holds {len(problems)} step(s) that recovery to {plan.backup} would not make, so nothing was "
            f"written: {shown}",
            hint="never edit a plan file: make and review a new plan",
        )
    return replace(plan, writes=tuple(writes)), frozenset(settled)


def _relationship_content(registry: Registry, obj: Any) -> dict[str, Any]:
    """What a re-created relationship must equal: everything but what the server sets."""
    rtype = registry.get(obj.type_name)
    return {k: v for k, v in thaw(obj.data).items() if k not in rtype.server_generated}


def plan_targets(plan: Plan) -> tuple[Target, ...]:
    """The objects a plan writes: all its stale check, step checks and verification look at."""
    return tuple(dict.fromkeys(Target(w.type_name, w.object_id) for w in plan.writes))


def live_types(registry: Registry, plan: Plan, extra: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The types a plan's checks judge: its types, the types they reference, and `extra` (the guards')."""
    names = set(plan.types) | set(extra)
    for name in list(names):
        names |= registry.get(name).referenced_types
    return tuple(sorted(names))


async def read_live_for(
    client: GraphClient,
    registry: Registry,
    plan: Plan,
    extra: frozenset[str] = frozenset(),
    progress: Progress | Reads | None = None,
    *,
    targeted: bool = True,
    counted: bool = False,
    also: tuple[Target, ...] = (),
) -> TenantState:
    """The live state a plan's checks need, over `live_types`.

    `targeted`: of each type Graph reads by id, only the plan's objects (and `also`) are read, never the
    whole type; `counted` adds each such type's exact live count, for the guards' thresholds. Without
    `targeted`, every type is read in full (what the lockout guard and protection by name search).
    """
    types = live_types(registry, plan, extra)
    if not targeted:
        return await live_state(client, registry, registry.select(list(types)), progress)
    targets = (*plan_targets(plan), *also)
    return await targeted_live_state(client, registry, types, targets, counted=counted, progress=progress)
