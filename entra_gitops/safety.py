"""Safety checks on a plan before anything is written: blast-radius thresholds and protected objects (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from entra_gitops.config import Protected, SafetySettings
from entra_gitops.plan import Plan


@dataclass(frozen=True)
class Refusal:
    """One reason a plan is refused as unsafe unless forced."""

    type_name: str
    object_id: str | None
    message: str


def check_plan(
    plan: Plan, counts: Mapping[str, int], settings: SafetySettings, names: Mapping[str, str] | None = None
) -> tuple[Refusal, ...]:
    """Every refusal for `plan`: types touched beyond the threshold share, and protected objects touched."""
    refusals: list[Refusal] = []
    touched: dict[str, set[str]] = defaultdict(set)
    for write in plan.writes:
        touched[write.type_name].add(write.object_id)
    for type_name, ids in sorted(touched.items()):
        total = counts.get(type_name, 0)
        share = settings.share_for(type_name)
        if total >= settings.minimum_objects and len(ids) > share * total:
            refusals.append(
                Refusal(
                    type_name,
                    None,
                    f"the plan changes {len(ids)} of {total} {type_name} objects ({len(ids) / total:.0%}), "
                    f"more than the {share:.0%} threshold",
                )
            )
    for write in plan.writes:
        guard = _protecting(settings.protected, write.type_name, write.object_id, write.display)
        if guard is not None and not any(r.object_id == write.object_id for r in refusals):
            label = write.display or (names or {}).get(write.object_id) or write.object_id
            refusals.append(
                Refusal(
                    write.type_name, write.object_id, f"{write.type_name} {label!r} is protected ({guard.describe()})"
                )
            )
    return tuple(refusals)


def _protecting(
    protected: tuple[Protected, ...], type_name: str, object_id: str, display: str | None
) -> Protected | None:
    for guard in protected:
        if guard.matches(type_name, object_id, display):
            return guard
    return None
