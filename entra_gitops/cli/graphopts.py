"""The options of every command that talks to Graph, and running a command's Graph work under them."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import click
from click.core import ParameterSource

from entra_gitops.cli.output import warn
from entra_gitops.cli.progress import progress_display
from entra_gitops.graph.auth import AuthMethod, AuthSettings
from entra_gitops.graph.client import DEFAULT_GRAPH_URL, GraphClient, RetryPolicy, connect
from entra_gitops.model.errors import GraphError
from entra_gitops.model.progress import Progress
from entra_gitops.model.reads import GraphStats
from entra_gitops.model.settings import Config
from entra_gitops.state import signals

T = TypeVar("T")


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
        click.option(
            "--max-wait",
            type=click.FloatRange(0, 3600),
            default=120.0,
            show_default=True,
            help="Longest Retry-After to wait through; Graph asking for longer fails the run instead.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(1, 7 * 86400),
            default=None,
            help="Give up after this many seconds of talking to Graph (an apply's journal lets a rerun continue).",
        ),
    ]

    @functools.wraps(command)
    def with_graph(
        *args: Any,
        graph_url: str,
        auth_method: str | None,
        tenant_id: str | None,
        client_id: str | None,
        certificate_path: str | None,
        concurrency: int,
        max_wait: float,
        timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        chosen = click.get_current_context().get_parameter_source("graph_url") is not ParameterSource.DEFAULT
        deadline = time.monotonic() + timeout if timeout else None
        graph = GraphOptions(
            graph_url, chosen, auth_method, tenant_id, client_id, certificate_path, concurrency, max_wait, deadline,
            timeout,
        )  # fmt: skip
        return command(*args, graph=graph, **kwargs)

    for option in reversed(options):
        with_graph = option(with_graph)
    return with_graph


class GraphOptions(NamedTuple):
    """Where Graph is and how to sign in, as the shared options said (the repository's config fills gaps)."""

    url: str
    url_chosen: bool
    auth_method: str | None
    tenant_id: str | None
    client_id: str | None
    certificate_path: str | None
    concurrency: int
    max_wait: float = 120.0
    deadline: float | None = None  # time.monotonic() by which the command gives up talking to Graph
    timeout: float | None = None

    def connect(self, config: Config | None = None) -> GraphClient:
        """A client for these options; an unset URL or tenant comes from entra-gitops.yaml when it has one."""
        url = config.graph_url if config and config.graph_url and not self.url_chosen else self.url
        settings = AuthSettings.from_env(
            method=AuthMethod(self.auth_method) if self.auth_method else None,
            tenant_id=self.tenant_id or (config.tenant_id if config else None),
            client_id=self.client_id,
            certificate_path=self.certificate_path,
        )
        client = connect(url, auth=settings, concurrency=self.concurrency, retry=RetryPolicy(max_wait=self.max_wait))
        client.on_wait = warn
        return client


def describe_stats(stats: GraphStats, seconds: float) -> str:
    """One line on what a run cost Graph."""
    return (
        f"{stats.requests} requests, {stats.resource_units} resource units, {stats.retries} retries "
        f"({stats.throttled} throttled), {stats.bytes_read / 1024:.0f} KiB in {seconds:.1f} s"
    )


ReadProgress = Progress  # what a command's Graph work is told its progress through


def with_graph(graph: GraphOptions, config: Config, work: Callable[[GraphClient, Progress], Awaitable[T]]) -> T:
    """Run `work` against Graph with one client, and the progress display on stderr (cli.progress)."""

    async def run(progress: Progress) -> T:
        async with graph.connect(config) as client:
            client.limiter.on_wait = progress.waiting
            if graph.deadline is None:
                return await work(client, progress)
            try:
                return await asyncio.wait_for(work(client, progress), max(graph.deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise GraphError(
                    f"gave up after --timeout {graph.timeout:.0f} s: nothing more was read or written",
                    hint="an interrupted apply continues where it stopped when run again",
                ) from None

    with progress_display() as progress:
        return signals.run(run(progress))
