"""The lockout guard: would Conditional Access, as a state has it, lock a break-glass account out, and who holds the
roles that administer the tenant (pure)."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from entra_gitops.model.ids import fold_id
from entra_gitops.model.tenant import Lifecycle, ObjectState, TenantState

POLICY = "conditionalAccessPolicy"
GROUP = "group"
USER = "user"
STRENGTH = "authenticationStrengthPolicy"
ASSIGNMENT = "unifiedRoleAssignment"
ROLE = "unifiedRoleDefinition"

TENANT_SCOPE = "/"  # a role assignment's directoryScopeId for the whole tenant (not one administrative unit)
LISTED_HOLDERS = 5  # how many unusable holders a message names before it counts the rest

ALL = "all"  # includeUsers and includeApplications literals, compared casefolded
GUESTS = "GuestsOrExternalUsers"
# Client app types that are only legacy authentication. Anything else (all, browser, mobileAppsAndDesktopClients,
# and values Graph may add later) is taken to reach modern sign-in: fail closed.
LEGACY_CLIENTS = frozenset({"exchangeActiveSync", "easSupported", "other"})
BLOCK = "block"
ACCOUNT_ITSELF = "the account itself"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class AccountProblem(enum.Enum):
    """Why an account is locked out by its own state rather than by a policy."""

    DISABLED = "account disabled"
    DELETED = "account deleted"


@dataclass(frozen=True)
class BreakGlassAccount:
    """A break-glass account as the guard knows it: its user id, how people name it, and what it can satisfy."""

    id: str
    label: str
    satisfies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Lockout:
    """One enabled policy that would block, or demand what it cannot give, a break-glass account for every cloud app."""

    policy_id: str
    policy_name: str | None
    account_id: str
    account_label: str
    through: str
    control: str

    def describe(self) -> str:
        """One sentence for people: which policy, which account, what it demands and how it reaches the account."""
        account = f"break-glass account {self.account_label} ({self.account_id})"
        if not self.policy_id:
            return f"{account} would be locked out of every cloud app: {self.control}, whatever Conditional Access says"
        policy = f"Conditional Access policy {self.policy_name!r} ({self.policy_id})"
        if not self.policy_name:
            policy = f"Conditional Access policy {self.policy_id}"
        if self.control == BLOCK:
            demand = f"would block {account} for all cloud apps"
        else:
            demand = f"would require {self.control} of {account} for all cloud apps, which it cannot satisfy"
        return f"{policy} {demand}: {self._reach()} and the account is not excluded"

    def _reach(self) -> str:
        """How the policy reaches the account, as the middle of a sentence."""
        if self.through == "all users":
            return "it applies to all users"
        if self.through == "directly":
            return "it names the account directly"
        return f"it applies to the account {self.through}"


@dataclass(frozen=True)
class Holding:
    """One way a user holds a directory role: an assignment to the user itself, or to a group it is a member of."""

    assignment_id: str
    role_id: str
    scope: str | None
    group_id: str | None = None  # the role-assignable group the assignment is to; None when it is to the user


@dataclass(frozen=True)
class RoleLoss:
    """A directory role a break-glass account holds live and would no longer hold after the plan."""

    account_id: str
    account_label: str
    role_id: str
    role_name: str | None
    scope: str | None
    assignment_ids: tuple[str, ...]  # the live assignments it holds the role by
    held_through: tuple[str, ...]  # the same, as messages say them ("role assignment X to group 'G' (id)")

    def describe(self) -> str:
        """One sentence for people: which account, which role at which scope, and the assignments it held it by."""
        account = f"break-glass account {self.account_label} ({self.account_id})"
        role = _role_words(self.role_id, self.role_name)
        return (
            f"the plan would take {role} {_scope_words(self.scope)} away from {account}, which holds it live "
            f"through {' and '.join(self.held_through)}"
        )


@dataclass(frozen=True)
class RoleGap:
    """A role the guard keeps a usable holder of (Global Administrator) that no user could use: each holder is
    disabled, deleted, or kept out by Conditional Access."""

    role_id: str
    role_name: str | None
    holders: tuple[str, ...]  # each holder and why it cannot use the role, as messages say it

    def describe(self) -> str:
        """One sentence for people: the role, and why none of its holders counts."""
        role = _role_words(self.role_id, self.role_name)
        if not self.holders:
            why = "no enabled user holds it there"
        else:
            shown = "; ".join(self.holders[:LISTED_HOLDERS])
            more = len(self.holders) - LISTED_HOLDERS
            why = f"no holder can sign in ({shown}{f'; and {more} more' if more > 0 else ''})"
        return f"{role} at tenant scope {TENANT_SCOPE!r} would have no usable holder: {why}"


@dataclass(frozen=True)
class _Subject:
    """A break-glass account with what the state says of it: whether it is a guest (None: the state cannot tell),
    and the roles it holds by role id (None: role assignments were not read)."""

    account: BreakGlassAccount
    guest: bool | None
    roles: Mapping[str, Holding] | None = None


@dataclass(frozen=True)
class _Directory:
    """What the guard reads from a state besides the policies: active groups' members, group, strength and role
    names, and the role assignments by principal (None when they were not read)."""

    members: Mapping[str, tuple[str, ...]]
    group_names: Mapping[str, str | None]
    strength_names: Mapping[str, str | None]
    role_names: Mapping[str, str | None]
    assignments: Mapping[str, tuple[ObjectState, ...]] | None


def lockouts(state: TenantState, accounts: tuple[BreakGlassAccount, ...]) -> tuple[Lockout, ...]:
    """Every (policy, account) pair where an enabled policy would lock the account out of all cloud apps, sorted."""
    directory = _directory(state)
    users = {fold_id(o.id): o for o in state.of_type(USER)}
    policies = sorted(
        (o for o in state.of_type(POLICY) if o.lifecycle is Lifecycle.ACTIVE), key=lambda o: fold_id(o.id)
    )
    found: dict[tuple[str, str], Lockout] = {}
    for account in accounts:
        user = users.get(fold_id(account.id))
        own = _account_lockout(account, user)
        if own is not None:
            found.setdefault((own.account_id, own.policy_id), own)
        roles = None if directory.assignments is None else _roles_of(directory, fold_id(account.id))
        subject = _Subject(account, _is_guest(user), roles)
        for policy in policies:
            lock = _judge(policy, subject, directory)
            # An account named twice (by id and by UPN, say) is locked out when either naming of it is.
            if lock is not None:
                found.setdefault((lock.account_id, lock.policy_id), lock)
    return tuple(found[key] for key in sorted(found))


def resolve_accounts(
    entries: Iterable[tuple[str, frozenset[str]]], *states: TenantState
) -> tuple[tuple[BreakGlassAccount, ...], tuple[str, ...]]:
    """Break-glass entries (an object id or a UPN, with what each satisfies) as accounts found in `states` (first match wins, ids compared case-insensitively, UPNs case-insensitively), and the entries that match no user."""
    entries = tuple(entries)
    # Only a UPN needs the users' data; ids are known without reading a user's file (a large tenant's plan).
    by_name = any("@" in entry for entry, _ in entries)
    indexes = tuple(_user_index(state, by_name) for state in states) if entries else ()
    accounts: dict[BreakGlassAccount, None] = {}
    unresolved: dict[str, None] = {}
    for entry, satisfies in entries:
        user = next((index[entry.casefold()] for index in indexes if entry.casefold() in index), None)
        if user is None:
            unresolved[entry] = None
        else:
            accounts[BreakGlassAccount(fold_id(user.id), _label(user), frozenset(satisfies))] = None
    return tuple(accounts), tuple(unresolved)


def reads_roles(state: TenantState) -> bool:
    """Whether `state` has the directory role assignments read, so that who holds which role can be told."""
    return ASSIGNMENT in state.types


def role_losses(
    before: TenantState, after: TenantState, accounts: tuple[BreakGlassAccount, ...]
) -> tuple[RoleLoss, ...]:
    """Role rule A: every (account, role, scope) a break-glass account holds in `before`, directly or through a
    role-assignable group, and would not hold in `after`, however it held it; sorted."""
    was, now = _directory(before), _directory(after)
    names = {**was.role_names, **now.role_names}
    found: dict[tuple[str, str, str], RoleLoss] = {}
    for account in accounts:
        account_id = fold_id(account.id)
        kept = {(h.role_id, h.scope) for h in _holdings(now, account_id)}
        held: dict[tuple[str, str | None], list[Holding]] = {}
        for holding in _holdings(was, account_id):
            held.setdefault((holding.role_id, holding.scope), []).append(holding)
        for (role_id, scope), holdings in held.items():
            if (role_id, scope) in kept:
                continue
            ids = tuple(h.assignment_id for h in holdings)
            through = tuple(_holding_words(was, h) for h in holdings)
            loss = RoleLoss(account.id, account.label, role_id, names.get(role_id), scope, ids, through)
            found.setdefault((account.id, role_id, scope or ""), loss)
    return tuple(found[key] for key in sorted(found))


def role_gaps(
    state: TenantState, roles: Iterable[str], accounts: tuple[BreakGlassAccount, ...] = ()
) -> tuple[RoleGap, ...]:
    """Role rule B: each of `roles` (folded role ids) that no enabled, active user holding it at tenant scope could
    use, as Conditional Access in `state` judges each holder; sorted by role id.

    A holder that is a break-glass account meets what its entry `satisfies`; any other holder is taken to meet no
    grant control at all, since nothing says what it can (fail closed): a holder counts only when no enabled
    policy for every cloud app blocks it or asks it for anything.
    """
    directory = _directory(state)
    satisfies = {fold_id(a.id): a.satisfies for a in accounts}
    users = {fold_id(o.id): o for o in state.of_type(USER)}
    gaps = []
    for role_id in sorted(roles):
        holders, others = _tenant_holders(directory, users, role_id)
        candidates = tuple(
            BreakGlassAccount(h, _label(users[h]), satisfies.get(h, frozenset())) for h in sorted(holders)
        )
        reasons: dict[str, str] = {}
        for lock in lockouts(state, candidates):
            # The first lockout of a holder says enough; lockouts() puts its own state (disabled, deleted) first.
            reasons.setdefault(lock.account_id, _reason_words(lock))
        if len(reasons) < len(candidates):
            continue
        unusable = tuple(f"{c.label} ({c.id}): {reasons[c.id]}" for c in candidates)
        unusable += tuple(f"{p}: not a user or an active group (a service principal, or gone)" for p in sorted(others))
        gaps.append(RoleGap(role_id, directory.role_names.get(role_id), unusable))
    return tuple(gaps)


def role_words(state: TenantState, role_id: str) -> str:
    """A role as messages name it, by its display name when `state` has the role's definition."""
    return _role_words(role_id, _role_names(state).get(fold_id(role_id)))


