"""The emulator command: a local Microsoft Graph v1.0 served on loopback until interrupted."""

from __future__ import annotations

import sys

import click

from entra_gitops.cli.output import command_lines


def try_lines(url: str) -> str:
    """Commands that work as printed against the emulator at `url`: a first backup, then a report and a plan."""
    return command_lines(
        (f"entra-gitops snapshot --repo tenant --graph-url {url}", "back it up into a new repository ./tenant"),
        ("cd tenant", ""),
        (f"entra-gitops diff --graph-url {url}", "that backup against the emulator, as it is now"),
        (f"entra-gitops plan --graph-url {url} -o plan.json", "the writes that would bring it back"),
    )


@click.command("emulator")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on (never a public one)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port; 0 picks a free one."
)
@click.option(
    "--seed",
    default="demo",
    show_default=True,
    help="'demo', a seed file (.json/.yaml in Graph's shapes), or 'synthetic:users=N,groups=N,apps=N,...'.",
)
@click.option(
    "--latency-ms", type=click.IntRange(0, 60000), default=0, show_default=True, help="Delay added to every response."
)
@click.option(
    "--faults",
    default="",
    help="Inject faults: RULE[;RULE...], each an action (STATUS, truncate=N, repeat-skiptoken, expire-token), "
    "delay=SECONDS, or both, with every=N, first=N, p=P, path=GLOB, method=M (and retry-after=N|none, after-commit "
    "with a STATUS), e.g. '429,every=5,retry-after=none;delay=2,path=users*'. See the README's 'Faults and limits'.",
)
@click.option(
    "--throttle", is_flag=True, help="Enforce Graph's documented limits (resource units, writes, Conditional Access)."
)
@click.option(
    "--throttle-scale",
    type=click.FloatRange(0.001, 1000),
    default=1.0,
    show_default=True,
    help="Multiply every enforced limit.",
)
def emulator_command(
    host: str, port: int, seed: str, latency_ms: int, faults: str, throttle: bool, throttle_scale: float
) -> None:
    """Serve a local Microsoft Graph v1.0 emulator until interrupted.

    It prints its base URL when ready; pass that URL as --graph-url to entra-gitops or to any
    Graph client. Every request needs a bearer token: an opaque one (entra-gitops's local token, or
    'Authorization: Bearer local' with curl) may do everything; an unsigned JWT is held to the
    permissions in its `roles` (or `scp`) claim, as Graph would. The tenant lives in memory and
    starts from --seed. Every accepted write is a directoryAudit event (GET auditLogs/directoryAudits,
    which a JWT reads with AuditLog.Read.All and Directory.Read.All) naming who made it: a JWT with
    `upn` (or `unique_name`), `oid` and `name` is that user; one with `appid` and `app_displayname`
    (and `oid`, its service principal) is that application; an opaque token is the user "Emulator
    Administrator" (admin@ the tenant's default domain).

    \b
    Examples:
      entra-gitops emulator --seed demo                  then, elsewhere: --graph-url http://127.0.0.1:8080/v1.0
      entra-gitops emulator --port 0 --seed synthetic:users=5000,groups=200 --throttle
      entra-gitops emulator --faults '503,first=2;429,every=5,retry-after=1'
    Exit 0 stopped (Ctrl+C), 1 error (a busy port, a bad seed or fault rule).
    """
    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import listen, serve

    # The port first: a busy one is said before a large synthetic tenant takes its time to seed.
    sock = listen(host, port)
    try:
        app = create_emulator(
            seed, throttle=throttle, throttle_scale=throttle_scale, faults=faults, latency_ms=latency_ms
        )
    except BaseException:
        sock.close()
        raise
    counts = ", ".join(
        f"{app.tenant.count(t)} {t.folder}" for t in app.registry if not t.singleton and t.parent is None
    )
    click.echo(f"Seeded tenant {app.tenant.tenant_id}: {counts}.", err=True)

    def ready(url: str) -> None:
        click.echo(url)
        click.echo(f"Graph emulator listening (Ctrl+C stops). Try, in another terminal:\n{try_lines(url)}", err=True)
        sys.stdout.flush()

    try:
        serve(app, host, port, ready, sock=sock)
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)
