"""The command line: the only module that prints, and the one boundary that maps errors to exit codes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import httpx
from click.core import ParameterSource

from entra_gitops import __version__
from entra_gitops.errors import EntraGitopsError, ExitCode
from entra_gitops.graph.auth import AuthMethod, AuthSettings
from entra_gitops.graph.client import DEFAULT_GRAPH_URL, GraphStats, connect
from entra_gitops.registry import default_registry

LOCAL_URL = "http://127.0.0.1/v1.0"


def graph_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to Graph: where, and how to sign in."""
    options = [
        click.option(
            "--graph-url",
            envvar="ENTRA_GITOPS_GRAPH_URL",
            default=DEFAULT_GRAPH_URL,
            show_default=True,
            help="Graph v1.0 base URL; a loopback URL (the emulator) signs in with a local token. "
            "Env: ENTRA_GITOPS_GRAPH_URL.",
        ),
        click.option(
            "--auth",
            "auth_method",
            type=click.Choice([m.value for m in AuthMethod]),
            default=None,
            help="How to sign in. Default: GitHub OIDC inside Actions, a client secret or certificate when "
            "configured, else DefaultAzureCredential. Env: ENTRA_GITOPS_AUTH.",
        ),
        click.option("--tenant-id", default=None, help="Directory (tenant) id. Env: AZURE_TENANT_ID."),
        click.option("--client-id", default=None, help="Application (client) id. Env: AZURE_CLIENT_ID."),
        click.option(
            "--certificate-path",
            type=click.Path(dir_okay=False),
            default=None,
            help="PEM or PKCS12 certificate for --auth certificate. Env: AZURE_CLIENT_CERTIFICATE_PATH. "
            "A client secret is read only from AZURE_CLIENT_SECRET, never from a flag.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Requests in flight at once.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def auth_settings(
    auth_method: str | None, tenant_id: str | None, client_id: str | None, certificate_path: str | None
) -> AuthSettings:
    """Sign-in settings from the shared Graph options, the environment filling what they leave out."""
    return AuthSettings.from_env(
        method=AuthMethod(auth_method) if auth_method else None,
        tenant_id=tenant_id,
        client_id=client_id,
        certificate_path=certificate_path,
    )


def describe_stats(stats: GraphStats, seconds: float) -> str:
    """One line on what a run cost Graph."""
    return (
        f"{stats.requests} requests, {stats.resource_units} resource units, {stats.retries} retries "
        f"({stats.throttled} throttled), {stats.bytes_read / 1024:.0f} KiB in {seconds:.1f} s"
    )


class Commands(click.Group):
    """The command group and the one error boundary: a user-facing error is one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EntraGitopsError as err:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="entra-gitops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep a Microsoft Entra tenant's configuration as reviewed, versioned files.

    \b
    Start here:
      entra-gitops demo                      everything, against a built-in Graph emulator
      entra-gitops emulator --seed demo      a local Graph to point any client at
    """
    ctx.obj = {"debug": debug}


@cli.command()
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
    "--faults", default="", help="Inject failures, e.g. '429,every=5,retry-after=none;503,first=2,path=users'."
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
def emulator(
    host: str, port: int, seed: str, latency_ms: int, faults: str, throttle: bool, throttle_scale: float
) -> None:
    """Serve a local Microsoft Graph v1.0 emulator until interrupted.

    It prints its base URL when ready; pass that URL as --graph-url to entra-gitops or to any
    Graph client (it accepts any bearer token). The tenant lives in memory and starts from --seed.
    """
    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import require_loopback, serve

    require_loopback(host)
    app = create_emulator(seed, throttle=throttle, throttle_scale=throttle_scale, faults=faults, latency_ms=latency_ms)
    counts = ", ".join(
        f"{app.tenant.count(t)} {t.folder}" for t in app.registry if not t.singleton and t.parent is None
    )
    click.echo(f"Seeded tenant {app.tenant.tenant_id}: {counts}.", err=True)

    def ready(url: str) -> None:
        click.echo(url)
        click.echo(f"Graph emulator listening; try: entra-gitops demo --graph-url {url}   (Ctrl+C stops)", err=True)
        sys.stdout.flush()

    try:
        serve(app, host, port, ready)
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


@cli.command()
@graph_options
@click.option(
    "--seed", default="demo", show_default=True, help="Seed of the in-process emulator when --graph-url is not given."
)
def demo(
    graph_url: str,
    auth_method: str | None,
    tenant_id: str | None,
    client_id: str | None,
    certificate_path: str | None,
    concurrency: int,
    seed: str,
) -> None:
    """Read a whole tenant through msgraph-sdk, against the built-in emulator unless --graph-url says otherwise.

    Every resource type entra-gitops knows is read the way a snapshot reads it: raw JSON pages,
    $select, concurrent under one throttle-aware limiter. The table shows what was found.
    """
    from entra_gitops.graph.reader import read_tenant

    registry = default_registry()
    transport = None
    if click.get_current_context().get_parameter_source("graph_url") is ParameterSource.DEFAULT:
        from entra_gitops.emulator import create_emulator

        click.echo(f"Starting the built-in Graph emulator in process (seed: {seed}).")
        transport = httpx.ASGITransport(app=create_emulator(seed))
        graph_url = LOCAL_URL
    click.echo(f"Reading every resource type from {graph_url} ...")

    async def run() -> Any:
        settings = auth_settings(auth_method, tenant_id, client_id, certificate_path)
        async with connect(graph_url, auth=settings, transport=transport, concurrency=concurrency) as client:
            return await read_tenant(client, registry, tuple(registry))

    started = time.monotonic()
    result = asyncio.run(run())
    elapsed = time.monotonic() - started
    width = max(len(t.name) for t in registry)
    for rtype in registry:
        line = f"  {rtype.name:<{width}}  {result.count(rtype.name):>6}"
        if rtype.name in result.deleted:
            line += f"   ({len(result.deleted[rtype.name])} soft-deleted)"
        links = [f"{sum(len(v) for v in result.links[(rtype.name, p.name)].values())} {p.name}" for p in rtype.links]
        if links:
            line += "   " + ", ".join(links)
        click.echo(line)
    click.echo(f"Read with {describe_stats(result.stats, elapsed)}.")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors exit 1, because 2 means "differences present" for every command."""
    try:
        code = cli.main(args=argv, prog_name="entra-gitops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = ExitCode.ERROR
    except click.ClickException as err:
        err.show()
        code = ExitCode.ERROR
    except click.exceptions.Exit as done:
        code = done.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    sys.exit(code or ExitCode.OK)
