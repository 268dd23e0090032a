"""Deterministic synthetic Entra tenants of any size, in the emulator's seed format."""

from __future__ import annotations

import base64
import datetime as dt
import random
import re
from dataclasses import dataclass, fields
from typing import Any

from entra_gitops.emulator.graph_ids import assignment_id, grant_id

# A typo such as users=1000000000 would otherwise try to allocate hundreds of gigabytes.
MAX_COUNT = 10_000_000

DOMAIN = "contoso.com"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"

# One tag per kind of id, placed in the GUID's fourth group: ids of different kinds can never collide,
# and a tag is enough to tell in a log which generator made an id.
_TAG_TENANT = 0x8000
_TAG_USER = 0x8001
_TAG_GROUP = 0x8002
_TAG_APPLICATION = 0x8003
_TAG_APP_ID = 0x8004
_TAG_SERVICE_PRINCIPAL = 0x8005
_TAG_APP_ROLE = 0x8006
_TAG_POLICY = 0x8007
_TAG_LOCATION = 0x8008
_TAG_DELETED_USER = 0x8009
_TAG_CREDENTIAL = 0x800A
_TAG_FIRST_PARTY = 0x800B
_TAG_BLUEPRINT = 0x800C
_TAG_BLUEPRINT_APP_ID = 0x800D
_TAG_BLUEPRINT_PRINCIPAL = 0x800E
_TAG_AGENT_IDENTITY = 0x800F
_TAG_AGENT_USER = 0x8010
APPS_PER_BLUEPRINT = 50
_MASK64 = (1 << 64) - 1


def _ids(tag: int, count: int) -> list[str]:
    """Lowercase GUIDs for items 0..count-1 of one kind.

    Ids depend only on the kind and the index, not on the seed, so tenants generated with different
    seeds share object identities and differ in content: exactly what a diff benchmark needs.
    The first three groups are scrambled so ids do not look sequential in listings.
    """
    out = []
    for i in range(count):
        h = ((i + 1) * 0x9E3779B97F4A7C15) & _MASK64
        h ^= h >> 29
        out.append(f"{h >> 32:08x}-{(h >> 16) & 0xFFFF:04x}-4{(h >> 4) & 0xFFF:03x}-{tag:04x}-{i:012x}")
    return out


def _assignment_id(principal_id: str, rng: random.Random) -> str:
    return assignment_id(principal_id, rng.getrandbits(128).to_bytes(16, "little"))


# -- the spec ----------------------------------------------------------------------------------

_SPEC_KEYS = ("users", "groups", "apps", "grants", "policies", "locations", "deleted", "seed")
_NUMBER = re.compile(r"[0-9]+(?:_[0-9]+)*")


