"""A local, in-memory Microsoft Graph v1.0 for the demo, the tests and the benchmarks.

It answers over the same HTTP API as Graph and refuses what Graph refuses. It imports only the model (the
registry, for the types it serves); nothing of the product's stages imports it but the command line.
"""

from __future__ import annotations

from entra_gitops.emulator.app import Emulator
from entra_gitops.emulator.limits import Faults, Throttle, parse_faults
from entra_gitops.emulator.seed import load_tenant
from entra_gitops.model.registry import Registry, default_registry

__all__ = ["Emulator", "create_emulator"]


def create_emulator(
    seed: str = "demo",
    *,
    throttle: bool = False,
    throttle_scale: float = 1.0,
    faults: str = "",
    latency_ms: int = 0,
    registry: Registry | None = None,
) -> Emulator:
    """An ASGI Graph emulator over the tenant that `seed` describes."""
    tenant = load_tenant(registry or default_registry(), seed)
    limiter = None
    if throttle:
        users = tenant.count(tenant.registry.get("user")) if "user" in tenant.registry else 0
        limiter = Throttle(users, scale=throttle_scale)
    rules = parse_faults(faults) if faults else ()
    return Emulator(tenant, throttle=limiter, faults=Faults(rules) if rules else None, latency_ms=latency_ms)
