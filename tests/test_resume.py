"""Resuming an apply from its journal, in process: what the journal says of each write, what a rerun sends again,
and the history record of a run that died after its last write.

Plans are the real build_plan's, from the demo tenant with a few changes made through the in-process emulator;
journals are real journal files; history goes to a real temporary git repository.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SyncGraph, demo_seed, demo_tenant, with_graph

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.model.registry import default_registry
from entra_gitops.model.settings import CONFIG_FILE, DEFAULT_CONFIG_TEXT
from entra_gitops.model.tenant import TenantState
from entra_gitops.recovery.apply import apply_plan
from entra_gitops.recovery.history import HISTORY_DIR, read_history, record_history
from entra_gitops.recovery.journal import Entry, Journal, JournalEvent, journal_path, last_events, replay, span
from entra_gitops.recovery.outcome import ApplyOutcome, Status
from entra_gitops.recovery.plan import Plan, build_plan, with_checksum
from entra_gitops.recovery.planfile import write_plan_file
from entra_gitops.recovery.resume import JournalProgress, WriteState, finished_outcome, journal_progress, write_state
from entra_gitops.recovery.service import record_completed
from entra_gitops.recovery.steps import Step
from entra_gitops.report.diff import ReportScope, difference_report
from entra_gitops.state.gitstore import StateRepo
from entra_gitops.state.sources import live_state

REGISTRY = default_registry()
USERS = {u["displayName"]: u["id"] for u in demo_seed()["users"]}
KARI, PER, LARS = USERS["Kari Nordmann"], USERS["Per Aas"], USERS["Lars Haugen"]
WHEN = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SENT, DONE, CONFIRMED, FAILED = JournalEvent.SENT, JournalEvent.DONE, JournalEvent.CONFIRMED, JournalEvent.FAILED


# -- a tenant that moved since the backup, and the plan that brings it back ------------------------------------


class Drifted:
    """The demo tenant after three changes (Per deleted, Kari and Lars moved department), and its recovery plan."""

    def __init__(self, source: TenantState) -> None:
        self.source = source
        self.emulator = Emulator(demo_tenant())
        self.api = SyncGraph(self.emulator)
        self.departments = {u: source.objects["user", u].data["department"] for u in (KARI, LARS)}
        self.api.request("DELETE", f"users/{PER}").raise_for_status()
        for user in (KARI, LARS):
            self.api.request("PATCH", f"users/{user}", json={"department": "Procurement"}).raise_for_status()
        live = self.live()
        report = difference_report(
            REGISTRY, source, live, backup_name="backup/test", against_name="live", scope=ReportScope(("user",), ())
        )
        self.plan: Plan = with_checksum(
            build_plan(
                REGISTRY,
                report,
                source,
                live,
                tool="test",
                tenant=None,
                backup_commit="0" * 40,
                created="2026-11-22T09:00:00Z",
            )  # fmt: skip
        )

    def live(self) -> TenantState:
        return with_graph(self.emulator, lambda client: live_state(client, REGISTRY, REGISTRY.select(["user"])))

    def restore_per(self) -> None:
        """Per's restore, as Graph takes it when the run that sent it dies before hearing the answer."""
        self.api.request("POST", f"directory/deletedItems/{PER}/restore").raise_for_status()

    def apply(self, journal: Journal) -> ApplyOutcome:
        """A rerun as `apply` makes it: the live tenant read again, then the plan applied under its journal."""
        live = self.live()
        return with_graph(
            self.emulator,
            lambda client: apply_plan(
                client,
                REGISTRY,
                self.plan,
                journal,
                self.source,
                live,
                verify_attempts=1,
                verify_delay=0,
                lag_delays=(),
            ),
        )

    def recovered(self) -> bool:
        users = {u: self.api.request("GET", f"users/{u}?$select=id,department") for u in (PER, KARI, LARS)}
        back = all(users[u].json()["department"] == d for u, d in self.departments.items())
        return users[PER].status_code == 200 and back