# -- accounts -----------------------------------------------------------------------------------------------------


def _user_index(state: TenantState, by_name: bool = True) -> Mapping[str, ObjectState]:
    """Users by casefolded id and (`by_name`) UPN, active users first so a live account wins over a deleted
    namesake."""
    index: dict[str, ObjectState] = {}
    users = sorted(state.of_type(USER), key=lambda o: (o.lifecycle is not Lifecycle.ACTIVE, fold_id(o.id)))
    for user in users:
        index.setdefault(user.id.casefold(), user)
        upn = _upn(user) if by_name else None
        if upn:
            index.setdefault(upn.casefold(), user)
    return index


def _upn(user: ObjectState) -> str | None:
    """The user's principal name, without the id Graph prefixes to it while the user is soft-deleted."""
    upn = user.display("userPrincipalName")
    prefix = user.id.replace("-", "").casefold()
    # Graph renames a soft-deleted user's UPN to <id without hyphens><UPN>, so the configured name still finds it.
    if upn and user.lifecycle is Lifecycle.SOFT_DELETED and upn.casefold().startswith(prefix) and "@" in upn:
        return upn[len(prefix) :]
    return upn


def _label(user: ObjectState) -> str:
    """How messages name the account: its UPN, else its display name, else its id."""
    return _upn(user) or user.display("displayName") or user.id


