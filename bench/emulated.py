"""The benches' Graph: an emulated tenant in a process of its own, its server-side counts, and commands timed whole.

The emulator runs in a child process, as Graph runs elsewhere: its CPU and memory are not the tool's, and the
tool's commands run as a user runs them, each in a process of its own whose peak memory is its own. The child
answers a few questions over a pipe: what it has served (requests, resource units, 429s, bytes); to play drift,
a change to 1% of the tenant, to some users' job titles, or a mix of every kind a recovery writes back, each
recorded as Graph records writes; and, for an apply, the writes it answered and the write window's peak use.
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

WriteRecord = tuple[float, str, str, str | None, int]  # (perf_counter, method, path, link target, status)

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


# Shares of the mixed drift's writes by kind, each named by the recovery write that undoes it (Conditional Access
# is left out: its 1 request/s would set the pace).
MIX = {
    "users changed (PATCH)": 0.30,
    "groups changed (PATCH)": 0.15,
    "users soft-deleted (POST restore)": 0.15,
    "members removed (POST $ref)": 0.15,
    "members added (DELETE $ref)": 0.15,
    "users and groups created (DELETE)": 0.10,
}


def drift_mixed(app: Any, writes: int, seed: int) -> dict[str, int]:
    """Drift the tenant so that undoing it takes about `writes` writes of the kinds in MIX: the count per kind."""
    import random

    from entra_gitops.model.registry import default_registry

    registry = default_registry()
    user_type, group_type, members_link = registry.get("user"), registry.get("group"), ("group", "members")
    rng = random.Random(seed)
    tenant = app.tenant
    want = {kind: round(writes * share) for kind, share in MIX.items()}
    kinds = list(want)
    want[kinds[0]] += writes - sum(want.values())
    users = [
        u
        for u in tenant.objects(user_type).values()
        if not u.get("onPremisesSyncEnabled") and not str(u.get("userPrincipalName", "")).startswith("breakglass")
    ]
    groups = [
        g
        for g in tenant.objects(group_type).values()
        if not g.get("onPremisesSyncEnabled") and not g.get("membershipRule") and not g.get("isAssignableToRole")
    ]
    rng.shuffle(users)
    rng.shuffle(groups)
    n_user_patch, n_group_patch, n_restore, n_add, n_remove, n_create = (want[k] for k in kinds)
    if n_user_patch + n_restore > len(users) // 2:
        raise ValueError(f"{len(users)} cloud users are too few for {writes} writes: raise --users")

    patched, deleted, others = (
        users[:n_user_patch],
        users[n_user_patch : n_user_patch + n_restore],
        users[n_user_patch + n_restore :],
    )
    gone = {u["id"] for u in deleted}
    # The tenant's own methods, so that its change log (and so delta) stays right.
    for n, user in enumerate(patched):
        prop = ("jobTitle", "department", "officeLocation")[n % 3]
        tenant.update(user_type, user, {prop: f"drifted {n}"})
    patched_groups = groups[:n_group_patch]
    for n, group in enumerate(patched_groups):
        tenant.update(group_type, group, {"description": f"drifted {n}"})
    for user in deleted:
        tenant.delete(user_type, user["id"])

    # Members: groups other than the patched ones; removed members are users, never ones soft-deleted.
    link_groups = groups[n_group_patch:] or groups
    removed = added = 0
    for group in link_groups:
        if removed >= n_add:
            break
        members = tenant.members(members_link, group["id"])
        for member in [m for m in members if tenant.directory.get(m) == "user" and m not in gone][:2]:
            if removed < n_add:
                tenant.remove_link(members_link, group["id"], member)
                removed += 1
    candidates = [u["id"] for u in others]
    for group in link_groups:
        if added >= n_remove:
            break
        members = tenant.members(members_link, group["id"])
        for member in rng.sample(candidates, 3):
            if added < n_remove and member not in members:
                tenant.add_link(members_link, group["id"], member)
                added += 1

    for n in range(n_create):
        if n % 4:
            nick = f"bench.drift{n:05d}"
            tenant.create(
                user_type,
                {
                    "displayName": f"Drift User {n:05d}",
                    "userPrincipalName": f"{nick}@contoso.com",
                    "mailNickname": nick,
                    "accountEnabled": True,
                    "userType": "Member",
                },
            )
        else:
            tenant.create(
                group_type,
                {
                    "displayName": f"Drift Group {n:05d}",
                    "mailNickname": f"drift-group-{n:05d}",
                    "securityEnabled": True,
                    "mailEnabled": False,
                    "groupTypes": [],
                },
            )
    done = [n_user_patch, n_group_patch, len(deleted), removed, added, n_create]
    return dict(zip(kinds, done, strict=True))


class WriteLog:
    """The writes the emulator answers ($batch envelopes aside) and the write window's peak use, while recording."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.window = app.throttle.writes if app.throttle is not None else None
        self.log: list[WriteRecord] = []
        self.peak = 0
        self.recording = False
        self.installed = False

    def start(self) -> None:
        if not self.installed:
            self._install()
            self.installed = True
        self.log, self.peak, self.recording = [], 0, True

    def stop(self) -> int:
        self.recording = False
        return len(self.log)

    def _install(self) -> None:
        from entra_gitops.emulator.app import WRITE_METHODS

        handle = self.app.handle

        def logged(request: Any, request_id: str | None = None) -> Any:
            reply = handle(request, request_id)
            if self.recording and request.method in WRITE_METHODS and request.path != "$batch":
                body = request.body if isinstance(request.body, dict) else {}
                reference = body.get("@odata.id")
                target = str(reference).rsplit("/", 1)[-1] if reference else None
                self.log.append((time.perf_counter(), request.method, request.path, target, reply.status))
            return reply

        self.app.handle = logged  # the ASGI entry and $batch call self.handle, so the instance attribute wins
        if self.window is not None:
            add = self.window.add

            def counted(weight: int, now: float) -> None:
                add(weight, now)
                # Taken under the throttle's lock right after the window grew: its exact peak, no sampling gap.
                if self.recording:
                    self.peak = max(self.peak, self.window.used)

            self.window.add = counted

    def window_use(self) -> tuple[float, float, int]:
        """The write window's limit, its seconds and its peak use since recording started."""
        if self.window is None:
            return (0.0, 0.0, self.peak)
        return (self.window.limit, self.window.seconds, self.peak)


