"""The benches' Graph: an emulated tenant in a process of its own, its server-side counts, and commands timed whole.

The emulator runs in a child process, as Graph runs elsewhere: its CPU and memory are not the tool's, and the
tool's commands run as a user runs them, each in a process of its own whose peak memory is its own. The child
answers a few questions over a pipe: what it has served (requests, resource units, 429s, bytes) and, to play a
day's drift, a change to 1% of the tenant recorded as Graph records writes.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

# Graph's real pace for Conditional Access, and nothing from the caller's environment steering the tool.
COMMAND_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_GITOPS_", "AZURE_"))}


PAUSE_SECONDS = 1.5
ANSWER_SECONDS = 600  # a churn of 1% of a million-user tenant takes a while


class Served(NamedTuple):
    """What the emulator answered, counted on its side."""

    requests: int = 0
    resource_units: int = 0
    throttled: int = 0
    bytes_sent: int = 0
    paced: int = 0

    def __sub__(self, other: Served) -> Served:  # type: ignore[override]
        return Served(*(a - b for a, b in zip(self, other, strict=True)))


class Run(NamedTuple):
    """One command, timed whole: wall seconds, its own peak memory, exit code, what Graph served it, its output."""

    seconds: float
    peak_mb: float
    exit_code: int
    served: Served
    stdout: str
    stderr: str


def change_one_percent(app: Any) -> int:
    """Change 1% of users and groups, as a day's drift would: properties, and a member added to each changed
    group, each recorded in the tenant's change log as Graph records a write."""
    from entra_gitops.model.registry import default_registry

    registry = default_registry()
    tenant = app.tenant
    changed = 0
    users = list(tenant.objects(registry.get("user")).values())
    for type_name, prop in (("user", "jobTitle"), ("group", "description")):
        rtype = registry.get(type_name)
        for obj in list(tenant.objects(rtype).values())[::100]:
            tenant.update(rtype, obj, {prop: f"changed {changed}"})
            if type_name == "group" and "DynamicMembership" not in (obj.get("groupTypes") or []):
                tenant.add_link(("group", "members"), obj["id"], users[changed % len(users)]["id"])
            changed += 1
    return changed


def drift_users(app: Any, count: int, seed: int) -> int:
    """Change the job title of `count` cloud users drawn with `seed`: the drift a small recovery puts back."""
    import random

    from entra_gitops.model.registry import default_registry

    users = default_registry().get("user")
    cloud = [u for u in app.tenant.objects(users).values() if not u.get("onPremisesSyncEnabled")]
    for n, user in enumerate(random.Random(seed).sample(cloud, count)):
        app.tenant.update(users, user, {"jobTitle": f"drifted {n}"})
    return count


def _serve(spec: str, throttle: bool, conn: Connection) -> None:
    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import serve_in_background

    app = create_emulator(spec, throttle=throttle)
    url = serve_in_background(app)
    gc.collect()
    gc.freeze()  # the seeded tenant lives as long as the process: no collection walks it again
    conn.send(url)
    while True:
        what = conn.recv()
        if what == "served":
            conn.send(Served(**dataclasses.asdict(app.served)))
        elif what == "churn":
            conn.send(change_one_percent(app))
        elif isinstance(what, tuple) and what[0] == "drift":
            conn.send(drift_users(app, *what[1:]))
        else:
            return


class Emulated(NamedTuple):
    """A running emulated tenant: its Graph URL and the pipe to ask it what it served."""

    url: str
    conn: Connection

    def served(self) -> Served:
        return self.ask("served")

    def churn(self) -> int:
        return self.ask("churn")

    def drift(self, count: int, seed: int) -> int:
        return self.ask(("drift", count, seed))

    def ask(self, what: str | tuple[Any, ...]) -> Any:
        """The emulator's answer, or an error once it has stopped answering (it died: the pipe never closes)."""
        self.conn.send(what)
        if not self.conn.poll(ANSWER_SECONDS):
            raise RuntimeError(f"the emulator gave no answer to {what!r} within {ANSWER_SECONDS} s")
        return self.conn.recv()


@contextmanager
def emulated(spec: str, *, throttle: bool = True) -> Iterator[Emulated]:
    """Seed and serve `spec` in a child process for the block; stopped after it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_serve, args=(spec, throttle, theirs), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 3600
        while not ours.poll(1):
            if not child.is_alive():
                raise RuntimeError(f"the emulator stopped while seeding (exit {child.exitcode}): see its traceback")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start within an hour")
        yield Emulated(ours.recv(), ours)
    finally:
        ours.send("stop")
        child.join(30)
        if child.is_alive():
            child.kill()


class Timed(NamedTuple):
    """One process, timed whole: wall seconds, its own peak memory, its exit code and output."""

    seconds: float
    peak_mb: float
    exit_code: int
    stdout: str
    stderr: str


def timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Timed:
    """Run `argv` in a process of its own, its output kept in files (a report may be large)."""
    stem = cwd / f".bench-{time.monotonic_ns()}"
    started = time.perf_counter()
    with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env={**COMMAND_ENV, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not the largest child's so far
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    texts = [stem.with_suffix(suffix).read_text(errors="replace") for suffix in (".out", ".err")]
    for suffix in (".out", ".err"):
        stem.with_suffix(suffix).unlink()
    return Timed(seconds, usage.ru_maxrss / 1024, process.returncode, *texts)


def run_command(tenant: Emulated, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Run:
    """Run `entra-gitops ARGS` against the emulated tenant as a user would, in its own process."""
    # Commands a day apart do not share Conditional Access's one-second window: neither do these.
    time.sleep(PAUSE_SECONDS)
    before = tenant.served()
    run = timed([sys.executable, "-m", "entra_gitops", *args, "--graph-url", tenant.url], cwd, env)
    return Run(run.seconds, run.peak_mb, run.exit_code, tenant.served() - before, run.stdout, run.stderr)