def _is_guest(user: ObjectState | None) -> bool | None:
    """Whether the user is a guest; None when the state has no user or no userType to tell."""
    user_type = user.data.get("userType") if user is not None else None
    return None if not isinstance(user_type, str) else user_type.casefold() == "guest"


def _account_lockout(account: BreakGlassAccount, user: ObjectState | None) -> Lockout | None:
    """A lockout by the account's own state: absent, soft-deleted or disabled, no policy needed."""
    if user is None or user.lifecycle is not Lifecycle.ACTIVE:
        problem = AccountProblem.DELETED
    elif user.data.get("accountEnabled") is False:
        problem = AccountProblem.DISABLED
    else:
        return None
    return Lockout("", None, account.id, account.label, ACCOUNT_ITSELF, problem.value)


# -- groups -------------------------------------------------------------------------------------------------------


def _directory(state: TenantState) -> _Directory:
    """Active groups with their members, role assignments by principal, and names for messages; soft-deleted
    groups apply to nobody."""
    groups = [o for o in state.of_type(GROUP) if o.lifecycle is Lifecycle.ACTIVE]
    members = {
        fold_id(g.id): tuple(fold_id(m) for m in g.data.get("members") or () if isinstance(m, str)) for g in groups
    }
    return _Directory(
        MappingProxyType(members),
        MappingProxyType({fold_id(g.id): g.display("displayName") for g in groups}),
        MappingProxyType({fold_id(s.id): s.display("displayName") for s in state.of_type(STRENGTH)}),
        _role_names(state),
        _assignments(state),
    )