class Failed(NamedTuple):
    """The emulator could not answer a question: why, as its traceback says."""

    traceback: str


def _answer(app: Any, writes: WriteLog, what: Any) -> Any:
    if what == "served":
        return Served(**dataclasses.asdict(app.served))
    if what == "churn":
        return change_one_percent(app)
    if what == "writes":
        return list(writes.log)
    if what == "write window":
        return writes.window_use()
    kind, *args = what
    if kind == "drift":
        return drift_users(app, *args)
    if kind == "mixed drift":
        return drift_mixed(app, *args)
    if kind == "record writes":
        return writes.start() if args[0] else writes.stop()
    raise ValueError(f"no such question: {what!r}")


def _serve(
    spec: str,
    throttle: bool,
    conn: Connection,
    scale: float = 1.0,
    latency_ms: int = 0,
    write_window: float | None = None,
) -> None:
    import traceback

    from entra_gitops.emulator import create_emulator
    from entra_gitops.emulator.server import serve_in_background

    app = create_emulator(spec, throttle=throttle, throttle_scale=scale, latency_ms=latency_ms)
    if write_window is not None and app.throttle is not None:
        # Same rate, shorter memory: a run shorter than Graph's 150 s would otherwise never meet a full window.
        window = app.throttle.writes
        window.limit, window.seconds = window.limit / window.seconds * write_window, write_window
    writes = WriteLog(app)
    url = serve_in_background(app)
    gc.collect()
    gc.freeze()  # the seeded tenant lives as long as the process: no collection walks it again
    conn.send(url)
    while True:
        what = conn.recv()
        if what == "stop":
            return
        try:
            answer = _answer(app, writes, what)
        except Exception:  # told to the caller, who raises it; the emulator keeps serving the other commands
            answer = Failed(traceback.format_exc())
        conn.send(answer)


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

    def drift_mixed(self, writes: int, seed: int) -> dict[str, int]:
        return self.ask(("mixed drift", writes, seed))

    def record_writes(self, on: bool) -> Any:
        """Start logging the writes answered and the write window's peak (afresh), or stop: how many were logged."""
        return self.ask(("record writes", on))

    def writes(self) -> list[WriteRecord]:
        return self.ask("writes")

    def write_window(self) -> tuple[float, float, int]:
        """The enforced write window: its limit, its seconds, and its peak use while writes were recorded."""
        return self.ask("write window")

    def ask(self, what: str | tuple[Any, ...]) -> Any:
        """The emulator's answer, or an error once it has stopped answering (it died: the pipe never closes)."""
        self.conn.send(what)
        if not self.conn.poll(ANSWER_SECONDS):
            raise RuntimeError(f"the emulator gave no answer to {what!r} within {ANSWER_SECONDS} s")
        answer = self.conn.recv()
        if isinstance(answer, Failed):
            raise RuntimeError(f"the emulator could not answer {what!r}:\n{answer.traceback}")
        return answer


@contextmanager
def emulated(
    spec: str,
    *,
    throttle: bool = True,
    scale: float = 1.0,
    latency_ms: int = 0,
    write_window: float | None = None,
) -> Iterator[Emulated]:
    """Seed and serve `spec` in a child process for the block; stopped after it.

    `scale` multiplies every throttling limit, `latency_ms` is added to every answer, and `write_window` gives
    the write limit's window that many seconds at the same rate (Graph's is 150 s).
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    options = {"scale": scale, "latency_ms": latency_ms, "write_window": write_window}
    child = context.Process(target=_serve, args=(spec, throttle, theirs), kwargs=options, daemon=True)
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
