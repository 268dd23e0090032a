"""What the groups of request handlers share: their signature and what most of them read with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from entra_gitops.emulator.odata import Query
from entra_gitops.emulator.paging import Pager
from entra_gitops.emulator.properties import Properties
from entra_gitops.emulator.protocol import Reply, Request
from entra_gitops.emulator.routes import Route
from entra_gitops.emulator.store import Tenant

# route, the URL's parameters (ids, keys), the request, its parsed OData query.
Handler = Callable[[Route, dict[str, str], Request, Query], Reply]


@dataclass
class Reader:
    """A group of handlers that reads the tenant, checks and shapes properties, and pages what it lists."""

    tenant: Tenant
    properties: Properties
    pager: Pager