@pytest.fixture
def drifted(demo: TenantState) -> Drifted:
    return Drifted(demo)


def journal_of(drifted: Drifted, git_dir: Path, *events: tuple[int, JournalEvent]) -> Journal:
    """The plan's journal as an earlier run left it (written, closed), opened again as a rerun opens it."""
    earlier = Journal(journal_path(git_dir, drifted.plan))
    for index, event in events:
        earlier.record(index, event, drifted.plan.writes[index])
    earlier.close()
    return Journal(earlier.path)


def rerun(drifted: Drifted, journal: Journal) -> tuple[ApplyOutcome, list[tuple[int | None, JournalEvent]]]:
    """Apply again under `journal`: the outcome, and what this run journalled."""
    found = len(journal.entries)
    outcome = drifted.apply(journal)
    return outcome, [(e.write, e.event) for e in journal.replayed()[found:]]


def test_the_plan_is_a_restore_then_two_updates(drifted: Drifted) -> None:
    steps = [(w.step, w.object_id) for w in drifted.plan.writes]
    assert steps[0] == (Step.RESTORE, PER)
    assert sorted(steps[1:]) == [(Step.UPDATE, KARI), (Step.UPDATE, LARS)]


# -- each journal state ------------------------------------------------------------------------------------------


def test_without_a_journal_every_write_is_sent(drifted: Drifted, tmp_path: Path) -> None:
    journal = journal_of(drifted, tmp_path / ".git")
    assert not journal.path.exists()
    progress = journal_progress(drifted.plan, journal.last_events())
    assert progress == JournalProgress(not_started=3) and not progress.started and not progress.complete

    outcome, events = rerun(drifted, journal)
    assert (outcome.status, outcome.earlier, outcome.written, outcome.confirmed) == (
        Status.SUCCEEDED,
        (),
        (0, 1, 2),
        (),
    )
    assert events == [(0, SENT), (0, DONE), (1, SENT), (2, SENT), (1, DONE), (2, DONE)]
    assert drifted.recovered()


def test_intents_only_are_in_doubt_and_checked_before_anything_is_resent(drifted: Drifted, tmp_path: Path) -> None:
    # The earlier run sent all three and died before any answer; Graph took the restore, not the updates.
    drifted.restore_per()
    journal = journal_of(drifted, tmp_path / ".git", (0, SENT), (1, SENT), (2, SENT))
    progress = journal_progress(drifted.plan, journal.last_events())
    assert progress == JournalProgress(in_doubt=3) and progress.started and not progress.complete

    outcome, events = rerun(drifted, journal)
    assert outcome.confirmed == (0,), "the restore took effect: it is not sent twice"
    assert outcome.written == (1, 2), "updates are resent: PATCH is idempotent"
    assert outcome.status is Status.SUCCEEDED and outcome.applied == (1, 2, 0)
    assert events == [(0, CONFIRMED), (1, SENT), (2, SENT), (1, DONE), (2, DONE)]
    assert drifted.recovered()


def test_an_intent_graph_never_took_is_sent_again(drifted: Drifted, tmp_path: Path) -> None:
    journal = journal_of(drifted, tmp_path / ".git", (0, SENT))
    assert journal_progress(drifted.plan, journal.last_events()) == JournalProgress(in_doubt=1, not_started=2)

    outcome = drifted.apply(journal)
    assert (outcome.written, outcome.confirmed) == ((0, 1, 2), ())
    assert drifted.recovered()


def test_writes_done_earlier_are_not_sent_again(drifted: Drifted, tmp_path: Path) -> None:
    drifted.restore_per()
    journal = journal_of(drifted, tmp_path / ".git", (0, SENT), (0, DONE))
    assert journal_progress(drifted.plan, journal.last_events()) == JournalProgress(done=1, not_started=2)

    outcome, events = rerun(drifted, journal)
    assert (outcome.earlier, outcome.written, outcome.confirmed) == ((0,), (1, 2), ())
    assert outcome.stale == (), "an object this plan wrote already is expected to have moved"
    assert events == [(1, SENT), (2, SENT), (1, DONE), (2, DONE)]
    assert drifted.recovered()


