"""The one error boundary as a user meets it: every failure is one `error:` line, an exit code, and nothing written.

Sign-in failures never reach a real Entra: the authority is a closed local port, a name that does not resolve, or
a local https token endpoint; the Azure CLI is missing from PATH or a stand-in that is not logged in. Where only the
real process can prove the outcome (no traceback, no asyncio noise, main()'s exit code) the CLI runs as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from click.testing import CliRunner, Result
from conftest import ENTRA_GITOPS, demo_seed, demo_tenant, git, served
from tokens import TokenEndpoint

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.emulator.server import serving
from entra_gitops.graph.auth import AuthError, AuthMethod, SignIn

TENANT_GUID = "11111111-2222-3333-4444-555555555555"
CLIENT_GUID = "66666666-7777-8888-9999-000000000000"
SECRET = "wrong-Secret~that-must-never-be-printed"
SEED = demo_seed()
KARI = next(u["id"] for u in SEED["users"] if u["displayName"] == "Kari Nordmann")
NOISE = ("Traceback", "Unclosed", "Task exception was never retrieved", "ClientSession")


# -- helpers -----------------------------------------------------------------------------------


def run(*args: Any) -> Result:
    """The real command line, in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def main(*args: Any, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The real command line as its own process: `python -m entra_gitops`, through main()."""
    return subprocess.run(
        [*ENTRA_GITOPS, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env or os.environ
    )


def one_error(stderr: str) -> str:
    """The single line a failure prints, checked to be an `error:` line with nothing else around it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for noise in NOISE:
        assert noise not in stderr, stderr
    return lines[0]


def repository_state(repo: Path) -> tuple[str, str]:
    """Every ref with its commit, and the work tree's changes: equal before and after means nothing was written."""
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), git(repo, "status", "--porcelain")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's or runner's own sign-in settings, plus `extra`."""
    prefixes = ("AZURE_", "ACTIONS_ID_TOKEN", "ENTRA_GITOPS_", "MSI_", "IDENTITY_")
    # A proxy would answer for the closed ports and local endpoints these tests rely on.
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k.lower() not in proxies}
    # The test emulators do not throttle; without this every Conditional Access read waits a second.
    env["ENTRA_GITOPS_CA_PACE_SECONDS"] = "0"
    return {**env, **extra}


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SECRET_ARGS = ("--auth", "client-secret", "--tenant-id", TENANT_GUID, "--client-id", CLIENT_GUID)


@pytest.fixture
def graph_url() -> Iterator[str]:
    with serving(Emulator(demo_tenant())) as url:
        yield url


class Entra(TokenEndpoint):
    """A local https token endpoint (self-signed, trusted through SSL_CERT_FILE) that refuses or grants tokens."""

    def __init__(self, folder: Path, refuse: bool) -> None:
        def answer(path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
            if refuse:
                # Entra's answer to a wrong secret; this one even quotes the secret, which must not leak.
                quoted = form.get("client_secret", [""])[0]
                description = f"AADSTS7000215: Invalid client secret provided ({quoted}).\r\nTrace ID: 0000"
                return 401, {"error": "invalid_client", "error_description": description}
            return 200, {"token_type": "Bearer", "expires_in": 3600, "access_token": "entra-token"}

        super().__init__(folder, answer)

    def env(self) -> dict[str, str]:
        return clean_env(
            AZURE_AUTHORITY_HOST=self.authority, SSL_CERT_FILE=str(self.cafile), AZURE_CLIENT_SECRET=SECRET
        )


@contextlib.contextmanager
def entra(folder: Path, *, refuse: bool) -> Iterator[Entra]:
    server = Entra(folder, refuse)
    try:
        yield server
    finally:
        server.stop()


# -- signing in --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("authority", "reason"),
    [
        ("https://127.0.0.1:{port}", "Cannot connect to host 127.0.0.1"),
        ("https://login.entra-gitops-test.invalid", "Cannot connect to host login.entra-gitops-test.invalid"),
    ],
)
def test_an_unreachable_sign_in_endpoint_is_one_line(repo: Path, authority: str, reason: str) -> None:
    before = repository_state(repo)
    env = clean_env(AZURE_CLIENT_SECRET=SECRET, AZURE_AUTHORITY_HOST=authority.format(port=closed_port()))
    result = main(
        "diff", "--repo", repo, "--graph-url", "https://graph.entra-gitops-test.invalid/v1.0", *SECRET_ARGS, env=env
    )
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "cannot sign in to Microsoft Graph with ClientSecretCredential (--auth client-secret)" in line
    assert reason in line and "AZURE_AUTHORITY_HOST" in line
    assert SECRET not in result.stderr + result.stdout
    assert result.stdout == ""
    assert repository_state(repo) == before


def test_a_refused_secret_names_what_to_set_and_is_tried_once(repo: Path, tmp_path: Path) -> None:
    before = repository_state(repo)
    with entra(tmp_path, refuse=True) as server:
        result = main("diff", "--repo", repo, "--graph-url", "https://127.0.0.1:9/v1.0", *SECRET_ARGS, env=server.env())
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "ClientSecretCredential (--auth client-secret)" in line
    assert "AADSTS7000215: Invalid client secret provided" in line
    assert "AZURE_CLIENT_SECRET" in line and "--tenant-id" in line
    # Only the first line of Entra's answer, and the secret it quoted taken out.
    assert "Trace ID" not in line
    assert SECRET not in result.stderr + result.stdout
    assert len(server.requests) == 1
    assert repository_state(repo) == before


def test_a_granted_token_is_reused_and_every_session_closed(repo: Path, graph_url: str, tmp_path: Path) -> None:
    with entra(tmp_path, refuse=False) as server:
        result = main("diff", "--repo", repo, "--graph-url", graph_url, *SECRET_ARGS, env=server.env())
    assert result.returncode == 0, result.stderr
    assert "No differences" in result.stdout
    # Dozens of Graph requests, one sign-in; and no aiohttp session left for asyncio to complain about.
    assert len(server.requests) == 1
    for noise in NOISE:
        assert noise not in result.stderr, result.stderr


def path_with_git_only(folder: Path) -> str:
    """A PATH holding git and nothing else: no `az`."""
    folder.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (folder / "git").symlink_to(git_path)
    return str(folder)


def test_the_azure_cli_missing_is_one_line(repo: Path, tmp_path: Path) -> None:
    env = clean_env(PATH=path_with_git_only(tmp_path / "bin"))
    result = main("diff", "--repo", repo, "--graph-url", "https://127.0.0.1:9/v1.0", "--auth", "azure-cli", env=env)
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "AzureCliCredential (--auth azure-cli): Azure CLI not found on path" in line
    assert "install the Azure CLI and run `az login`" in line


def test_the_azure_cli_not_logged_in_is_one_line_and_asked_once(repo: Path, tmp_path: Path) -> None:
    bin_dir = Path(path_with_git_only(tmp_path / "bin"))
    calls = tmp_path / "az-calls"
    (bin_dir / "az").write_text(
        f"#!/bin/sh\necho called >> '{calls}'\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"
    )
    (bin_dir / "az").chmod(0o755)
    before = repository_state(repo)
    result = main(
        "plan", "--repo", repo, "--graph-url", "https://127.0.0.1:9/v1.0", "--auth", "azure-cli",
        "-o", tmp_path / "plan.json", env=clean_env(PATH=str(bin_dir)),
    )  # fmt: skip
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "AzureCliCredential (--auth azure-cli)" in line and "az login" in line
    assert calls.read_text().splitlines() == ["called"]
    assert not (tmp_path / "plan.json").exists()
    assert repository_state(repo) == before


class FlakyCredential:
    """An azure-identity stand-in that counts its calls and fails, or grants, each one slowly."""

    def __init__(self, message: str | None) -> None:
        self.message = message
        self.calls = 0
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.message is not None:
            raise ClientAuthenticationError(message=self.message)
        return AccessToken(f"token-{self.calls}", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed += 1


def test_sign_in_fails_once_for_many_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    inner = FlakyCredential(f"Authentication failed: AADSTS7000215 for {SECRET}\nTrace ID: 0000")
    credential = SignIn(inner, AuthMethod.CLIENT_SECRET)

    async def many() -> list[BaseException | AccessToken]:
        async with credential:
            return await asyncio.gather(*(credential.get_token("s") for _ in range(14)), return_exceptions=True)

    results = asyncio.run(many())
    assert inner.calls == 1 and inner.closed == 1
    assert all(isinstance(r, AuthError) for r in results)
    text = str(results[0])
    assert text.startswith("cannot sign in to Microsoft Graph with FlakyCredential (--auth client-secret): ")
    assert SECRET not in text and "***" in text and "Trace ID" not in text
    assert results[0].__context__ is None and results[0].__cause__ is None


def test_sign_in_reuses_a_token_until_near_expiry() -> None:
    inner = FlakyCredential(None)
    credential = SignIn(inner, AuthMethod.AZURE_CLI)

    async def many() -> list[AccessToken]:
        return await asyncio.gather(*(credential.get_token("s") for _ in range(14)))

    assert {t.token for t in asyncio.run(many())} == {"token-1"}
    # A claims challenge (Continuous Access Evaluation) needs a new token, never the cached one.
    assert asyncio.run(credential.get_token("s", claims="{}")).token == "token-2"
    assert inner.calls == 2


# -- files and git -----------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_an_unwritable_plan_file_is_one_line(repo: Path, graph_url: str) -> None:
    before = repository_state(repo)
    result = run("plan", "--repo", repo, "--graph-url", graph_url, "--type", "user", "-o", "/proc/version")
    assert result.exit_code == 1, result.output
    # The file asked for, not the scratch file beside it; the reason is the OS's (EACCES, or ENOENT for root).
    assert one_error(result.stderr).startswith("error: cannot write /proc/version: ")
    assert result.stdout == ""
    assert repository_state(repo) == before
    debug = run("--debug", "plan", "--repo", repo, "--graph-url", graph_url, "--type", "user", "-o", "/proc/version")
    assert type(debug.exception).__name__ == "OutputError"


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_an_unwritable_report_file_is_one_line(repo: Path) -> None:
    result = run("diff", "--repo", repo, "--against", "HEAD", "--output", "/proc/report.md")
    assert result.exit_code == 1, result.output
    assert one_error(result.stderr).startswith("error: cannot write /proc/report.md: ")


def read_only_git(repo: Path) -> list[str] | None:
    """A command prefix that runs with repo/.git read-only, or None where this system cannot make one."""
    git_dir = str(repo / ".git")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "--mount", "--map-root-user", "sh", "-c", script, git_dir]
    if shutil.which("unshare"):
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return prefix
    if os.geteuid() != 0:
        # Without a mount namespace, permissions do it, for everyone but root.
        for path in [repo / ".git", *(repo / ".git").rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        return []
    return None


def test_a_read_only_git_directory_is_one_line(repo: Path, graph_url: str) -> None:
    before = repository_state(repo)
    prefix = read_only_git(repo)
    if prefix is None:
        pytest.skip("cannot make a read-only .git here (no user namespaces, and root ignores permissions)")
    result = subprocess.run(
        [*prefix, *ENTRA_GITOPS, "snapshot", "--repo", str(repo), "--graph-url", graph_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    for path in [repo / ".git", *(repo / ".git").rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    assert result.returncode == 1, result.stderr
    line = one_error(result.stderr)
    assert str(repo / ".git") in line
    assert "Read-only file system" in line or "Permission denied" in line
    assert repository_state(repo) == before


def test_a_git_failure_is_one_line(tmp_path: Path, graph_url: str) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").write_text("not a gitdir line\n")
    result = run("snapshot", "--repo", broken, "--graph-url", graph_url)
    assert result.exit_code == 1, result.output
    line = one_error(result.stderr)
    assert "invalid gitfile format" in line
    assert sorted(p.name for p in broken.iterdir()) == [".git"]


def test_validate_outside_a_state_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.exit_code == 1
    line = one_error(result.stderr)
    assert "no state files found" in line and "tenant-state/" in line and str(tmp_path) in line


def test_validate_of_a_folder_without_state_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("validate", tmp_path / "empty")
    assert result.exit_code == 1
    assert f"no state files (*.yaml) found in {tmp_path / 'empty'}" in one_error(result.stderr)
    assert "valid" not in result.stdout


# -- the emulator, interrupts ------------------------------------------------------------------


def test_the_emulator_on_a_busy_port_says_so() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = main("emulator", "--port", port, "--seed", "demo", timeout=60)
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: address already in use")
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "word"), [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")]
)
def test_an_interrupt_is_one_line_and_its_own_exit_code(repo: Path, signum: int, code: int, word: str) -> None:
    with served(latency_ms=1000) as (url, app):
        process = subprocess.Popen(
            [*ENTRA_GITOPS, "diff", "--repo", str(repo), "--graph-url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        deadline = time.monotonic() + 60
        while not app.request_count:  # started: its first request is in, and each answer takes a second
            assert process.poll() is None and time.monotonic() < deadline, "the diff never reached the emulator"
            time.sleep(0.01)
        time.sleep(0.5)  # so the signal finds it waiting on the slow emulator, as a person's Ctrl+C would
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"{word}: the repository is as before the run")
    assert out == ""


# -- history records ---------------------------------------------------------------------------


def test_a_corrupt_history_record_is_skipped_with_a_warning(repo: Path, graph_url: str, tmp_path: Path) -> None:
    httpx.patch(f"{graph_url}/users/{KARI}", json={"jobTitle": "Buyer"}, headers={"Authorization": "Bearer local"})
    plan_file = tmp_path / "plan.json"
    planned = run("plan", "--repo", repo, "--graph-url", graph_url, "--id", KARI, "--type", "user", "-o", plan_file)
    assert planned.exit_code == 0, planned.output
    applied = run("apply", plan_file, "--repo", repo, "--graph-url", graph_url, "--auto-approve")
    assert applied.exit_code == 0, applied.output

    (repo / "history").mkdir(exist_ok=True)
    (repo / "history" / "broken.yaml").write_text("id: [unclosed\n")
    (repo / "history" / "list.yaml").write_text("- not a record\n")
    git(repo, "add", "history")
    git(repo, "commit", "-qm", "damaged history")

    shown = run("history", "--repo", repo, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert [r["status"] for r in json.loads(shown.stdout)] == ["succeeded"]
    warnings = shown.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: skipped history/") for w in warnings), warnings
    assert any("broken.yaml" in w for w in warnings) and any("list.yaml" in w for w in warnings)

    # The re-apply reads every record to know the plan was applied: the damaged ones do not block it.
    again = run("apply", plan_file, "--repo", repo, "--graph-url", graph_url, "--auto-approve")
    assert again.exit_code == 0, again.output
    assert "applied completely already" in again.stdout
    assert "warning: skipped history/broken.yaml" in again.stderr


# -- no silent narrowing -----------------------------------------------------------------------


def test_diff_with_an_id_that_matches_nothing_is_an_error(repo: Path, graph_url: str) -> None:
    live = run("diff", "--repo", repo, "--graph-url", graph_url, "--id", "not-an-id")
    assert live.exit_code == 1, live.output
    line = one_error(live.stderr)
    assert line.startswith("error: --id not-an-id matches no object in backup/") and "or the live tenant" in line
    assert live.stdout == ""

    offline = run("diff", "--repo", repo, "--against", "HEAD", "--id", KARI, "--type", "group")
    assert offline.exit_code == 1, offline.output
    assert f"--id {KARI} matches no group object" in one_error(offline.stderr)

    found = run("diff", "--repo", repo, "--against", "HEAD", "--id", KARI.upper())
    assert found.exit_code == 0, found.output


def test_plan_with_an_id_that_matches_nothing_is_an_error(repo: Path, graph_url: str, tmp_path: Path) -> None:
    result = run("plan", "--repo", repo, "--graph-url", graph_url, "--id", "not-an-id", "-o", tmp_path / "p.json")
    assert result.exit_code == 1, result.output
    line = one_error(result.stderr)
    assert line.startswith("error: --id not-an-id matches no object in backup/") and "or the live tenant" in line
    assert not (tmp_path / "p.json").exists()


def test_plan_towards_head_warns_of_uncommitted_edits(repo: Path, graph_url: str) -> None:
    clean = run("plan", "--repo", repo, "--graph-url", graph_url, "--desired", "HEAD", "--type", "user")
    assert clean.exit_code == 0, clean.output
    assert "warning" not in clean.stderr

    path = repo / "tenant-state" / "users" / f"{KARI}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Kari Nordmann", "Kari Edited"), encoding="utf-8")
    edited = run("plan", "--repo", repo, "--graph-url", graph_url, "--desired", "HEAD", "--type", "user")
    assert edited.exit_code == 0, edited.output
    assert edited.stderr.splitlines() == [
        "warning: tenant-state/ has uncommitted edits, which this plan does not include: commit them first"
    ]
    assert "No changes" in edited.stdout


def test_the_azure_loggers_are_quiet_only_while_the_cli_runs(tmp_path: Path) -> None:
    logger = logging.getLogger("azure")
    level = logger.level
    seen: list[int] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.levelno)

    watch = Watch()
    logger.addHandler(watch)
    try:
        assert run("validate", tmp_path).exit_code == 1
        logger.warning("after the run: heard again")
    finally:
        logger.removeHandler(watch)
    assert logger.level == level and seen == [logging.WARNING]