def _chain(directory: _Directory, start: str, target: str) -> tuple[str, ...] | None:
    """The shortest chain of active groups from `start` to one that has `target` as a member, or None."""
    if start not in directory.members:
        return None
    queue = deque([(start,)])
    seen = {start}
    while queue:
        chain = queue.popleft()
        members = directory.members[chain[-1]]
        if target in members:
            return chain
        for member in members:
            # `seen` is what ends a cycle of nested groups (A in B in A).
            if member in directory.members and member not in seen:
                seen.add(member)
                queue.append((*chain, member))
    return None


def _group_words(directory: _Directory, group_id: str) -> str:
    """A group as messages name it: 'name' (id), or the id alone."""
    name = directory.group_names.get(group_id)
    return f"group {name!r} ({group_id})" if name else f"group {group_id}"


# -- roles --------------------------------------------------------------------------------------------------------


def _role_names(state: TenantState) -> Mapping[str, str | None]:
    """Role definitions' display names by folded id and template id: policies and assignments name a built-in role
    by its template id, which is a built-in role's id too, and a custom role by its id."""
    names: dict[str, str | None] = {}
    for role in state.of_type(ROLE):
        for key in (role.id, role.data.get("templateId")):
            if isinstance(key, str):
                names.setdefault(fold_id(key), role.display("displayName"))
    return MappingProxyType(names)


def _assignments(state: TenantState) -> Mapping[str, tuple[ObjectState, ...]] | None:
    """Active role assignments by folded principal id, or None when the state did not read them."""
    if not reads_roles(state):
        return None
    by_principal: dict[str, list[ObjectState]] = {}
    for assignment in sorted(state.of_type(ASSIGNMENT), key=lambda o: o.id):
        principal, role = assignment.data.get("principalId"), assignment.data.get("roleDefinitionId")
        # An assignment that does not say who holds what grants nothing the guard could count on.
        if assignment.lifecycle is Lifecycle.ACTIVE and isinstance(principal, str) and isinstance(role, str):
            by_principal.setdefault(fold_id(principal), []).append(assignment)
    return MappingProxyType({principal: tuple(found) for principal, found in by_principal.items()})


def _holding(assignment: ObjectState, group_id: str | None = None) -> Holding:
    """What one assignment gives, to its principal or (`group_id`) to each member of that group."""
    scope = assignment.data.get("directoryScopeId")
    role = str(assignment.data.get("roleDefinitionId"))
    return Holding(assignment.id, fold_id(role), scope if isinstance(scope, str) else None, group_id)


def _holdings(directory: _Directory, user_id: str) -> tuple[Holding, ...]:
    """Every role `user_id` holds: assigned to it, or to an active group it is a direct member of.

    Graph does not let a role-assignable group contain groups, so membership is not followed any deeper; a
    soft-deleted group is not in `directory.members` and gives nobody anything."""
    assignments = directory.assignments or _EMPTY
    found = [_holding(a) for a in assignments.get(user_id, ())]
    for principal in sorted(assignments):
        if user_id in directory.members.get(principal, ()):
            found += [_holding(a, principal) for a in assignments[principal]]
    return tuple(found)


def _roles_of(directory: _Directory, user_id: str) -> Mapping[str, Holding]:
    """The roles `user_id` holds, at any scope, by folded role id (the first way it holds each)."""
    roles: dict[str, Holding] = {}
    for holding in _holdings(directory, user_id):
        roles.setdefault(holding.role_id, holding)
    return MappingProxyType(roles)