def test_a_failed_write_is_tried_again(drifted: Drifted, tmp_path: Path) -> None:
    drifted.restore_per()
    journal = journal_of(drifted, tmp_path / ".git", (0, SENT), (0, DONE), (1, SENT), (1, FAILED))
    progress = journal_progress(drifted.plan, journal.last_events())
    assert progress == JournalProgress(done=1, failed=1, not_started=1) and not progress.complete

    outcome = drifted.apply(journal)
    assert (outcome.earlier, outcome.written, outcome.failures) == ((0,), (1, 2), ())
    assert drifted.recovered()


def test_all_done_without_a_history_record_is_recorded_from_the_journal(drifted: Drifted, tmp_path: Path) -> None:
    store = StateRepo.open(tmp_path / "state", create=True)
    journal = journal_of(drifted, tmp_path / ".git", *[(i, e) for i in range(3) for e in (SENT, DONE)])
    progress = journal_progress(drifted.plan, journal.last_events())
    assert progress == JournalProgress(done=3) and progress.complete

    first, last = span(journal.replayed())
    assert finished_outcome(drifted.plan, journal.replayed()) == ApplyOutcome(
        written=(0, 1, 2), started=first, finished=last
    )
    head = store.head
    completed = record_completed(store, drifted.plan, journal, WHEN)
    assert completed.warnings == () and completed.recorded is not None
    assert completed.recorded.startswith(f"{HISTORY_DIR}/") and store.head != head
    (record,) = read_history(store).records
    assert record["planChecksum"] == drifted.plan.checksum
    assert (record["status"], record["written"], record["writes"]) == ("succeeded", 3, 3)
    assert (record["started"], record["finished"]) == (first, last)


def test_all_done_with_a_history_record_is_not_recorded_twice(drifted: Drifted, tmp_path: Path) -> None:
    store = StateRepo.open(tmp_path / "state", create=True)
    journal = journal_of(drifted, tmp_path / ".git", *[(i, e) for i in range(3) for e in (SENT, CONFIRMED)])
    assert journal_progress(drifted.plan, journal.last_events()).complete
    record_history(store, drifted.plan, ApplyOutcome(written=(0, 1, 2), started="2026-11-22T09:00:00.000Z"), WHEN)
    head = store.head

    completed = record_completed(store, drifted.plan, journal, WHEN)
    assert (completed.recorded, completed.warnings) == (None, ())
    assert store.head == head and len(read_history(store).records) == 1


def test_a_damaged_history_record_is_a_warning_value_and_the_others_still_count(
    drifted: Drifted, tmp_path: Path
) -> None:
    store = StateRepo.open(tmp_path / "state", create=True)
    record_history(store, drifted.plan, ApplyOutcome(written=(0, 1, 2), started="2026-11-22T09:00:00.000Z"), WHEN)
    store.commit_files({f"{HISTORY_DIR}/broken.yaml": b"id: [unclosed\n"}, "damage\n", WHEN)
    journal = journal_of(drifted, tmp_path / ".git", *[(i, DONE) for i in range(3)])

    completed = record_completed(store, drifted.plan, journal, WHEN)
    assert completed.recorded is None
    (warning,) = completed.warnings
    assert warning.startswith("skipped history/broken.yaml") and warning.endswith("not a readable recovery record")


def test_apply_of_a_completed_plan_records_it_once_without_reading_graph(drifted: Drifted, tmp_path: Path) -> None:
    repo = tmp_path / "state"
    store = StateRepo.open(repo, create=True, initial_files={CONFIG_FILE: DEFAULT_CONFIG_TEXT.encode()})
    plan_file = tmp_path / "plan.json"
    write_plan_file(plan_file, drifted.plan)
    journal_of(drifted, Path(store.repo.git_dir), *[(i, e) for i in range(3) for e in (SENT, DONE)]).close()
    # Nothing listens here: a completed plan must not need Graph.
    args = ["apply", str(plan_file), "--repo", str(repo), "--graph-url", "http://127.0.0.1:9/v1.0", "--auto-approve"]

    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "This plan's writes were all done already; recorded in history/" in first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "This plan was applied completely already (see entra-gitops history)." in again.output
    assert len(read_history(store).records) == 1


