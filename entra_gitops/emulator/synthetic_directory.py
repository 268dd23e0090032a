"""Synthetic people: the organization, users (members, guests, break-glass), groups and deleted users."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.synthetic_base import (
    DOMAIN,
    HIRED_POOL,
    INITIAL_DOMAIN,
    TAG_DELETED_USER,
    TAG_GROUP,
    TAG_USER,
    Draft,
    alias,
    ids,
)
from entra_gitops.emulator.synthetic_tables import tables


@dataclass
class People:
    """The users made, and what groups are built from: indexes by department, and of the synchronised users."""

    ids: list[str]
    objects: list[dict[str, Any]]
    by_department: dict[str, list[int]]
    synced: list[int]


@dataclass
class Groups:
    ids: list[str]
    objects: list[dict[str, Any]]


def organization(tenant_id: str) -> dict[str, Any]:
    return {
        "id": tenant_id,
        "displayName": "Contoso",
        "createdDateTime": "2019-03-04T08:51:20Z",
        "tenantType": "AAD",
        "countryLetterCode": "NO",
        "city": "Oslo",
        "country": "Norway",
        "preferredLanguage": "en",
        "businessPhones": ["+47 21 00 10 00"],
        "technicalNotificationMails": [f"it-admins@{DOMAIN}"],
        "securityComplianceNotificationMails": [],
        "marketingNotificationEmails": [],
        "onPremisesSyncEnabled": True,
        "verifiedDomains": [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": True,
                "isInitial": False,
                "name": DOMAIN,
                "type": "Managed",
            },
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": False,
                "isInitial": True,
                "name": INITIAL_DOMAIN,
                "type": "Managed",
            },
        ],
    }


def users(draft: Draft, n: int) -> People:
    t = tables()
    rng = draft.rng
    user_ids = ids(TAG_USER, n)
    given_ascii = [alias(g) for g in t.given_names]
    surname_ascii = [alias(x) for x in t.surnames]
    dept_weights = [d.weight for d in t.departments]
    city_weights = [c.weight for c in t.cities]
    n_given, n_surname = len(t.given_names), len(t.surnames)
    hired = draft.hired
    taken: dict[str, int] = {}
    people = People(user_ids, [], {d.name: [] for d in t.departments}, [])
    out = people.objects
    for i in range(n):
        uid = user_ids[i]
        if i < 2:
            out.append(_break_glass(uid, i + 1))
            continue
        gi, si = rng.randrange(n_given), rng.randrange(n_surname)
        given, surname = t.given_names[gi], t.surnames[si]
        base = f"{given_ascii[gi]}.{surname_ascii[si]}"
        seen = taken.get(base, 0)
        taken[base] = seen + 1
        nick = f"{base}{seen + 1}" if seen else base
        dept = rng.choices(t.departments, dept_weights)[0]
        city = rng.choices(t.cities, city_weights)[0]
        roll = rng.random()
        if roll < 0.02:
            # B2B guests: invited, with the partner's address folded into an #EXT# UPN.
            partner = t.partner_domains[i % len(t.partner_domains)]
            mail = f"{nick}@{partner}"
            upn = f"{nick}_{partner}#EXT#@{INITIAL_DOMAIN}"
            out.append(
                {
                    "id": uid,
                    "displayName": f"{given} {surname}",
                    "givenName": given,
                    "surname": surname,
                    "userPrincipalName": upn,
                    "mail": mail,
                    "mailNickname": f"{nick}_{partner}#EXT#",
                    "companyName": partner,
                    "businessPhones": [],
                    "otherMails": [mail],
                    "accountEnabled": True,
                    "userType": "Guest",
                    "creationType": "Invitation",
                    "externalUserState": "Accepted",
                    "createdDateTime": draft.when(),
                }
            )
            continue
        upn = f"{nick}@{DOMAIN}"
        user = {
            "id": uid,
            "displayName": f"{given} {surname}",
            "givenName": given,
            "surname": surname,
            "userPrincipalName": upn,
            "mail": upn,
            "mailNickname": nick,
            "jobTitle": dept.job_titles[rng.randrange(len(dept.job_titles))],
            "department": dept.name,
            "companyName": "Contoso",
            "officeLocation": city.office,
            "city": city.city,
            "country": city.country,
            "usageLocation": city.usage_location,
            "preferredLanguage": city.language,
            "businessPhones": [f"{city.phone_prefix}{i % 10000:04d}"],
            "otherMails": [],
            "employeeId": f"{100000 + i:06d}",
            "employeeType": t.employee_types[rng.randrange(len(t.employee_types))],
            "employeeHireDate": hired[rng.randrange(HIRED_POOL)],
            "employeeOrgData": {
                "division": dept.division,
                "costCenter": dept.cost_centres[rng.randrange(len(dept.cost_centres))],
            },
            "accountEnabled": roll >= 0.05,
            "userType": "Member",
            "createdDateTime": draft.when(),
        }
        if city.state is not None:
            user["state"] = city.state
        if roll >= 0.90:
            # A tenth of the staff still comes from on-premises AD, as in most hybrid tenants.
            user["onPremisesSyncEnabled"] = True
            user["onPremisesImmutableId"] = base64.b64encode(rng.getrandbits(128).to_bytes(16, "little")).decode()
            user["onPremisesSamAccountName"] = nick[:20]
            user["onPremisesDomainName"] = "corp.contoso.com"
            user["onPremisesUserPrincipalName"] = f"{nick}@corp.contoso.com"
            people.synced.append(i)
        people.by_department[dept.name].append(i)
        out.append(user)
    draft.seed["users"] = out
    return people


def _break_glass(uid: str, number: int) -> dict[str, Any]:
    upn = f"breakglass{number:02d}@{INITIAL_DOMAIN}"
    return {
        "id": uid,
        "displayName": f"Break Glass Admin {number:02d}",
        "userPrincipalName": upn,
        "mailNickname": f"breakglass{number:02d}",
        "usageLocation": "NO",
        "businessPhones": [],
        "otherMails": [],
        "accountEnabled": True,
        "userType": "Member",
        "passwordPolicies": "DisablePasswordExpiration",
        "createdDateTime": "2019-03-04T09:12:44Z",
    }


def groups(draft: Draft, n: int, people: People) -> Groups:
    """The groups, their members and owners (as `groups/{id}/members` and `/owners` seed entries)."""
    if n == 0:
        draft.seed["groups"] = []
        return Groups([], [])
    departments = tables().departments
    rng = draft.rng
    user_ids = people.ids
    n_users = len(user_ids)
    group_ids = ids(TAG_GROUP, n)
    out: list[dict[str, Any]] = []
    links: dict[str, list[str]] = {}
    # Special groups take the first indexes, so references to them are stable across sizes.
    n_dynamic = min(len(departments), n // 20)
    n_role = max(1, n // 200) if n >= 3 else 0
    n_synced = n // 10 if people.synced else 0
    nestable: list[int] = []
    for g in range(n):
        gid = group_ids[g]
        group: dict[str, Any] = {
            "id": gid,
            "displayName": "",
            "description": None,
            "createdDateTime": draft.when(),
            "groupTypes": [],
            "mailEnabled": False,
            "mailNickname": "",
            "securityEnabled": True,
        }
        owners: list[str] = []
        if g == 0:
            group["displayName"] = "SG-CA-Exclusions-BreakGlass"
            group["description"] = "Emergency access accounts excluded from Conditional Access."
            group["mailNickname"] = "sg-ca-exclusions"
            members = user_ids[: min(2, n_users)]
            owners = [user_ids[rng.randrange(n_users)]]
        elif g <= n_dynamic:
            dept = departments[g - 1].name
            group["displayName"] = f"{dept} - All (Dynamic)"
            group["mailNickname"] = f"dyn-{alias(dept).replace(' ', '-')}"
            group["groupTypes"] = ["DynamicMembership"]
            group["membershipRule"] = f'(user.department -eq "{dept}")'
            group["membershipRuleProcessingState"] = "On"
            members = [user_ids[j] for j in people.by_department[dept]]
            owners = [user_ids[rng.randrange(n_users)]]
        elif g <= n_dynamic + n_role:
            group["displayName"] = f"Entra Admins {g - n_dynamic:02d}"
            group["mailNickname"] = f"entra-admins-{g - n_dynamic:02d}"
            group["isAssignableToRole"] = True
            group["visibility"] = "Private"
            members = _sample_users(draft, user_ids, rng.randint(2, 6))
            owners = [user_ids[rng.randrange(n_users)]]
        elif g <= n_dynamic + n_role + n_synced:
            group["displayName"] = f"CORP-Share-{g:05d}-Readers"
            group["mailNickname"] = group["displayName"]
            group["onPremisesSyncEnabled"] = True
            group["onPremisesSamAccountName"] = group["displayName"]
            group["onPremisesDomainName"] = "corp.contoso.com"
            group["onPremisesNetBiosName"] = "CORP"
            # Synchronised groups can only hold synchronised users.
            k = min(len(people.synced), _group_size(draft, n_users))
            members = [user_ids[j] for j in rng.sample(people.synced, k)]
        else:
            members = _sample_users(draft, user_ids, _group_size(draft, n_users))
            owners = _sample_users(draft, user_ids, rng.randint(1, 2))
            if rng.random() < 0.25:
                group["displayName"] = f"Team {g:05d}"
                group["mailNickname"] = f"team{g:05d}"
                group["groupTypes"] = ["Unified"]
                group["mailEnabled"] = True
                group["securityEnabled"] = False
                group["mail"] = f"team{g:05d}@{DOMAIN}"
                group["visibility"] = "Private" if rng.random() < 0.7 else "Public"
            else:
                group["displayName"] = f"SG-Access-{g:05d}"
                group["mailNickname"] = f"sg-access-{g:05d}"
                nestable.append(g)
        out.append(group)
        links[gid] = members
        if owners:
            draft.seed[f"groups/{gid}/owners"] = owners
    # Only assigned security groups may contain groups (Microsoft 365, dynamic and role-assignable
    # groups cannot); pointing only at later groups keeps the nesting free of cycles.
    for pos, g in enumerate(nestable):
        if rng.random() < 0.05 and pos + 1 < len(nestable):
            child = nestable[rng.randrange(pos + 1, len(nestable))]
            links[group_ids[g]].append(group_ids[child])
    for gid in group_ids:
        draft.seed[f"groups/{gid}/members"] = links[gid]
    draft.seed["groups"] = out
    return Groups(group_ids, out)


def _group_size(draft: Draft, n_users: int) -> int:
    # Pareto with a floor of 5: most groups have 5-50 members, a few reach thousands.
    return min(n_users, int(5 * draft.rng.paretovariate(1.2)))


def _sample_users(draft: Draft, user_ids: list[str], k: int) -> list[str]:
    return [user_ids[j] for j in draft.rng.sample(range(len(user_ids)), min(k, len(user_ids)))]


def deleted_users(draft: Draft, n: int) -> list[dict[str, Any]]:
    t = tables()
    rng = draft.rng
    out = []
    for i, uid in enumerate(ids(TAG_DELETED_USER, n)):
        given, surname = t.given_names[rng.randrange(len(t.given_names))], t.surnames[rng.randrange(len(t.surnames))]
        nick = f"{alias(given)}.{alias(surname)}.left{i + 1}"
        out.append(
            {
                "@odata.type": "#microsoft.graph.user",
                "id": uid,
                "deletedDateTime": f"2026-11-{1 + rng.randrange(20):02d}T{rng.randrange(24):02d}:"
                f"{rng.randrange(60):02d}:00Z",
                "displayName": f"{given} {surname}",
                "givenName": given,
                "surname": surname,
                # Graph prefixes a soft-deleted user's UPN with its id so the name can be reused.
                "userPrincipalName": uid.replace("-", "") + f"{nick}@{DOMAIN}",
                "mail": f"{nick}@{DOMAIN}",
                "mailNickname": nick,
                "accountEnabled": False,
                "userType": "Member",
                "businessPhones": [],
                "otherMails": [],
                "createdDateTime": draft.when(),
            }
        )
    return out