def _tenant_holders(directory: _Directory, users: Mapping[str, ObjectState], role_id: str) -> tuple[set[str], set[str]]:
    """Who holds `role_id` at tenant scope: the users (directly or through a group's direct members), and the
    other principals (service principals, or ids the state has no user for)."""
    holders: set[str] = set()
    others: set[str] = set()
    for principal, assignments in (directory.assignments or _EMPTY).items():
        if not any((h.role_id, h.scope) == (role_id, TENANT_SCOPE) for h in map(_holding, assignments)):
            continue
        if principal in users:
            holders.add(principal)
        elif principal in directory.members:
            # Members that are not users (a service principal in the group) cannot sign in as an administrator.
            holders.update(m for m in directory.members[principal] if m in users)
        else:
            # A service principal, or a group that is soft-deleted or gone: nobody signs in through it.
            others.add(principal)
    return holders, others


def _holding_words(directory: _Directory, holding: Holding) -> str:
    """How an account holds a role, as the end of a sentence: 'role assignment X' (to group 'G' (id))."""
    words = f"role assignment {holding.assignment_id}"
    return f"{words} to {_group_words(directory, holding.group_id)}" if holding.group_id else words


def _role_words(role_id: str, name: str | None) -> str:
    """A role as messages name it: 'name' (id), or the id alone."""
    return f"directory role {name!r} ({role_id})" if name else f"directory role {role_id}"


def _scope_words(scope: str | None) -> str:
    """A role assignment's scope as messages name it."""
    if scope == TENANT_SCOPE:
        return f"at tenant scope {TENANT_SCOPE!r}"
    return f"at scope {scope!r}" if scope else "at an unstated scope"


def _reason_words(lock: Lockout) -> str:
    """Why a role holder cannot sign in, as the end of a sentence: its own state, or the policy that keeps it out."""
    if not lock.policy_id:
        return lock.control
    policy = f"Conditional Access policy {lock.policy_id}"
    if lock.policy_name:
        policy = f"Conditional Access policy {lock.policy_name!r} ({lock.policy_id})"
    return f"{policy} blocks it" if lock.control == BLOCK else f"{policy} requires {lock.control}"


# -- policies -----------------------------------------------------------------------------------------------------