# -- the journal's replay --------------------------------------------------------------------------------------


def line(write: Any, event: str, time: str = "2026-11-22T09:00:00.000Z") -> str:
    return json.dumps({"write": write, "event": event, "time": time, "method": "PATCH", "path": "users/x"})


def test_replay_keeps_each_writes_latest_event_and_skips_what_it_cannot_read() -> None:
    text = "\n".join(
        [
            line(0, "sent", "2026-11-22T09:00:00.100Z"),
            line(0, "done", "2026-11-22T09:00:00.200Z"),
            line(1, "sent", "2026-11-22T09:00:00.300Z"),
            "not json at all",
            line(2, "exploded"),  # an event no version of the tool writes
            json.dumps(["a", "list"]),
            line("3", "done", "2026-11-22T09:00:00.400Z"),  # names no write
            line(1, "failed", "2026-11-22T09:00:00.500Z"),
            line(1, "confirmed")[:25],  # the process died inside this line
        ]
    )
    entries = replay(text)
    assert entries == (
        Entry(0, SENT, "2026-11-22T09:00:00.100Z"),
        Entry(0, DONE, "2026-11-22T09:00:00.200Z"),
        Entry(1, SENT, "2026-11-22T09:00:00.300Z"),
        Entry(None, DONE, "2026-11-22T09:00:00.400Z"),
        Entry(1, FAILED, "2026-11-22T09:00:00.500Z"),
    )
    assert last_events(entries) == {0: DONE, 1: FAILED}
    assert span(entries) == ("2026-11-22T09:00:00.100Z", "2026-11-22T09:00:00.500Z")
    assert replay("") == () and span(()) == ("", "")


def test_a_result_cut_short_by_a_kill_leaves_its_write_in_doubt(drifted: Drifted, tmp_path: Path) -> None:
    path = journal_path(tmp_path / ".git", drifted.plan)
    earlier = Journal(path)
    earlier.record(0, SENT, drifted.plan.writes[0])
    earlier.record(0, DONE, drifted.plan.writes[0])
    earlier.record(1, SENT, drifted.plan.writes[1])
    earlier.close()
    with path.open("a", encoding="utf-8") as killed:
        killed.write(line(1, "done")[:30])

    rerun = Journal(path)
    assert rerun.cut and rerun.last_events() == {0: DONE, 1: SENT}
    assert journal_progress(drifted.plan, rerun.last_events()) == JournalProgress(done=1, in_doubt=1, not_started=1)
    rerun.record(1, CONFIRMED, drifted.plan.writes[1])
    rerun.close()
    assert path.read_text(encoding="utf-8").count("\n") == 5  # the cut line ended, the new entry whole after it
    assert Journal(path).last_events() == {0: DONE, 1: CONFIRMED}


def test_a_journal_opened_and_closed_without_writing_leaves_no_file(drifted: Drifted, tmp_path: Path) -> None:
    journal = Journal(journal_path(tmp_path / ".git", drifted.plan))
    journal.close()
    assert not journal.path.exists() and journal.entries == []


@pytest.mark.parametrize(
    ("event", "state"),
    [
        (None, WriteState.NOT_STARTED),
        (SENT, WriteState.IN_DOUBT),
        (DONE, WriteState.DONE),
        (CONFIRMED, WriteState.DONE),
        (FAILED, WriteState.FAILED),
    ],
)
def test_each_event_puts_a_write_in_one_state(event: JournalEvent | None, state: WriteState) -> None:
    assert write_state(event) is state


def test_a_plan_without_writes_is_never_complete() -> None:
    assert not JournalProgress().complete and not JournalProgress().started
