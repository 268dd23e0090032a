"""Serves the emulator over HTTP on a loopback address with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from entra_gitops.emulator.app import Emulator
from entra_gitops.model.errors import ConfigError


def require_loopback(host: str) -> None:
    """The emulator holds a whole tenant and trusts unsigned tokens: it never listens beyond this machine."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        raise ConfigError(f"--host {host!r}: cannot resolve this name") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ConfigError(f"--host {host!r} is not a loopback address", hint="use 127.0.0.1, ::1 or localhost")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or a ConfigError saying why not (a busy port, most often)."""
    require_loopback(host)
    shown = f"[{host}]" if ":" in host else host
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    reason = None
    try:
        # As asyncio's own create_server does: a restart need not wait for the old connections' TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
    if reason is not None:
        sock.close()
        raise ConfigError(f"cannot listen on {shown}:{port}: {reason}", hint="stop what uses it, or pick --port 0")
    return sock


def serve(
    app: Emulator,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    server: uvicorn.Server | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Run until interrupted (or `server.should_exit`); `on_ready` receives the Graph base URL once it listens.

    The socket is bound here (or passed in, bound by `listen`) rather than by uvicorn, which answers a
    busy port with a log line and SystemExit from inside its task.
    """
    require_loopback(host)
    sock = sock or listen(host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
    server = server or uvicorn.Server(config)
    server.config = config

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                raise ConfigError(f"could not listen on {host}:{port}")
            await asyncio.sleep(0.02)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        on_ready(f"http://{shown}:{bound[1]}/v1.0")
        await task

    try:
        asyncio.run(run())
    finally:
        sock.close()


def serve_in_background(app: Emulator, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> str:
    """Serve from a daemon thread (benchmarks, same-process clients); returns the Graph base URL once listening."""
    ready = threading.Event()
    found: list[str] = []

    def on_ready(url: str) -> None:
        found.append(url)
        ready.set()

    threading.Thread(target=serve, args=(app, host, port, on_ready), daemon=True).start()
    if not ready.wait(timeout):
        raise ConfigError(f"the emulator did not start listening on {host} within {timeout:.0f} s")
    return found[0]


@contextlib.contextmanager
def serving(app: Emulator, host: str = "127.0.0.1", timeout: float = 60.0) -> Iterator[str]:
    """Serve from a thread for the duration of the block (tests): the Graph base URL, and a clean stop after."""
    ready = threading.Event()
    found: list[str] = []
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off"))

    def on_ready(url: str) -> None:
        found.append(url)
        ready.set()

    thread = threading.Thread(target=serve, args=(app, host, 0, on_ready, server), daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout):
            raise ConfigError(f"the emulator did not start listening on {host} within {timeout:.0f} s")
        yield found[0]
    finally:
        server.should_exit = True
        thread.join(timeout)
