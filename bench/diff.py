"""Difference-report benchmark: two synthetic states of 100,000 objects with 10,000 changes.

Run from a checkout with the package installed:  python bench/diff.py   (under a minute)

It builds both states in memory (as a snapshot would normalize them), then times the comparison
and the json and markdown renderings, and prints objects per second against the 10,000/s target.
For scale it also times a plain equality pass over the same parsed states, the least any comparison
must do, as a baseline measured in the same run. It asserts nothing. (`bench/snapshot.py` times the
whole `diff` command against live.)
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from entra_gitops.emulator import synthetic
from entra_gitops.model.frozen import freeze
from entra_gitops.model.registry import default_registry
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState
from entra_gitops.report.diff import difference_report
from entra_gitops.report.jsonout import render_json
from entra_gitops.report.markdown import render_markdown
from entra_gitops.report.view import build_view, display_names
from entra_gitops.state.normalize import normalize_object

REGISTRY = default_registry()


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def build_states(users: int, groups: int, changes: int) -> tuple[TenantState, TenantState]:
    """A backup state from a synthetic tenant and a current one with `changes` objects changed."""
    seed = synthetic.generate(synthetic.parse_spec(f"users={users},groups={groups},apps={max(3, users // 500)}"))
    members = {k.split("/")[1]: v for k, v in seed.items() if k.startswith("groups/") and k.endswith("/members")}
    before: list[ObjectState] = []
    for type_name, key in (("user", "users"), ("group", "groups")):
        rtype = REGISTRY.get(type_name)
        for raw in seed[key]:
            links = {"members": members.get(raw["id"], ())} if type_name == "group" else {}
            data, _ = normalize_object(rtype, raw, links)
            before.append(ObjectState(type_name, data["id"], Lifecycle.ACTIVE, freeze(data)))
    rng = random.Random(7)
    picked = set(rng.sample(range(len(before)), changes))
    after: list[ObjectState] = []
    user_ids = [o.id for o in before if o.type_name == "user"]
    for index, obj in enumerate(before):
        if index not in picked:
            after.append(obj)
            continue
        data = dict(obj.data)
        if obj.type_name == "group" and index % 2:
            data["members"] = tuple(sorted(set(data.get("members", ())) ^ {rng.choice(user_ids)}))
        else:
            data["displayName"] = f"{data.get('displayName')} (changed)"
            data["jobTitle" if obj.type_name == "user" else "description"] = "changed"
        after.append(ObjectState(obj.type_name, obj.id, obj.lifecycle, freeze(data)))
    types = frozenset({"user", "group"})
    return TenantState.of(before, types), TenantState.of(after, types)


def equality_pass(before: TenantState, after: TenantState) -> int:
    """Baseline: the least any comparison of these states must do, a plain equality of each object's parsed
    value with its counterpart's (no per-property report, no classification)."""
    changed = sum(1 for key, obj in before.objects.items() if after.objects.get(key) != obj)
    return changed + sum(1 for key in after.objects if key not in before.objects)


def row(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<46} {seconds:>8.2f} s  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=80_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()

    (before, after), build_seconds = timed(lambda: build_states(args.users, args.groups, args.changes))
    total = len(before)
    print(f"entra-gitops difference-report benchmark: {total:,} objects, {args.changes:,} changed")
    row("build both states (not part of the report)", build_seconds)
    report, compare_seconds = timed(
        lambda: difference_report(REGISTRY, before, after, backup_name="backup/a", against_name="backup/b")
    )
    view, view_seconds = timed(lambda: build_view(report, display_names(before, after)))
    json_text, json_seconds = timed(lambda: render_json(view))
    markdown_text, markdown_seconds = timed(lambda: render_markdown(view))
    plain, plain_seconds = timed(lambda: equality_pass(before, after))

    row(
        "compare (difference_report)", compare_seconds, f"{total / compare_seconds:,.0f} objects/s (target >= 10,000/s)"
    )
    row("view model with display names", view_seconds)
    row("render json", json_seconds, f"{len(json_text) / 1e6:.1f} MB")
    row("render markdown", markdown_seconds, f"{len(markdown_text):,} characters (GitHub limit 65,536)")
    row(
        "report total (compare + view + json + markdown)",
        compare_seconds + view_seconds + json_seconds + markdown_seconds,
    )
    row(
        "baseline: plain equality of the same parsed states",
        plain_seconds,
        f"the report's comparison takes {compare_seconds / plain_seconds:.1f}x it",
    )
    print(f"  changed objects found: {len(report.changes):,} (the equality pass found {plain:,})")


if __name__ == "__main__":
    main()
