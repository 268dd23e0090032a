"""Safety checks on a plan before anything is written, when it is made and again when it is applied (pure).

Every check judges what the plan destroys against what exists *now* (and in its source), and the
state the plan would leave behind, never the plan's target alone: a target with no users has no
users to compare with. A check that cannot decide refuses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from entra_gitops.model.ids import fold_id
from entra_gitops.model.registry import Registry
from entra_gitops.model.settings import CONFIG_FILE, BreakGlassEntry, Protected, SafetySettings
from entra_gitops.model.tenant import ObjectState, TenantState
from entra_gitops.recovery.lockout import (
    ASSIGNMENT,
    GROUP,
    POLICY,
    ROLE,
    USER,
    BreakGlassAccount,
    lockouts,
    reads_roles,
    resolve_accounts,
    role_gaps,
    role_losses,
    role_words,
)
from entra_gitops.recovery.plan import Guard, Plan, ProtectedObject, Refusal
from entra_gitops.recovery.simulate import after_plan
from entra_gitops.recovery.steps import DESTRUCTIVE, LINK_STEPS
from entra_gitops.state.layout import STATE_DIR

# What the lockout guard must see to judge Conditional Access: the policies, who is in which group, the accounts.
POLICY_TYPES = frozenset({POLICY, GROUP, USER})
# What it reads besides: who holds which directory role (required), and the roles' names (for messages only).
GUARD_TYPES = POLICY_TYPES | {ASSIGNMENT, ROLE}


@dataclass(frozen=True)
class Assessment:
    """What the guards found: refusals (exit 3 unless overridden) and warnings for the reviewer."""

    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()

    def remaining(self, *, force: bool = False, allow_lockout: bool = False) -> tuple[Refusal, ...]:
        """The refusals the given overrides do not take (missing types are taken only by the plan's --allow-empty)."""
        taken = {Guard.THRESHOLD, Guard.EMPTIED, Guard.PROTECTED} if force else set()
        if allow_lockout:
            taken.add(Guard.LOCKOUT)
        return tuple(r for r in self.refusals if r.guard not in taken)

    @property
    def blocks_saving(self) -> bool:
        """Refusals no review can accept: such a plan is not even saved (missing types, lockouts)."""
        return any(r.guard in (Guard.MISSING_TYPE, Guard.LOCKOUT) for r in self.refusals)


NOTHING_FOUND = Assessment()


def recorded_assessment(plan: Plan) -> Assessment:
    """What the guards found when `plan` was made, as its file records it: shown without Graph (`show`)."""
    return Assessment(plan.refusals, plan.warnings)


@dataclass(frozen=True)
class Context:
    """Everything the guards read: the live tenant, the source, the settings and what was resolved from them."""

    live: TenantState
    source: TenantState
    settings: SafetySettings
    protected: tuple[ProtectedObject, ...] = ()
    unmatched: tuple[str, ...] = ()  # protected entries that name nothing: the guard cannot tell what to protect
    break_glass: tuple[BreakGlassEntry, ...] = ()
    present_types: frozenset[str] | None = None  # desired states: the types the commit has files for


def resolve_protected(
    guards: tuple[Protected, ...], source: TenantState, live: TenantState
) -> tuple[tuple[ProtectedObject, ...], tuple[str, ...]]:
    """Protected entries as ids: by id as given, by name from the source and the live tenant alike.

    A name is matched in both states so that renaming a protected object live cannot unprotect it,
    and the ids are recorded in the plan. Entries that match nothing are returned as messages.
    """
    found: dict[tuple[str, str], ProtectedObject] = {}
    unmatched: list[str] = []
    for guard in guards:
        if guard.object_id:
            obj = _find(fold_id(guard.object_id), guard.type_name, source, live)
            key_type = guard.type_name or (obj.type_name if obj else "object")
            label = next(iter(_names(obj.data)), guard.object_id) if obj else guard.object_id
            found.setdefault(
                (key_type, fold_id(guard.object_id)),
                ProtectedObject(key_type, fold_id(guard.object_id), label, guard.describe()),
            )
            continue
        matches = [
            obj
            for state in (source, live)
            for obj in state
            if (guard.type_name in (None, obj.type_name)) and guard.display_name in _names(obj.data)
        ]
        if not matches:
            unmatched.append(
                f"protected entry {guard.display_name!r}{f' ({guard.type_name})' if guard.type_name else ''} in "
                f"{CONFIG_FILE} matches no object in the source or the live tenant"
            )
        for obj in matches:
            label = str(obj.data.get("displayName") or guard.display_name)
            found.setdefault(obj.key, ProtectedObject(obj.type_name, obj.id, label, guard.describe()))
    return tuple(sorted(found.values(), key=lambda p: (p.type_name, p.object_id))), tuple(unmatched)


def _names(data: object) -> tuple[str, ...]:
    get = getattr(data, "get", None)
    return tuple(v for v in (get("displayName"), get("userPrincipalName")) if isinstance(v, str)) if get else ()


def _find(object_id: str, type_name: str | None, *states: TenantState) -> ObjectState | None:
    """An object by id (of `type_name` when given) in the first state that has it."""
    for state in states:
        for obj in state:
            if obj.id == object_id and type_name in (None, obj.type_name):
                return obj
    return None


def _thresholds(plan: Plan, context: Context, after: TenantState) -> list[Refusal]:
    settings = context.settings
    destroyed: dict[str, set[str]] = defaultdict(set)
    for write in plan.writes:
        if write.step in DESTRUCTIVE:
            destroyed[write.type_name].add(write.object_id)
    live_counts, source_counts, after_counts = context.live.counts(), context.source.counts(), after.counts()
    refusals: list[Refusal] = []
    for type_name in sorted(set(destroyed) | set(live_counts)):
        share = settings.share_for(type_name)
        count = len(destroyed.get(type_name, ()))
        for total, where in (
            (live_counts.get(type_name, 0), "live"),
            (source_counts.get(type_name, 0), "in the source"),
        ):
            if count and total >= settings.minimum_objects and count > share * total:
                refusals.append(
                    Refusal(
                        Guard.THRESHOLD,
                        type_name,
                        None,
                        f"the plan changes or removes {count} of the {total} {type_name} objects {where} "
                        f"({count / total:.0%}), more than the {share:.0%} threshold",
                    )
                )
                break
        now, left = live_counts.get(type_name, 0), after_counts.get(type_name, 0)
        if now >= settings.minimum_objects and left < now / 2:
            refusals.append(
                Refusal(
                    Guard.EMPTIED,
                    type_name,
                    None,
                    f"the plan leaves {left} of the {now} live {type_name} objects, fewer than half",
                )
            )
    return refusals


def _missing_types(registry: Registry, plan: Plan, context: Context) -> list[Refusal]:
    if context.present_types is None:
        return []
    refusals = []
    scope = set(plan.scope.types) or set(registry.names)
    for type_name in sorted(scope & context.live.types):
        if type_name in context.present_types or type_name in plan.options.allow_empty:
            continue
        live_objects = context.live.counts().get(type_name, 0)
        if not live_objects:
            continue
        rtype = registry.get(type_name)
        where = f"{STATE_DIR}/{rtype.folder}{'.yaml' if rtype.singleton else '/'}"
        refusals.append(
            Refusal(
                Guard.MISSING_TYPE,
                type_name,
                None,
                f"the desired state has no {where}, but the tenant has {live_objects} {type_name} object(s): "
                "a missing folder is taken for a mistake, not for the wish to remove them all",
            )
        )
    return refusals


def _protected(plan: Plan, context: Context) -> list[Refusal]:
    by_id = {p.object_id: p for p in (*plan.protected, *context.protected)}
    refusals: dict[str, Refusal] = {}
    for write in plan.writes:
        hits = [write.object_id] + ([fold_id(write.target)] if write.step in LINK_STEPS and write.target else [])
        for hit in hits:
            guard = by_id.get(fold_id(hit))
            if guard is None or hit in refusals:
                continue
            how = (
                ""
                if hit == write.object_id
                else f" (through a {write.link} change of {write.type_name} {write.object_id})"
            )
            refusals[hit] = Refusal(
                Guard.PROTECTED,
                guard.type_name,
                guard.object_id,
                f"{guard.type_name} {guard.label!r} ({guard.object_id}) is protected{how}: {guard.via}",
            )
    unmatched = [
        Refusal(Guard.PROTECTED, "object", None, f"{message}: cannot tell what it protects")
        for message in context.unmatched
    ]
    return [*refusals.values(), *unmatched]


def _lockouts(registry: Registry, context: Context, after: TenantState) -> tuple[list[Refusal], list[str]]:
    """The lockout guard: Conditional Access for each break-glass account, then who holds which role."""
    if not context.break_glass:
        return [], []
    unread = POLICY_TYPES - context.live.types
    if unread:
        message = (
            f"cannot evaluate Conditional Access for the break-glass accounts: {', '.join(sorted(unread))} not read"
        )
        return [Refusal(Guard.LOCKOUT, "conditionalAccessPolicy", None, message)], []
    entries = tuple((e.account, e.satisfies) for e in context.break_glass)
    accounts, unresolved = resolve_accounts(entries, context.source, context.live)
    refusals = [
        Refusal(
            Guard.LOCKOUT,
            "user",
            None,
            f"break-glass account {entry!r} in {CONFIG_FILE} matches no user in the source or the live tenant, "
            "so the lockout guard cannot check it",
        )
        for entry in unresolved
    ]
    before = {(lock.policy_id, lock.account_id) for lock in lockouts(context.live, accounts)}
    warnings = []
    for lock in lockouts(after, accounts):
        if (lock.policy_id, lock.account_id) in before:
            warnings.append(f"already true before this plan, and not changed by it: {lock.describe()}")
        else:
            refusals.append(Refusal(Guard.LOCKOUT, "conditionalAccessPolicy", lock.policy_id or None, lock.describe()))
    role_refusals, role_warnings = _role_lockouts(registry, context, after, accounts)
    return [*refusals, *role_refusals], [*warnings, *role_warnings]


def _role_lockouts(
    registry: Registry, context: Context, after: TenantState, accounts: tuple[BreakGlassAccount, ...]
) -> tuple[list[Refusal], list[str]]:
    """The role rules: no break-glass account loses a role it holds live, and each lockout role keeps a holder
    who can sign in (a gap the live tenant has already, and the plan leaves, is a warning)."""
    roles = sorted(registry.lockout_roles)
    if not (reads_roles(context.live) and reads_roles(after)):
        named = ", ".join(role_words(context.live, r) for r in roles) or "any directory role"
        message = (
            f"the lockout guard cannot check roles: {ASSIGNMENT} not read, so it cannot tell whether the plan takes "
            f"a directory role from a break-glass account or leaves {named} without a holder who can sign in"
        )
        return [Refusal(Guard.LOCKOUT, ASSIGNMENT, None, message)], []
    refusals = [
        Refusal(Guard.LOCKOUT, ASSIGNMENT, loss.assignment_ids[0], loss.describe())
        for loss in role_losses(context.live, after, accounts)
    ]
    before = {gap.role_id for gap in role_gaps(context.live, roles, accounts)}
    warnings = []
    for gap in role_gaps(after, roles, accounts):
        if gap.role_id in before:
            warnings.append(f"already true before this plan, and not changed by it: {gap.describe()}")
        else:
            refusals.append(Refusal(Guard.LOCKOUT, ROLE, gap.role_id, gap.describe()))
    return refusals, warnings


def break_glass_ids(entries: Iterable[BreakGlassEntry], *states: TenantState) -> tuple[str, ...]:
    """The user ids the break-glass entries name, as a plan records them."""
    accounts, _ = resolve_accounts(tuple((e.account, e.satisfies) for e in entries), *states)
    return tuple(sorted(a.id for a in accounts))


def assess(registry: Registry, plan: Plan, context: Context) -> Assessment:
    """Every refusal and warning for `plan` against `context`."""
    after = after_plan(registry, context.live, plan.writes, context.source)
    lockout_refusals, lockout_warnings = _lockouts(registry, context, after)
    refusals = [
        *_missing_types(registry, plan, context),
        *_thresholds(plan, context, after),
        *_protected(plan, context),
        *lockout_refusals,
    ]
    warnings = list(lockout_warnings)
    if not context.break_glass:
        warnings.append(f"no breakGlass accounts in {CONFIG_FILE}: the lockout guard has nothing to protect")
    irreversible = sum(1 for w in plan.writes if w.irreversible)
    if irreversible:
        warnings.append(f"{irreversible} write(s) delete permanently (--allow-delete): Graph cannot restore them")
    return Assessment(tuple(refusals), tuple(warnings))
