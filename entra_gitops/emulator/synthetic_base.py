"""What every family of synthetic objects shares: the tenant's constants, the id scheme and the draft being filled."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from entra_gitops.emulator.graph_ids import assignment_id
from entra_gitops.emulator.synthetic_tables import tables

DOMAIN = "contoso.com"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"

# One tag per kind of id, placed in the GUID's fourth group: ids of different kinds can never collide,
# and a tag is enough to tell in a log which generator made an id.
TAG_TENANT = 0x8000
TAG_USER = 0x8001
TAG_GROUP = 0x8002
TAG_APPLICATION = 0x8003
TAG_APP_ID = 0x8004
TAG_SERVICE_PRINCIPAL = 0x8005
TAG_APP_ROLE = 0x8006
TAG_POLICY = 0x8007
TAG_LOCATION = 0x8008
TAG_DELETED_USER = 0x8009
TAG_CREDENTIAL = 0x800A
TAG_FIRST_PARTY = 0x800B
TAG_BLUEPRINT = 0x800C
TAG_BLUEPRINT_APP_ID = 0x800D
TAG_BLUEPRINT_PRINCIPAL = 0x800E
TAG_AGENT_IDENTITY = 0x800F
TAG_AGENT_USER = 0x8010
TAG_ADMIN_UNIT = 0x8011
TAG_ELIGIBILITY_SCHEDULE = 0x8012
APPS_PER_BLUEPRINT = 50
_MASK64 = (1 << 64) - 1
# Objects pick their times from pools, so 100,000 users share a few thousand strings.
CREATED_POOL = 4096
HIRED_POOL = 2048


def ids(tag: int, count: int) -> list[str]:
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


def alias(name: str) -> str:
    return name.lower().translate(tables().alias_letters)


def app_kind(index: int) -> str:
    # Kinds follow the index so that SyntheticSpec can tell, before generating, how many apps
    # sign users in and therefore how many delegated grants are possible.
    return ("web", "web", "web", "web", "web", "daemon", "daemon", "daemon", "public", "spa")[index % 10]


def delegated_app_count(apps: int) -> int:
    # Daemons sit at positions 5, 6 and 7 of every ten apps.
    daemons = apps // 10 * 3 + max(0, min(apps % 10, 8) - 5)
    return apps - daemons


def years_later(timestamp: str, years: int) -> str:
    # 29 February has no counterpart in most years; Graph would move such an expiry to the 28th.
    day = "02-28" if timestamp[5:10] == "02-29" else timestamp[5:10]
    return f"{int(timestamp[:4]) + years}-{day}{timestamp[10:]}"


def _timestamps(rng: random.Random, count: int, start: str, end: str) -> list[str]:
    """A sorted pool of ISO timestamps to pick from."""
    lo = int(dt.datetime.fromisoformat(start).timestamp())
    hi = int(dt.datetime.fromisoformat(end).timestamp())
    picks = sorted(rng.randrange(lo, hi) for _ in range(count))
    return [dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in picks]


@dataclass
class Draft:
    """A tenant being generated: the random stream every family draws from in turn, and the seed they fill."""

    rng: random.Random
    tenant_id: str
    created: list[str]
    hired: list[str]
    seed: dict[str, Any]

    @classmethod
    def start(cls, seed: int) -> Draft:
        rng = random.Random(seed)
        created = _timestamps(rng, CREATED_POOL, "2019-03-04T09:00:00+00:00", "2026-11-01T00:00:00+00:00")
        hire_dates = _timestamps(rng, HIRED_POOL, "2008-01-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
        hired = [t[:10] + "T00:00:00Z" for t in hire_dates]
        return cls(rng, ids(TAG_TENANT, 1)[0], created, hired, {})

    def when(self) -> str:
        """A creation time from the pool."""
        return self.created[self.rng.randrange(CREATED_POOL)]

    def assignment_id(self, principal_id: str) -> str:
        return assignment_id(principal_id, self.rng.getrandbits(128).to_bytes(16, "little"))