def _judge(policy: ObjectState, subject: _Subject, directory: _Directory) -> Lockout | None:
    """The lockout `policy` causes `subject`, or None when it does not lock the account out of every app."""
    if not (_enforced(policy) and _all_apps(policy) and _reaches_modern_clients(policy)):
        return None
    users = _section(_section(policy.data, "conditions"), "users")
    if _excluded(users, subject, directory):
        return None
    through = _through(users, subject, directory)
    if through is None:
        return None
    control = _unmet(_section(policy.data, "grantControls"), subject.account.satisfies, directory)
    if control is None:
        return None
    account = subject.account
    return Lockout(policy.id, policy.display("displayName"), account.id, account.label, through, control)


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested mapping of canonical data; canonical form leaves empty ones out, so missing is empty."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else _EMPTY


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings of canonical data, () when left out."""
    return tuple(v for v in data.get(key) or () if isinstance(v, str))


def _enforced(policy: ObjectState) -> bool:
    """Rule 1: only enabled policies enforce; report-only and disabled ones never block anyone."""
    return policy.data.get("state") == "enabled"


def _all_apps(policy: ObjectState) -> bool:
    """Rule 2: the policy covers all cloud apps; excluded apps do not save the account (the portals may still block)."""
    applications = _section(_section(policy.data, "conditions"), "applications")
    return any(app.casefold() == ALL for app in _strings(applications, "includeApplications"))


def _reaches_modern_clients(policy: ObjectState) -> bool:
    """Rule 3: a policy on legacy client types only leaves modern sign-in open; no other condition saves the account."""
    # Locations, platforms, risk and device filters are ignored on purpose: a break-glass account may have to
    # sign in from anywhere, on anything, at any risk, so they are taken to match (fail closed).
    client_types = _strings(_section(policy.data, "conditions"), "clientAppTypes")
    return not client_types or not set(client_types) <= LEGACY_CLIENTS


def _excluded(users: Mapping[str, Any], subject: _Subject, directory: _Directory) -> bool:
    """Rule 5: excluded by id, as a guest, or through an active group; excluded roles are not trusted."""
    account_id = fold_id(subject.account.id)
    excluded = _strings(users, "excludeUsers")
    if account_id in {fold_id(u) for u in excluded}:
        return True
    # Only a known guest is excluded as one: an account the state cannot tell about stays in (fail closed).
    if subject.guest is True and (GUESTS in excluded or users.get("excludeGuestsOrExternalUsers")):
        return True
    # A group missing from the state (not read, or gone) excludes nobody (rule 6). excludeRoles are never taken,
    # even with role assignments read: whether Conditional Access counts an assignment scoped to a unit, or a role
    # only eligible in PIM, is not something the guard can tell, so an exclusion by role saves nobody.
    return any(_chain(directory, fold_id(g), account_id) for g in sorted(_strings(users, "excludeGroups")))


def _through(users: Mapping[str, Any], subject: _Subject, directory: _Directory) -> str | None:
    """Rule 4: how the policy includes the account, the surest way first; None when it does not."""
    account_id = fold_id(subject.account.id)
    # "None" adds nobody but takes nobody away: groups or roles beside it still include (fail closed).
    included = _strings(users, "includeUsers")
    if any(u.casefold() == ALL for u in included):
        return "all users"
    if account_id in {fold_id(u) for u in included}:
        return "directly"
    # An account whose user type the state cannot tell is taken to be a guest when guests are included.
    if subject.guest is not False and (
        any(u.casefold() == GUESTS.casefold() for u in included) or users.get("includeGuestsOrExternalUsers")
    ):
        return "as a guest or external user" + ("" if subject.guest else " (its user type is unknown: assumed one)")
    for group_id in sorted(fold_id(g) for g in _strings(users, "includeGroups")):
        # A group missing from the state (not read, or gone) includes nobody (rule 6).
        chain = _chain(directory, group_id, account_id)
        if chain:
            return "through " + ", via ".join(_group_words(directory, g) for g in chain)
    roles = sorted(fold_id(r) for r in _strings(users, "includeRoles"))
    if roles and subject.roles is None:
        # Directory role assignments were not read, so the account is assumed to hold every included role.
        more = f"one of {len(roles)}; " if len(roles) > 1 else ""
        return f"through directory role {roles[0]} ({more}roles are not read: assumed held)"
    for role_id in roles:
        # A role held at any scope counts: whether Conditional Access counts a unit-scoped one is not for the guard
        # to bet on (fail closed).
        holding = (subject.roles or _EMPTY).get(role_id)
        if holding is not None:
            role = _role_words(role_id, directory.role_names.get(role_id))
            return f"through {role}, held by {_holding_words(directory, holding)}"
    return None


def _unmet(grant: Mapping[str, Any], satisfies: frozenset[str], directory: _Directory) -> str | None:
    """Rule 7: what the grant controls demand that the account cannot give, or None when it gets in."""
    builtins = _strings(grant, "builtInControls")
    if BLOCK in builtins:
        return BLOCK
    # Each requirement as (what `satisfies` names to meet it, how messages name it).
    requirements = [(name, name) for name in builtins]
    strength_id = _section(grant, "authenticationStrength").get("id")
    if isinstance(strength_id, str):
        requirements.append((strength_id, _strength_words(grant, strength_id, directory)))
    requirements += [(t, f"terms of use {t}") for t in _strings(grant, "termsOfUse")]
    requirements += [(f, f"custom authentication factor {f}") for f in _strings(grant, "customAuthenticationFactors")]
    if not requirements:
        return None  # session controls only: nothing to meet
    met = {s.casefold() for s in satisfies}
    unmet = [words for key, words in requirements if key.casefold() not in met]
    operator = grant.get("operator")
    if operator is None or (isinstance(operator, str) and operator.upper() == "OR"):
        return " or ".join(unmet) if len(unmet) == len(requirements) else None
    # "AND", and any operator the guard does not know, demands every requirement (fail closed).
    return " and ".join(unmet) if unmet else None


def _strength_words(grant: Mapping[str, Any], strength_id: str, directory: _Directory) -> str:
    """An authentication strength as messages name it: by its display name when the policy or the state has one."""
    # Canonical policies keep only the strength's id; its name lives on the authenticationStrengthPolicy object.
    name = _section(grant, "authenticationStrength").get("displayName") or directory.strength_names.get(
        fold_id(strength_id)
    )
    return f"authentication strength {name!r}" if isinstance(name, str) else f"authentication strength {strength_id}"