@dataclass(frozen=True)
class SyntheticSpec:
    """The size of a synthetic tenant.

    Counts left as None are derived from `users` on construction: groups users/5, apps users/500
    (at least 3), grants one admin grant per app that signs users in plus half as many user grants,
    6 Conditional Access policies, 4 named locations, deleted users/1000 (at least 1). Agent ID comes with
    the apps: one agent identity blueprint per 50 apps, each with its principal, one agent identity and that
    identity's agent user (sponsored by a user), on top of the counts above.
    """

    users: int = 1000
    groups: int | None = None
    apps: int | None = None
    grants: int | None = None
    policies: int | None = None
    locations: int | None = None
    deleted: int | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            # bool is an int subclass; users=True is a bug, not one user.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{f.name}={value!r}: must be a whole number")
            if value < 0:
                raise ValueError(f"{f.name}={value}: must not be negative")
            if f.name != "seed" and value > MAX_COUNT:
                raise ValueError(f"{f.name}={value}: at most {MAX_COUNT:,} is supported")
        if self.users < 1:
            raise ValueError(f"users={self.users}: a tenant needs at least 1 user (the break-glass account)")
        users = self.users
        derived = {
            "groups": max(1, users // 5),
            "apps": max(3, users // 500),
            "policies": 6,
            "locations": 4,
            "deleted": max(1, users // 1000),
        }
        for name, value in derived.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        delegated = _delegated_app_count(self.apps)
        if self.grants is None:
            object.__setattr__(self, "grants", delegated + delegated // 2)
        # Each client app holds one admin grant and at most one grant per consenting user.
        capacity = delegated * (users + 1)
        if self.grants > capacity:
            raise ValueError(
                f"grants={self.grants}: apps={self.apps} and users={users} allow at most {capacity} "
                f"delegated grants ({delegated} apps sign users in)"
            )


def parse_spec(text: str) -> SyntheticSpec:
    """A spec from "users=N,groups=N,apps=N,grants=N,policies=N,locations=N,deleted=N,seed=N" (all optional)."""
    values: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep:
            raise ValueError(f"{part!r}: expected NAME=NUMBER, for example users=1000")
        if name not in _SPEC_KEYS:
            raise ValueError(f"{part!r}: unknown key {name!r}; known keys: {', '.join(_SPEC_KEYS)}")
        if name in values:
            raise ValueError(f"{part!r}: {name} is given twice")
        if not _NUMBER.fullmatch(raw):
            raise ValueError(f"{part!r}: {raw!r} is not a whole number")
        values[name] = int(raw)
    return SyntheticSpec(**values)


# -- reference data (shared, immutable strings) ------------------------------------------------

_GIVEN = (
    "Ingrid",
    "Lars",
    "Kari",
    "Ole",
    "Emma",
    "Oskar",
    "Freja",
    "Mikkel",
    "Nora",
    "Sofia",
    "Jonas",
    "Ida",
    "William",
    "Aiden",
    "Maja",
    "Elias",
    "Thea",
    "Jakob",
    "Hanna",
    "Olivia",
    "Per",
    "Astrid",
    "Magnus",
    "Siri",
    "Henrik",
    "Liam",
    "Noah",
    "Amelia",
    "Mia",
    "Lucas",
    "Sara",
    "Ahmed",
    "Fatima",
    "Mei",
    "Hiroshi",
    "Priya",
    "Arjun",
    "Chiara",
    "Mateo",
    "Zofia",
    "Ana",
    "João",
    "Søren",
    "Åsa",
    "Björn",
    "Chloé",
    "Kwame",
    "Yuki",
)
_SURNAMES = (
    "Nilsen",
    "Haugen",
    "Nordmann",
    "Berg",
    "Larsson",
    "Lindqvist",
    "Jensen",
    "Sørensen",
    "Bakken",
    "Null",
    "Andersson",
    "Pedersen",
    "Kristiansen",
    "Clarke",
    "Murphy",
    "Halvorsen",
    "Moen",
    "Eriksen",
    "Olsen",
    "Brown",
    "Aas",
    "Dahl",
    "Lie",
    "Johansen",
    "Strand",
    "Hansen",
    "Smith",
    "Garcia",
    "Silva",
    "Chen",
    "Wang",
    "Khan",
    "Patel",
    "Rossi",
    "Novak",
    "Kowalski",
    "Müller",
    "Dubois",
    "Øvrebø",
    "Åberg",
    "Lindström",
    "Mensah",
    "Tanaka",
    "Sato",
    "Nguyen",
    "O'Brien",
    "Yes",
    "True",
)
# Mail aliases are ASCII; display names keep their letters.
_ASCII = str.maketrans({"ø": "o", "å": "a", "æ": "ae", "ö": "o", "ä": "a", "ü": "u", "é": "e", "ã": "a", "'": ""})


def _alias(name: str) -> str:
    return name.lower().translate(_ASCII)


# department, division, cost centres, job titles, weight
_DEPARTMENTS = (
    (
        "Engineering",
        "Product",
        ("4000", "4010", "4020", "4030"),
        ("Software Engineer", "Senior Software Engineer", "DevOps Engineer", "Engineering Manager", "QA Engineer"),
        30,
    ),
    (
        "Sales",
        "Commercial",
        ("5000", "5010", "5020"),
        ("Account Executive", "Sales Engineer", "Sales Manager", "Sales Development Representative"),
        18,
    ),
    (
        "Customer Success",
        "Commercial",
        ("8000", "8010"),
        ("Customer Success Manager", "Support Engineer", "Support Team Lead"),
        14,
    ),
    (
        "Operations",
        "Corporate",
        ("9000", "9010"),
        ("Operations Analyst", "Logistics Coordinator", "Facilities Manager"),
        10,
    ),
    (
        "Marketing",
        "Commercial",
        ("0755", "0760"),
        ("Marketing Manager", "Content Specialist", "Product Marketing Manager"),
        7,
    ),
    (
        "Finance",
        "Corporate",
        ("2000", "2010"),
        ("Accountant", "Senior Accountant", "Financial Analyst", "Controller"),
        6,
    ),
    (
        "IT",
        "Corporate",
        ("3100", "3110"),
        ("IT Operations Engineer", "Service Desk Analyst", "Security Analyst", "Identity Administrator"),
        6,
    ),
    ("Human Resources", "Corporate", ("6000",), ("HR Business Partner", "Recruiter", "HR Coordinator"), 5),
    ("Legal", "Corporate", ("7000",), ("Legal Counsel", "Paralegal", "Compliance Officer"), 2),
    (
        "Executive",
        "Corporate",
        ("1000",),
        ("Chief Executive Officer", "Chief Financial Officer", "Chief Technology Officer"),
        1,
    ),
)
# city, state, country, usage location, office, phone prefix, language, weight
_CITIES = (
    ("Oslo", None, "Norway", "NO", "Oslo HQ", "+47 21 00 ", "nb-NO", 30),
    ("Bergen", None, "Norway", "NO", "Bergen", "+47 55 00 ", "nb-NO", 10),
    ("Stockholm", None, "Sweden", "SE", "Stockholm", "+46 8 555 ", "sv-SE", 15),
    ("Copenhagen", None, "Denmark", "DK", "Copenhagen", "+45 33 00 ", "da-DK", 10),
    ("London", None, "United Kingdom", "GB", "London", "+44 20 7946 ", "en-GB", 15),
    ("Toronto", "ON", "Canada", "CA", "Toronto", "+1 416 555 ", "en-CA", 8),
    ("Redmond", "WA", "United States", "US", "Redmond", "+1 425 555 ", "en-US", 8),
    ("Lisbon", None, "Portugal", "PT", "Lisbon", "+351 21 000 ", "pt-PT", 4),
)
_PARTNER_DOMAINS = ("fabrikam.com", "tailspintoys.com", "woodgrovebank.com", "northwindtraders.com", "adatum.com")
_EMPLOYEE_TYPES = ("Employee",) * 17 + ("Contractor", "Consultant", "Intern")

_GRAPH_ROLES = (
    (
        "df021288-bdef-4463-88db-98f22de89214",
        "User.Read.All",
        "Read all users' full profiles",
        "Allows the app to read user profiles without a signed in user.",
    ),
    (
        "5b567255-7703-4780-807c-7be8301ae99b",
        "Group.Read.All",
        "Read all groups",
        "Allows the app to read group properties and memberships, and read conversations for all groups, without a signed-in user.",
    ),
    (
        "98830695-27a2-44f7-8c18-0c3ebc9698f6",
        "GroupMember.Read.All",
        "Read all group memberships",
        "Allows the app to read memberships for all groups without a signed-in user.",
    ),
    (
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "Directory.Read.All",
        "Read directory data",
        "Allows the app to read data in your organization's directory, such as users, groups and apps, without a signed-in user.",
    ),
    (
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        "Application.Read.All",
        "Read all applications",
        "Allows the app to read all applications and service principals without a signed-in user.",
    ),
    (
        "246dd0d5-5bd0-4def-940b-0421030a5b68",
        "Policy.Read.All",
        "Read your organization's policies",
        "Allows the app to read all your organization's policies without a signed in user.",
    ),
    (
        "b0afded3-3588-46d8-8b3d-9842eff778da",
        "AuditLog.Read.All",
        "Read all audit log data",
        "Allows the app to read and query your audit log activities, without a signed-in user.",
    ),
    (
        "b633e1c5-b582-4048-a93e-9f11b44c7e96",
        "Mail.Send",
        "Send mail as any user",
        "Allows the app to send mail as any user without a signed-in user.",
    ),
)
_GRAPH_SCOPES = (
    (
        "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        "User.Read",
        "User",
        "Sign in and read user profile",
        "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users.",
    ),
    (
        "b340eb25-3456-403f-be2f-af7a0d370277",
        "User.ReadBasic.All",
        "User",
        "Read all users' basic profiles",
        "Allows the app to read a basic set of profile properties of other users in your organization on behalf of the signed-in user.",
    ),
    (
        "06da0dbc-49e2-44d2-8312-53f166ab848a",
        "Directory.Read.All",
        "Admin",
        "Read directory data",
        "Allows the app to read data in your organization's directory, such as users, groups and apps.",
    ),
    (
        "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
        "Mail.Read",
        "User",
        "Read user mail",
        "Allows the app to read the signed-in user's mailbox.",
    ),
    (
        "37f7f235-527c-4136-accd-4a02d197296e",
        "openid",
        "User",
        "Sign users in",
        "Allows users to sign in to the app with their work or school accounts and allows the app to see basic user profile information.",
    ),
    (
        "14dad69e-099b-42c9-810b-d002981feec1",
        "profile",
        "User",
        "View users' basic profile",
        "Allows the app to see your users' basic profile (e.g., name, picture, user name, email address)",
    ),
    (
        "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
        "email",
        "User",
        "View users' email address",
        "Allows the app to read your users' primary email address",
    ),
    (
        "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
        "offline_access",
        "User",
        "Maintain access to data you have given it access to",
        "Allows the app to see and update the data you gave it access to, even when users are not currently using the app.",
    ),
)
_SCOPE_ID = {value: sid for sid, value, *_ in _GRAPH_SCOPES}
_SIGN_IN_SCOPES = ("openid", "profile", "offline_access", "User.Read")
_EXTRA_SCOPES = ("User.ReadBasic.All", "Mail.Read", "email", "Directory.Read.All")
_APP_NAMES = (
    "HR Portal",
    "Expenses",
    "Payroll Sync",
    "Inventory API",
    "Field Mobile",
    "Partner Portal",
    "Reporting",
    "CRM Connector",
    "Build Agent",
    "Backup Service",
    "Intranet",
    "Ticketing",
    "Data Warehouse Loader",
    "Contract Manager",
    "Travel Booking",
)
_DIRECTORY_ROLES = (
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",  # Conditional Access Administrator
)
_COUNTRIES = ("NO", "SE", "DK", "FI", "IS", "GB", "IE", "DE", "NL", "FR", "PT", "ES", "CA", "US", "JP")
_BLOCKED_COUNTRIES = ("KP", "IR", "SY", "CU", "RU", "BY")

_BUILT_IN_STRENGTHS = (
    (
        "00000000-0000-0000-0000-000000000002",
        "Multifactor authentication",
        "Combinations of methods that satisfy strong authentication, such as a password + SMS",
        (
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
            "temporaryAccessPassOneTime",
            "temporaryAccessPassMultiUse",
            "password,microsoftAuthenticatorPush",
            "password,softwareOath",
            "password,hardwareOath",
            "password,sms",
            "password,voice",
            "federatedMultiFactor",
            "microsoftAuthenticatorPush,federatedSingleFactor",
            "softwareOath,federatedSingleFactor",
            "hardwareOath,federatedSingleFactor",
            "sms,federatedSingleFactor",
            "voice,federatedSingleFactor",
        ),
    ),
    (
        "00000000-0000-0000-0000-000000000003",
        "Passwordless MFA",
        "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the Microsoft Authenticator",
        ("windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"),
    ),
    (
        "00000000-0000-0000-0000-000000000004",
        "Phishing resistant MFA",
        "Phishing resistant, Passwordless methods for the strongest authentication, such as a FIDO2 security key",
        ("windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"),
    ),
)


def _app_kind(index: int) -> str:
    # Kinds follow the index so that SyntheticSpec can tell, before generating, how many apps
    # sign users in and therefore how many delegated grants are possible.
    return ("web", "web", "web", "web", "web", "daemon", "daemon", "daemon", "public", "spa")[index % 10]


def _delegated_app_count(apps: int) -> int:
    # Daemons sit at positions 5, 6 and 7 of every ten apps.
    daemons = apps // 10 * 3 + max(0, min(apps % 10, 8) - 5)
    return apps - daemons


def _years_later(timestamp: str, years: int) -> str:
    # 29 February has no counterpart in most years; Graph would move such an expiry to the 28th.
    day = "02-28" if timestamp[5:10] == "02-29" else timestamp[5:10]
    return f"{int(timestamp[:4]) + years}-{day}{timestamp[10:]}"


def _timestamps(rng: random.Random, count: int, start: str, end: str) -> list[str]:
    """A sorted pool of ISO timestamps; objects pick from it, so 100,000 users share a few thousand strings."""
    lo = int(dt.datetime.fromisoformat(start).timestamp())
    hi = int(dt.datetime.fromisoformat(end).timestamp())
    picks = sorted(rng.randrange(lo, hi) for _ in range(count))
    return [dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in picks]


# -- generation --------------------------------------------------------------------------------


def generate(spec: SyntheticSpec) -> dict[str, Any]:
    """A seed mapping (Graph v1.0 shapes) for a tenant of the spec's size; same spec, same output.

    Strings are shared between objects wherever they repeat; containers (dicts, lists) never are,
    because the emulator changes objects in place and a YAML dumper would turn shared containers
    into anchors and aliases.
    """
    return _Generator(spec).run()


class _Generator:
    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.tenant_id = _ids(_TAG_TENANT, 1)[0]
        self.created = _timestamps(self.rng, 4096, "2019-03-04T09:00:00+00:00", "2026-11-01T00:00:00+00:00")
        hire_dates = _timestamps(self.rng, 2048, "2008-01-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
        self.hired = [t[:10] + "T00:00:00Z" for t in hire_dates]
        self.seed: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        s = self.seed
        s["organization"] = [self.organization()]
        self.users()
        self.groups()
        self.applications()
        self.grants()
        s["identity/conditionalAccess/namedLocations"] = self.locations()
        s["policies/authenticationStrengthPolicies"] = self.strengths()
        s["identity/conditionalAccess/policies"] = self.policies()
        s["policies/authenticationMethodsPolicy"] = self.methods_policy()
        s["policies/authorizationPolicy"] = self.authorization_policy()
        s["directory/deletedItems"] = self.deleted_users()
        self.agents()
        return s

    # -- directory objects ----------------------------------------------------------------------

    def organization(self) -> dict[str, Any]:
        return {
            "id": self.tenant_id,
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

    def users(self) -> None:
        n = self.spec.users
        rng = self.rng
        ids = _ids(_TAG_USER, n)
        given_ascii = [_alias(g) for g in _GIVEN]
        surname_ascii = [_alias(x) for x in _SURNAMES]
        dept_weights = [d[4] for d in _DEPARTMENTS]
        city_weights = [c[7] for c in _CITIES]
        n_given, n_surname = len(_GIVEN), len(_SURNAMES)
        created, hired = self.created, self.hired
        taken: dict[str, int] = {}
        self.by_department: dict[str, list[int]] = {d[0]: [] for d in _DEPARTMENTS}
        self.synced: list[int] = []
        users: list[dict[str, Any]] = []
        for i in range(n):
            uid = ids[i]
            if i < 2:
                users.append(self.break_glass(uid, i + 1))
                continue
            gi, si = rng.randrange(n_given), rng.randrange(n_surname)
            given, surname = _GIVEN[gi], _SURNAMES[si]
            base = f"{given_ascii[gi]}.{surname_ascii[si]}"
            seen = taken.get(base, 0)
            taken[base] = seen + 1
            nick = f"{base}{seen + 1}" if seen else base
            dept = rng.choices(_DEPARTMENTS, dept_weights)[0]
            city = rng.choices(_CITIES, city_weights)[0]
            roll = rng.random()
            if roll < 0.02:
                # B2B guests: invited, with the partner's address folded into an #EXT# UPN.
                partner = _PARTNER_DOMAINS[i % len(_PARTNER_DOMAINS)]
                mail = f"{nick}@{partner}"
                upn = f"{nick}_{partner}#EXT#@{INITIAL_DOMAIN}"
                users.append(
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
                        "createdDateTime": created[rng.randrange(4096)],
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
                "jobTitle": dept[3][rng.randrange(len(dept[3]))],
                "department": dept[0],
                "companyName": "Contoso",
                "officeLocation": city[4],
                "city": city[0],
                "country": city[2],
                "usageLocation": city[3],
                "preferredLanguage": city[6],
                "businessPhones": [f"{city[5]}{i % 10000:04d}"],
                "otherMails": [],
                "employeeId": f"{100000 + i:06d}",
                "employeeType": _EMPLOYEE_TYPES[rng.randrange(len(_EMPLOYEE_TYPES))],
                "employeeHireDate": hired[rng.randrange(2048)],
                "employeeOrgData": {"division": dept[1], "costCenter": dept[2][rng.randrange(len(dept[2]))]},
                "accountEnabled": roll >= 0.05,
                "userType": "Member",
                "createdDateTime": created[rng.randrange(4096)],
            }
            if city[1] is not None:
                user["state"] = city[1]
            if roll >= 0.90:
                # A tenth of the staff still comes from on-premises AD, as in most hybrid tenants.
                user["onPremisesSyncEnabled"] = True
                user["onPremisesImmutableId"] = base64.b64encode(rng.getrandbits(128).to_bytes(16, "little")).decode()
                user["onPremisesSamAccountName"] = nick[:20]
                user["onPremisesDomainName"] = "corp.contoso.com"
                user["onPremisesUserPrincipalName"] = f"{nick}@corp.contoso.com"
                self.synced.append(i)
            self.by_department[dept[0]].append(i)
            users.append(user)
        self.user_ids = ids
        self.user_list = users
        self.seed["users"] = users

    def break_glass(self, uid: str, number: int) -> dict[str, Any]:
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

    def groups(self) -> None:
        n = self.spec.groups
        self.group_ids: list[str] = []
        self.group_list: list[dict[str, Any]] = []
        if n == 0:
            self.seed["groups"] = []
            return
        rng = self.rng
        user_ids = self.user_ids
        n_users = len(user_ids)
        ids = _ids(_TAG_GROUP, n)
        created = self.created
        groups: list[dict[str, Any]] = []
        links: dict[str, list[str]] = {}
        # Special groups take the first indexes, so references to them are stable across sizes.
        n_dynamic = min(len(_DEPARTMENTS), n // 20)
        n_role = max(1, n // 200) if n >= 3 else 0
        n_synced = n // 10 if self.synced else 0
        nestable: list[int] = []
        for g in range(n):
            gid = ids[g]
            group: dict[str, Any] = {
                "id": gid,
                "displayName": "",
                "description": None,
                "createdDateTime": created[rng.randrange(4096)],
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
                dept = _DEPARTMENTS[g - 1][0]
                group["displayName"] = f"{dept} - All (Dynamic)"
                group["mailNickname"] = f"dyn-{_alias(dept).replace(' ', '-')}"
                group["groupTypes"] = ["DynamicMembership"]
                group["membershipRule"] = f'(user.department -eq "{dept}")'
                group["membershipRuleProcessingState"] = "On"
                members = [user_ids[j] for j in self.by_department[dept]]
                owners = [user_ids[rng.randrange(n_users)]]
            elif g <= n_dynamic + n_role:
                group["displayName"] = f"Entra Admins {g - n_dynamic:02d}"
                group["mailNickname"] = f"entra-admins-{g - n_dynamic:02d}"
                group["isAssignableToRole"] = True
                group["visibility"] = "Private"
                members = self.sample_users(rng.randint(2, 6))
                owners = [user_ids[rng.randrange(n_users)]]
            elif g <= n_dynamic + n_role + n_synced:
                group["displayName"] = f"CORP-Share-{g:05d}-Readers"
                group["mailNickname"] = group["displayName"]
                group["onPremisesSyncEnabled"] = True
                group["onPremisesSamAccountName"] = group["displayName"]
                group["onPremisesDomainName"] = "corp.contoso.com"
                group["onPremisesNetBiosName"] = "CORP"
                # Synchronised groups can only hold synchronised users.
                k = min(len(self.synced), self.group_size())
                members = [user_ids[j] for j in rng.sample(self.synced, k)]
            else:
                members = self.sample_users(self.group_size())
                owners = self.sample_users(rng.randint(1, 2))
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
            groups.append(group)
            links[gid] = members
            if owners:
                self.seed[f"groups/{gid}/owners"] = owners
        # Only assigned security groups may contain groups (Microsoft 365, dynamic and role-assignable
        # groups cannot); pointing only at later groups keeps the nesting free of cycles.
        for pos, g in enumerate(nestable):
            if rng.random() < 0.05 and pos + 1 < len(nestable):
                child = nestable[rng.randrange(pos + 1, len(nestable))]
                links[ids[g]].append(ids[child])
        for gid in ids:
            self.seed[f"groups/{gid}/members"] = links[gid]
        self.group_ids = ids
        self.group_list = groups
        self.seed["groups"] = groups

    def group_size(self) -> int:
        # Pareto with a floor of 5: most groups have 5-50 members, a few reach thousands.
        return min(len(self.user_ids), int(5 * self.rng.paretovariate(1.2)))

    def sample_users(self, k: int) -> list[str]:
        ids = self.user_ids
        return [ids[j] for j in self.rng.sample(range(len(ids)), min(k, len(ids)))]

    # -- applications, service principals, grants -----------------------------------------------

    def applications(self) -> None:
        n = self.spec.apps
        rng = self.rng
        app_object_ids = _ids(_TAG_APPLICATION, n)
        app_ids = _ids(_TAG_APP_ID, n)
        sp_ids = _ids(_TAG_SERVICE_PRINCIPAL, n)
        first_party = _ids(_TAG_FIRST_PARTY, 1)
        key_ids = iter(_ids(_TAG_CREDENTIAL, 3 * n))
        role_ids = iter(_ids(_TAG_APP_ROLE, 2 * n))
        graph_sp = self.graph_service_principal(first_party[0])
        apps: list[dict[str, Any]] = []
        sps: list[dict[str, Any]] = [graph_sp]
        graph_assignments: list[dict[str, Any]] = []
        self.delegated_apps: list[tuple[str, tuple[str, ...]]] = []
        for i in range(n):
            kind = _app_kind(i)
            name = _APP_NAMES[i % len(_APP_NAMES)]
            if i >= len(_APP_NAMES):
                name = f"{name} {i // len(_APP_NAMES) + 1}"
            name = f"Contoso {name}"
            host = f"app{i:04d}.{DOMAIN}"
            app_id = app_ids[i]
            created = self.created[rng.randrange(4096)]
            access: list[dict[str, str]] = []
            scopes: tuple[str, ...] = ()
            roles: list[tuple[str, ...]] = []
            app_roles: list[dict[str, Any]] = []
            if kind == "daemon":
                roles = rng.sample(_GRAPH_ROLES, rng.randint(1, 3))
                access = [{"id": r[0], "type": "Role"} for r in roles]
            else:
                scopes = _SIGN_IN_SCOPES + tuple(rng.sample(_EXTRA_SCOPES, rng.randint(0, 2)))
                access = [{"id": _SCOPE_ID[v], "type": "Scope"} for v in scopes]
                self.delegated_apps.append((sp_ids[i], scopes))
            if kind == "web" and rng.random() < 0.5:
                app_roles = [
                    {
                        "allowedMemberTypes": ["User"],
                        "description": f"{value} of {name}.",
                        "displayName": value,
                        "id": next(role_ids),
                        "isEnabled": True,
                        "origin": "Application",
                        "value": f"App.{value}",
                    }
                    for value in ("Admin", "Reader")
                ]
            app: dict[str, Any] = {
                "id": app_object_ids[i],
                "appId": app_id,
                "displayName": name,
                "createdDateTime": created,
                "signInAudience": "AzureADandPersonalMicrosoftAccount" if kind == "public" else "AzureADMyOrg",
                "publisherDomain": DOMAIN,
                "identifierUris": [f"api://{app_id}"] if kind == "web" else [],
                "tags": [],
                "isFallbackPublicClient": True if kind == "public" else None,
                "appRoles": app_roles,
                "keyCredentials": [],
                "passwordCredentials": [],
                "publicClient": {"redirectUris": [f"msauth.com.contoso.app{i}://auth"] if kind == "public" else []},
                "spa": {"redirectUris": [f"https://{host}/"] if kind == "spa" else []},
                "web": {
                    "homePageUrl": f"https://{host}/" if kind == "web" else None,
                    "logoutUrl": None,
                    "redirectUris": [f"https://{host}/signin-oidc"] if kind == "web" else [],
                    "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
                },
                "requiredResourceAccess": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}],
            }
            if kind in ("web", "daemon"):
                # Credential metadata only: Graph never lists secretText or key.
                for _ in range(rng.randint(0, 2)):
                    start = self.created[rng.randrange(4096)]
                    app["passwordCredentials"].append(
                        {
                            "customKeyIdentifier": None,
                            "displayName": "client secret",
                            "hint": f"{rng.randrange(1000):03d}",
                            "keyId": next(key_ids),
                            "secretText": None,
                            "startDateTime": start,
                            "endDateTime": _years_later(start, 2),
                        }
                    )
            if kind == "daemon" and rng.random() < 0.5:
                start = self.created[rng.randrange(4096)]
                app["keyCredentials"].append(
                    {
                        "customKeyIdentifier": None,
                        "displayName": f"CN={name}",
                        "key": None,
                        "keyId": next(key_ids),
                        "startDateTime": start,
                        "endDateTime": _years_later(start, 1),
                        "type": "AsymmetricX509Cert",
                        "usage": "Verify",
                    }
                )
            apps.append(app)
            sp = {
                "id": sp_ids[i],
                "appId": app_id,
                "displayName": name,
                "appDisplayName": name,
                "appOwnerOrganizationId": self.tenant_id,
                "servicePrincipalType": "Application",
                "accountEnabled": True,
                "appRoleAssignmentRequired": bool(app_roles),
                "servicePrincipalNames": list(app["identifierUris"]) + [app_id],
                "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
                "signInAudience": app["signInAudience"],
                "appRoles": [dict(r, allowedMemberTypes=["User"]) for r in app_roles],
                "oauth2PermissionScopes": [],
                "keyCredentials": [],
                "passwordCredentials": [],
                "replyUrls": list(
                    app["web"]["redirectUris"] or app["spa"]["redirectUris"] or app["publicClient"]["redirectUris"]
                ),
            }
            sps.append(sp)
            for role in roles:
                graph_assignments.append(self.assignment(graph_sp, sp, "ServicePrincipal", role[0], created))
            if app_roles:
                self.seed[f"servicePrincipals/{sp['id']}/appRoleAssignedTo"] = self.app_assignments(sp, app_roles)
        self.seed["applications"] = apps
        self.seed["servicePrincipals"] = sps
        if graph_assignments:
            self.seed[f"servicePrincipals/{graph_sp['id']}/appRoleAssignedTo"] = graph_assignments
        self.graph_sp = graph_sp

    def agents(self) -> None:
        """Microsoft Entra Agent ID objects, in the plain collections with their @odata.type as Graph lists them.

        Made last and without the random generator, so every other object is the same with or without them.
        """
        n = self.spec.apps // APPS_PER_BLUEPRINT
        if not n:
            return
        blueprints, app_ids = _ids(_TAG_BLUEPRINT, n), _ids(_TAG_BLUEPRINT_APP_ID, n)
        principals, identities = _ids(_TAG_BLUEPRINT_PRINCIPAL, n), _ids(_TAG_AGENT_IDENTITY, n)
        agent_users = _ids(_TAG_AGENT_USER, n)
        humans = self.user_ids[2:] or self.user_ids  # not the break-glass accounts, where there are others
        for i in range(n):
            name, app_id = f"Contoso Agent {i + 1:03d}", app_ids[i]
            created = self.created[(i * 97) % len(self.created)]
            self.seed["applications"].append(
                {
                    "@odata.type": "#microsoft.graph.agentIdentityBlueprint",
                    "id": blueprints[i],
                    "appId": app_id,
                    "displayName": name,
                    "createdDateTime": created,
                    "signInAudience": "AzureADMyOrg",
                    "publisherDomain": DOMAIN,
                    "identifierUris": [f"api://{app_id}"],
                    "tags": [],
                    "appRoles": [],
                    "keyCredentials": [],
                    "passwordCredentials": [],
                    "requiredResourceAccess": [],
                }
            )
            self.seed["servicePrincipals"] += [
                {
                    "@odata.type": "#microsoft.graph.agentIdentityBlueprintPrincipal",
                    "id": principals[i],
                    "appId": app_id,
                    "displayName": name,
                    "appDisplayName": name,
                    "appOwnerOrganizationId": self.tenant_id,
                    "servicePrincipalType": "Application",
                    "accountEnabled": True,
                    "appRoleAssignmentRequired": False,
                    "tags": [],
                    "appRoles": [],
                    "oauth2PermissionScopes": [],
                },
                {
                    "@odata.type": "#microsoft.graph.agentIdentity",
                    "id": identities[i],
                    "displayName": f"{name} identity",
                    "agentIdentityBlueprintId": app_id,
                    "createdByAppId": app_id,
                    "servicePrincipalType": "ServiceIdentity",
                    "accountEnabled": True,
                    "tags": [],
                },
            ]
            nick = f"agent{i + 1:03d}"
            self.seed["users"].append(
                {
                    "@odata.type": "#microsoft.graph.agentUser",
                    "id": agent_users[i],
                    "displayName": f"{name} user",
                    "userPrincipalName": f"{nick}@{DOMAIN}",
                    "mail": f"{nick}@{DOMAIN}",
                    "mailNickname": nick,
                    "identityParentId": identities[i],
                    "accountEnabled": True,
                    "userType": "Member",
                    "businessPhones": [],
                    "otherMails": [],
                    "createdDateTime": created,
                }
            )
            self.seed[f"users/{agent_users[i]}/sponsors"] = [humans[(i * 7) % len(humans)]]

    def graph_service_principal(self, sp_id: str) -> dict[str, Any]:
        return {
            "id": sp_id,
            "appId": GRAPH_APP_ID,
            "displayName": "Microsoft Graph",
            "appDisplayName": "Microsoft Graph",
            "appOwnerOrganizationId": MICROSOFT_TENANT_ID,
            "servicePrincipalType": "Application",
            "accountEnabled": True,
            "appRoleAssignmentRequired": False,
            "signInAudience": "AzureADMultipleOrgs",
            "servicePrincipalNames": [GRAPH_APP_ID, "https://graph.microsoft.com", "https://graph.microsoft.com/"],
            "tags": [],
            "keyCredentials": [],
            "passwordCredentials": [],
            "replyUrls": [],
            "appRoles": [
                {
                    "allowedMemberTypes": ["Application"],
                    "description": desc,
                    "displayName": display,
                    "id": rid,
                    "isEnabled": True,
                    "origin": "Application",
                    "value": value,
                }
                for rid, value, display, desc in _GRAPH_ROLES
            ],
            "oauth2PermissionScopes": [
                {
                    "adminConsentDescription": desc,
                    "adminConsentDisplayName": display,
                    "id": sid,
                    "isEnabled": True,
                    "type": kind,
                    "userConsentDescription": desc,
                    "userConsentDisplayName": display,
                    "value": value,
                }
                for sid, value, kind, display, desc in _GRAPH_SCOPES
            ],
        }

    def assignment(
        self, resource: dict[str, Any], principal: dict[str, Any], principal_type: str, role_id: str, created: str
    ) -> dict[str, Any]:
        return {
            "id": _assignment_id(principal["id"], self.rng),
            "appRoleId": role_id,
            "createdDateTime": created,
            "principalDisplayName": principal["displayName"],
            "principalId": principal["id"],
            "principalType": principal_type,
            "resourceDisplayName": resource["displayName"],
            "resourceId": resource["id"],
        }

    def app_assignments(self, sp: dict[str, Any], roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        seen: set[tuple[str, str]] = set()
        for _ in range(rng.randint(1, 5)):
            role = roles[rng.randrange(len(roles))]["id"]
            if self.group_list and rng.random() < 0.4:
                principal, ptype = self.group_list[rng.randrange(len(self.group_list))], "Group"
            else:
                principal, ptype = self.user_list[rng.randrange(len(self.user_list))], "User"
            if (principal["id"], role) in seen:
                continue
            seen.add((principal["id"], role))
            out.append(self.assignment(sp, principal, ptype, role, self.created[rng.randrange(4096)]))
        return out

    def grants(self) -> None:
        rng = self.rng
        total = self.spec.grants
        resource = self.graph_sp["id"]
        apps = self.delegated_apps
        out: list[dict[str, Any]] = []
        for client, scopes in apps[:total]:
            out.append(
                {
                    "id": grant_id(client, resource, None),
                    "clientId": client,
                    "consentType": "AllPrincipals",
                    "principalId": None,
                    "resourceId": resource,
                    "scope": " ".join(scopes),
                }
            )
        wanted = total - len(out)
        if wanted > 0:
            n_users = len(self.user_ids)
            space = len(apps) * n_users
            if wanted * 2 > space:
                # Nearly every pair is wanted: drawing at random would keep hitting duplicates.
                pairs = [divmod(k, n_users) for k in rng.sample(range(space), wanted)]
            else:
                chosen: set[tuple[int, int]] = set()
                pairs = []
                while len(pairs) < wanted:
                    pair = (rng.randrange(len(apps)), rng.randrange(n_users))
                    if pair not in chosen:
                        chosen.add(pair)
                        pairs.append(pair)
            for a, u in pairs:
                client, scopes = apps[a]
                principal = self.user_ids[u]
                out.append(
                    {
                        "id": grant_id(client, resource, principal),
                        "clientId": client,
                        "consentType": "Principal",
                        "principalId": principal,
                        "resourceId": resource,
                        "scope": " ".join(scopes[: rng.randint(1, len(scopes))]),
                    }
                )
        self.seed["oauth2PermissionGrants"] = out

    # -- Conditional Access and policies ---------------------------------------------------------

    def locations(self) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for i, lid in enumerate(_ids(_TAG_LOCATION, self.spec.locations)):
            created = self.created[rng.randrange(4096)]
            base = {"id": lid, "createdDateTime": created, "modifiedDateTime": created}
            if i % 4 == 3:
                blocked = i % 8 == 7
                pool = _BLOCKED_COUNTRIES if blocked else _COUNTRIES
                out.append(
                    {
                        "@odata.type": "#microsoft.graph.countryNamedLocation",
                        **base,
                        "displayName": f"{'Blocked' if blocked else 'Allowed'} countries {i // 4 + 1}",
                        "countriesAndRegions": sorted(rng.sample(pool, rng.randint(2, 5))),
                        "includeUnknownCountriesAndRegions": blocked,
                        "countryLookupMethod": "clientIpAddress",
                    }
                )
            else:
                # Benchmarking (RFC 2544) and documentation (RFC 3849) ranges: never real networks.
                ranges = [
                    {
                        "@odata.type": "#microsoft.graph.iPv4CidrRange",
                        "cidrAddress": f"198.{18 + (i >> 8) % 2}.{i % 256}.0/24",
                    }
                ]
                if i % 2 == 0:
                    ranges.append(
                        {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": f"2001:db8:{i % 65536:x}::/48"}
                    )
                out.append(
                    {
                        "@odata.type": "#microsoft.graph.ipNamedLocation",
                        **base,
                        "displayName": f"Office network {i + 1}",
                        "isTrusted": i % 3 != 2,
                        "ipRanges": ranges,
                    }
                )
        self.location_ids = [loc["id"] for loc in out]
        return out

    def strengths(self) -> list[dict[str, Any]]:
        return [
            {
                "id": sid,
                "createdDateTime": "2021-12-01T00:00:00Z",
                "modifiedDateTime": "2021-12-01T00:00:00Z",
                "displayName": name,
                "description": desc,
                "policyType": "builtIn",
                "requirementsSatisfied": "mfa",
                "allowedCombinations": list(combos),
            }
            for sid, name, desc, combos in _BUILT_IN_STRENGTHS
        ]

    def policies(self) -> list[dict[str, Any]]:
        rng = self.rng
        break_glass = self.user_ids[:2]
        exclusions = self.group_ids[:1]
        templates = (
            ("Require MFA for all users", "enabled", {}, {"builtInControls": ["mfa"]}, None),
            (
                "Block legacy authentication",
                "enabled",
                {"clientAppTypes": ["exchangeActiveSync", "other"]},
                {"builtInControls": ["block"]},
                None,
            ),
            (
                "Phishing-resistant MFA for administrators",
                "enabled",
                {"roles": True},
                {"strength": 2},
                {"value": 4, "type": "hours", "frequencyInterval": "timeBased"},
            ),
            (
                "Block access outside allowed locations",
                "enabled",
                {"locations": True},
                {"builtInControls": ["block"]},
                None,
            ),
            (
                "High user risk requires password change",
                "enabledForReportingButNotEnforced",
                {"userRiskLevels": ["high"]},
                {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]},
                {"value": None, "type": None, "frequencyInterval": "everyTime"},
            ),
            (
                "Risky sign-ins to Office 365 need MFA",
                "disabled",
                {"signInRiskLevels": ["high", "medium"], "office": True},
                {"strength": 0},
                {"value": 1, "type": "days", "frequencyInterval": "timeBased"},
            ),
        )
        pilot_states = ("enabledForReportingButNotEnforced", "disabled", "enabled")
        out = []
        for i, pid in enumerate(_ids(_TAG_POLICY, self.spec.policies)):
            name, state, cond, grant, frequency = templates[i % len(templates)]
            if i >= len(templates):
                state = pilot_states[i % len(pilot_states)]
            number = f"CA{i + 1:03d}"
            users: dict[str, Any] = {
                "includeUsers": ["All"],
                "excludeUsers": list(break_glass),
                "includeGroups": [],
                "excludeGroups": list(exclusions),
                "includeRoles": [],
                "excludeRoles": [],
                "includeGuestsOrExternalUsers": None,
                "excludeGuestsOrExternalUsers": None,
            }
            if cond.get("roles"):
                users["includeUsers"] = []
                users["includeRoles"] = list(_DIRECTORY_ROLES)
                users["includeGroups"] = [g["id"] for g in self.group_list if g.get("isAssignableToRole")][:3]
            elif i >= len(templates) and len(self.group_ids) > 1:
                # Copies beyond the templates target a slice of the organisation, as pilots do.
                users["includeUsers"] = []
                users["includeGroups"] = [self.group_ids[rng.randrange(1, len(self.group_ids))]]
            locations = None
            if cond.get("locations") and self.location_ids:
                excluded = [self.location_ids[rng.randrange(len(self.location_ids))], "AllTrusted"]
                locations = {"includeLocations": ["All"], "excludeLocations": excluded}
            strength = None
            if "strength" in grant:
                sid, sname, sdesc, combos = _BUILT_IN_STRENGTHS[grant["strength"]]
                strength = {
                    "id": sid,
                    "createdDateTime": "2021-12-01T00:00:00Z",
                    "modifiedDateTime": "2021-12-01T00:00:00Z",
                    "displayName": sname,
                    "description": sdesc,
                    "policyType": "builtIn",
                    "requirementsSatisfied": "mfa",
                    "allowedCombinations": list(combos),
                }
            session = None
            if frequency:
                session = {
                    "disableResilienceDefaults": None,
                    "applicationEnforcedRestrictions": None,
                    "cloudAppSecurity": None,
                    "persistentBrowser": None,
                    "secureSignInSession": None,
                    "signInFrequency": {
                        **frequency,
                        "authenticationType": "primaryAndSecondaryAuthentication",
                        "isEnabled": True,
                    },
                }
            created = self.created[rng.randrange(4096)]
            out.append(
                {
                    "id": pid,
                    "templateId": None,
                    "displayName": f"{number} - {name}",
                    "createdDateTime": created,
                    "modifiedDateTime": max(created, self.created[rng.randrange(4096)]),
                    "state": state,
                    "conditions": {
                        "userRiskLevels": list(cond.get("userRiskLevels", ())),
                        "signInRiskLevels": list(cond.get("signInRiskLevels", ())),
                        "clientAppTypes": list(cond.get("clientAppTypes", ("all",))),
                        "servicePrincipalRiskLevels": [],
                        "platforms": None,
                        "locations": locations,
                        "devices": None,
                        "clientApplications": None,
                        "applications": {
                            "includeApplications": ["Office365" if cond.get("office") else "All"],
                            "excludeApplications": [],
                            "includeUserActions": [],
                            "includeAuthenticationContextClassReferences": [],
                            "applicationFilter": None,
                        },
                        "users": users,
                    },
                    "grantControls": {
                        "operator": grant.get("operator", "OR"),
                        "builtInControls": list(grant.get("builtInControls", ())),
                        "customAuthenticationFactors": [],
                        "termsOfUse": [],
                        "authenticationStrength": strength,
                    },
                    "sessionControls": session,
                }
            )
        return out

    def methods_policy(self) -> dict[str, Any]:
        def target(tid: str, **extra: Any) -> dict[str, Any]:
            return {"targetType": "group", "id": tid, "isRegistrationRequired": False, **extra}

        # The passkey pilot is a real group when there is one; "all_users" is Graph's built-in target.
        pilot = self.group_ids[-1] if len(self.group_ids) > 1 else "all_users"
        return {
            "id": "authenticationMethodsPolicy",
            "displayName": "Authentication Methods Policy",
            "description": "The tenant-wide policy that controls which authentication methods are allowed in the tenant, "
            "authentication method registration requirements, and self-service password reset settings",
            "lastModifiedDateTime": "2026-09-01T08:12:00Z",
            "policyVersion": "1.5",
            "reconfirmationInDays": 0,
            "policyMigrationState": "migrationComplete",
            "authenticationMethodConfigurations": [
                {
                    "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
                    "id": "Email",
                    "state": "enabled",
                    "allowExternalIdToUseEmailOtp": "default",
                    "excludeTargets": [],
                    "includeTargets": [target("all_users")],
                },
                {
                    "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                    "id": "Fido2",
                    "state": "enabled",
                    "isAttestationEnforced": True,
                    "isSelfServiceRegistrationAllowed": True,
                    "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
                    "excludeTargets": [],
                    "includeTargets": [target(pilot)],
                },
                {
                    "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethodConfiguration",
                    "id": "MicrosoftAuthenticator",
                    "state": "enabled",
                    "isSoftwareOathEnabled": False,
                    "excludeTargets": [],
                    "includeTargets": [target("all_users", authenticationMode="any")],
                },
                {
                    "@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration",
                    "id": "Voice",
                    "state": "disabled",
                    "isOfficePhoneAllowed": False,
                    "excludeTargets": [],
                    "includeTargets": [target("all_users")],
                },
                {
                    "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
                    "id": "Sms",
                    "state": "disabled",
                    "excludeTargets": [],
                    "includeTargets": [target("all_users", isUsableForSignIn=False)],
                },
                {
                    "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethodConfiguration",
                    "id": "SoftwareOath",
                    "state": "enabled",
                    "excludeTargets": [],
                    "includeTargets": [target("all_users")],
                },
                {
                    "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                    "id": "TemporaryAccessPass",
                    "state": "enabled",
                    "defaultLifetimeInMinutes": 60,
                    "defaultLength": 8,
                    "minimumLifetimeInMinutes": 60,
                    "maximumLifetimeInMinutes": 480,
                    "isUsableOnce": True,
                    "excludeTargets": [],
                    "includeTargets": [target("all_users")],
                },
                {
                    "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
                    "id": "X509Certificate",
                    "state": "disabled",
                    "certificateUserBindings": [
                        {
                            "x509CertificateField": "PrincipalName",
                            "userProperty": "onPremisesUserPrincipalName",
                            "priority": 1,
                            "trustAffinityLevel": "low",
                        },
                        {
                            "x509CertificateField": "RFC822Name",
                            "userProperty": "userPrincipalName",
                            "priority": 2,
                            "trustAffinityLevel": "low",
                        },
                    ],
                    "authenticationModeConfiguration": {
                        "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
                        "x509CertificateDefaultRequiredAffinityLevel": "low",
                        "rules": [],
                    },
                    "excludeTargets": [],
                    "includeTargets": [target("all_users")],
                },
            ],
        }

    def authorization_policy(self) -> dict[str, Any]:
        return {
            "id": "authorizationPolicy",
            "displayName": "Authorization Policy",
            "description": "Used to manage authorization related settings across the company.",
            "allowInvitesFrom": "adminsAndGuestInviters",
            "allowedToSignUpEmailBasedSubscriptions": False,
            "allowedToUseSSPR": True,
            "allowEmailVerifiedUsersToJoinOrganization": False,
            "blockMsolPowerShell": True,
            "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
            "defaultUserRolePermissions": {
                "allowedToCreateApps": False,
                "allowedToCreateSecurityGroups": False,
                "allowedToCreateTenants": False,
                "allowedToReadBitlockerKeysForOwnedDevice": True,
                "allowedToReadOtherUsers": True,
                "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForSelf.microsoft-user-default-low"],
            },
        }

    def deleted_users(self) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for i, uid in enumerate(_ids(_TAG_DELETED_USER, self.spec.deleted)):
            given, surname = _GIVEN[rng.randrange(len(_GIVEN))], _SURNAMES[rng.randrange(len(_SURNAMES))]
            nick = f"{_alias(given)}.{_alias(surname)}.left{i + 1}"
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
                    "createdDateTime": self.created[rng.randrange(4096)],
                }
            )
        return out
