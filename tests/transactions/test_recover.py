"""
Recovery in one process: a step raises a BaseException to stand in for a
crash, then `recover_sagas` finishes the saga from the journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recovery.events import Event
from recovery.policies.retry import Retry
from recovery.testing import FakeClock
from recovery.transactions import (
    Journal,
    JournalCorruptError,
    JournalRecord,
    MemoryJournal,
    RecordKind,
    RecoveryReport,
    Saga,
    SagaContext,
    SagaDefinitionChangedError,
    SagaOwnershipLostError,
    SagaRecovered,
    SagaStateError,
    SagaStatus,
    SqliteJournal,
    Step,
    abort_saga,
    arecover_sagas,
    recover_sagas,
    retry_saga,
)
from recovery.transactions.ownership import is_dead_locally, new_worker_id


class Crash(BaseException):
    """
    Stands in for the process dying: no saga code handles it.
    """


class World:
    """
    Steps that log their effects and can crash once at a chosen point.
    """

    def __init__(self) -> None:
        self.effects: list[str] = []
        self.crash_at: str | None = None

    def _maybe_crash(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise Crash(point)

    def action(self, name: str, *, fail: bool = False) -> Callable[[SagaContext], str]:
        def run(ctx: SagaContext) -> str:
            self._maybe_crash(f"before {name}")
            self.effects.append(f"do {name} {ctx.idempotency_key}")
            self._maybe_crash(f"after {name}")
            if fail:
                raise ValueError(name)
            return name.upper()

        return run

    def undo(self, name: str) -> Callable[[SagaContext, object], None]:
        def run(ctx: SagaContext, result: object) -> None:
            self._maybe_crash(f"before undo {name}")
            self.effects.append(f"undo {name} {result}")
            self._maybe_crash(f"after undo {name}")

        return run


def saga_for(
    world: World,
    journal: Journal,
    *,
    fail_c: bool = True,
    idempotent: bool = True,
    compensate_in_doubt: bool = True,
) -> Saga:
    return Saga(
        "trip",
        [
            Step("a", world.action("a"), world.undo("a")),
            Step(
                "b",
                world.action("b"),
                world.undo("b"),
                idempotent=idempotent,
                compensate_in_doubt=compensate_in_doubt,
            ),
            Step("c", world.action("c", fail=fail_c), world.undo("c")),
        ],
        journal=journal,
        compensation_retry=None,
    )


@pytest.fixture(params=["memory", "sqlite"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "memory":
        yield MemoryJournal()
    else:
        j = SqliteJournal(tmp_path / "journal.db")
        yield j
        j.close()


def crash_then_recover(
    world: World, saga: Saga, point: str
) -> tuple[SagaStatus, list[str]]:
    world.crash_at = point
    with pytest.raises(Crash):
        saga.run(saga_id="s")
    before = list(world.effects)

    report = recover_sagas(saga.journal, [saga])

    assert report.errors == {}
    assert list(report.finished) == ["s"]
    return report.finished["s"], before


def test_crash_during_idempotent_step_reinvokes_it_with_the_same_key(
    journal: Journal,
) -> None:
    world = World()
    saga = saga_for(world, journal, fail_c=False)

    status, before = crash_then_recover(world, saga, "after b")

    assert status is SagaStatus.COMPLETED
    assert before == ["do a s:a:action", "do b s:b:action"]
    assert world.effects == [
        "do a s:a:action",
        "do b s:b:action",
        "do b s:b:action",
        "do c s:c:action",
    ]


def test_crash_during_non_idempotent_step_compensates_it_as_possibly_done(
    journal: Journal,
) -> None:
    world = World()
    saga = saga_for(world, journal, fail_c=False, idempotent=False)

    status, _ = crash_then_recover(world, saga, "after b")

    assert status is SagaStatus.COMPENSATED
    assert world.effects[2:] == ["undo b None", "undo a A"]


def test_crash_during_non_idempotent_step_can_stop_for_an_operator(
    journal: Journal,
) -> None:
    world = World()
    saga = saga_for(
        world, journal, fail_c=False, idempotent=False, compensate_in_doubt=False
    )

    status, _ = crash_then_recover(world, saga, "after b")

    assert status is SagaStatus.STUCK
    assert world.effects == ["do a s:a:action", "do b s:b:action"]
    assert journal.load("s").header.status is SagaStatus.STUCK


def test_crash_during_compensation_finishes_it_without_repeating_done_ones(
    journal: Journal,
) -> None:
    world = World()
    saga = saga_for(world, journal)

    status, before = crash_then_recover(world, saga, "after undo b")

    assert status is SagaStatus.COMPENSATED
    assert before[-1] == "undo b B"
    # b's compensation was in doubt, so it runs again (with its key); a's
    # runs once; nothing forward runs again.
    assert world.effects[len(before) :] == ["undo b B", "undo a A"]
    assert sum(e.startswith("do ") for e in world.effects) == 3


def test_recorded_compensation_is_never_run_again(journal: Journal) -> None:
    world = World()
    saga = saga_for(world, journal)

    status, before = crash_then_recover(world, saga, "before undo a")

    assert status is SagaStatus.COMPENSATED
    assert before.count("undo b B") == 1
    assert world.effects.count("undo b B") == 1
    assert world.effects[-1] == "undo a A"


def test_second_recovery_does_nothing(journal: Journal) -> None:
    world = World()
    saga = saga_for(world, journal)
    crash_then_recover(world, saga, "after b")
    effects = list(world.effects)
    records = len(journal.load("s").records)

    report = recover_sagas(journal, [saga])

    assert report.finished == {}
    assert world.effects == effects
    assert len(journal.load("s").records) == records


def test_recovery_journals_the_takeover_and_emits_an_event(journal: Journal) -> None:
    world = World()
    events: list[Event] = []
    saga = saga_for(world, journal, fail_c=False)
    saga.add_listener(events.append)

    crash_then_recover(world, saga, "before c")

    recovered = [e for e in events if isinstance(e, SagaRecovered)]
    assert len(recovered) == 1
    assert recovered[0].saga_id == "s"
    assert recovered[0].status == "running"
    records = journal.load("s").records
    crashed = records[0].owner
    (resumed,) = [r for r in records if r.kind is RecordKind.SAGA_RESUMED]
    # The takeover names the worker that crashed, not the one recovering.
    assert resumed.owner != crashed
    assert json.loads(resumed.payload or "") == {"previous_owner": crashed}
    assert recovered[0].previous_owner == crashed
    fences = {r.fence for r in journal.load("s").records}
    assert fences == {1, 2}


def test_changed_definition_is_refused_and_left_untouched(journal: Journal) -> None:
    world = World()
    saga = saga_for(world, journal)
    world.crash_at = "after b"
    with pytest.raises(Crash):
        saga.run(saga_id="s")
    records = journal.load("s").records
    changed = Saga("trip", [Step("a", print), Step("b2", print)], journal=journal)

    report = recover_sagas(journal, [changed])

    error = report.errors["s"]
    assert isinstance(error, SagaDefinitionChangedError)
    assert "refusing to resume" in str(error)
    assert error.stored_hash == saga.definition_hash
    assert journal.load("s").records == records
    # Not even claimed: the crashed owner's fence still stands.
    assert journal.load("s").header.fence == 1
    # Released again, so the right definition can finish it at once.
    assert recover_sagas(journal, [saga]).finished == {"s": SagaStatus.COMPENSATED}


def test_sagas_of_other_types_are_left_to_their_own_workers(journal: Journal) -> None:
    world = World()
    saga = saga_for(world, journal)
    world.crash_at = "after a"
    with pytest.raises(Crash):
        saga.run(saga_id="s")

    other = recover_sagas(journal, [Saga("other", [Step("x", print)])])
    own = recover_sagas(journal, [saga])

    assert (other.finished, other.errors) == ({}, {})
    assert own.finished == {"s": SagaStatus.COMPENSATED}


def test_live_owner_is_not_recovered_until_its_lease_expires() -> None:
    clock = FakeClock()
    journal = MemoryJournal(clock=clock)
    saga = saga_for(World(), journal, fail_c=False)
    # A saga owned by a process on another host: only its lease can free it.
    journal.create(
        JournalRecord(
            saga_id="s",
            seq=1,
            kind=RecordKind.SAGA_STARTED,
            payload="null",
            owner="elsewhere:1:abc",
            fence=1,
            at=clock.time(),
        ),
        saga_type="trip",
        definition_hash=saga.definition_hash,
        lease=60.0,
    )

    assert recover_sagas(journal, [saga]).finished == {}

    clock.advance(60)
    assert recover_sagas(journal, [saga]).finished == {"s": SagaStatus.COMPLETED}


def test_dead_local_owner_is_detected() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host_pid = new_worker_id().rsplit(":", 2)[0]

    assert is_dead_locally(f"{host_pid}:{os.getpid()}:x") is False
    assert is_dead_locally(f"{host_pid.rsplit(':', 1)[0]}:{child.pid}:x") is True
    assert is_dead_locally(f"other-host:{child.pid}:x") is False
    assert is_dead_locally("garbage") is False


def test_operator_retry_and_abort_of_stuck_sagas(journal: Journal) -> None:
    world = World()
    fail_once = {"left": 1}

    def flaky_undo(ctx: SagaContext, result: object) -> None:
        world.effects.append(f"undo b {result}")
        if fail_once["left"]:
            fail_once["left"] -= 1
            raise OSError("service down")

    saga = Saga(
        "trip",
        [
            Step("a", world.action("a"), world.undo("a")),
            Step("b", world.action("b"), flaky_undo),
            Step("c", world.action("c", fail=True)),
        ],
        journal=journal,
        compensation_retry=None,
    )
    with pytest.raises(Exception, match="trip"):
        saga.run(saga_id="s")
    assert journal.load("s").header.status is SagaStatus.STUCK
    assert recover_sagas(journal, [saga]).finished == {}

    assert retry_saga(journal, "s", note="service is back") is SagaStatus.COMPENSATING
    report = recover_sagas(journal, [saga])

    assert report.finished == {"s": SagaStatus.COMPENSATED}
    assert world.effects[-3:] == ["undo b B", "undo b B", "undo a A"]
    operator = [
        r for r in journal.load("s").records if r.kind is RecordKind.OPERATOR_ACTION
    ]
    assert json.loads(operator[0].payload or "") == {
        "action": "retry",
        "note": "service is back",
    }
    with pytest.raises(SagaStateError, match="compensated"):
        abort_saga(journal, "s")


def test_abort_needs_force_for_sagas_in_progress(journal: Journal) -> None:
    world = World()
    saga = saga_for(world, journal)
    world.crash_at = "after a"
    with pytest.raises(Crash):
        saga.run(saga_id="s")

    with pytest.raises(SagaStateError, match="running"):
        abort_saga(journal, "s")
    abort_saga(journal, "s", force=True, note="handled by hand")

    assert journal.load("s").header.status is SagaStatus.FAILED
    assert recover_sagas(journal, [saga]).finished == {}
    assert world.effects == ["do a s:a:action"]


def test_corrupt_payload_is_reported_not_skipped(tmp_path: Path) -> None:
    import sqlite3

    journal = SqliteJournal(tmp_path / "j.db")
    world = World()
    saga = saga_for(world, journal)
    world.crash_at = "after b"
    with pytest.raises(Crash):
        saga.run(saga_id="s")
    with sqlite3.connect(tmp_path / "j.db") as conn:
        conn.execute("UPDATE recovery_saga_record SET payload = '{\"A' WHERE seq = 3")
    before = journal.load("s")

    report = recover_sagas(journal, [saga])
    again = recover_sagas(journal, [saga])

    error = report.errors["s"]
    assert isinstance(error, JournalCorruptError)
    assert (error.saga_id, error.seq) == ("s", 3)
    assert "record 3" in str(error)
    assert isinstance(again.errors["s"], JournalCorruptError)
    # Never claimed: owner, fence and lease are those the crash left.
    assert journal.load("s") == before
    assert world.effects == ["do a s:a:action", "do b s:b:action"]
    journal.close()


def test_unreadable_sagas_are_not_claimed_and_do_not_block_others(
    tmp_path: Path,
) -> None:
    import sqlite3

    journal = SqliteJournal(tmp_path / "j.db")
    world = World()
    saga = saga_for(world, journal)
    for saga_id in ("bad-1", "bad-2", "good"):
        world.crash_at = "after b"
        with pytest.raises(Crash):
            saga.run(saga_id=saga_id)
    with sqlite3.connect(tmp_path / "j.db") as conn:
        # A lost record, which the journal finds, and a damaged payload,
        # which only replaying finds.
        conn.execute(
            "DELETE FROM recovery_saga_record WHERE saga_id = 'bad-1' AND seq = 2"
        )
        conn.execute(
            "UPDATE recovery_saga_record SET payload = 'x' "
            "WHERE saga_id = 'bad-2' AND seq = 3"
        )
    headers = {h.saga_id: h for h in journal.sagas()}

    # One saga per batch: the two unreadable ones come first.
    report = recover_sagas(journal, [saga], batch=1)

    assert report.finished == {"good": SagaStatus.COMPENSATED}
    assert sorted(report.errors) == ["bad-1", "bad-2"]
    assert all(isinstance(e, JournalCorruptError) for e in report.errors.values())
    after = {h.saga_id: h for h in journal.sagas()}
    assert after["bad-1"] == headers["bad-1"]
    assert after["bad-2"] == headers["bad-2"]
    journal.close()


async def test_arecover_sagas_runs_async_steps() -> None:
    journal = MemoryJournal()
    effects: list[str] = []
    crash = {"armed": True}

    async def a(ctx: SagaContext) -> int:
        effects.append("a")
        return 1

    async def undo_a(ctx: SagaContext, result: object) -> None:
        effects.append(f"undo a {result}")

    async def b(ctx: SagaContext) -> int:
        if crash["armed"]:
            crash["armed"] = False
            raise Crash
        raise ValueError("b")

    saga = Saga(
        "s",
        [Step("a", a, undo_a), Step("b", b)],
        journal=journal,
        compensation_retry=None,
    )
    with pytest.raises(Crash):
        await saga.arun(saga_id="x")

    report = await arecover_sagas(journal, {"s": saga})

    assert report.finished == {"x": SagaStatus.COMPENSATED}
    assert effects == ["a", "undo a 1"]


def test_recovered_retry_counts_attempts_across_processes(journal: Journal) -> None:
    clock = FakeClock()
    world = World()
    attempts: list[int] = []

    def flaky(ctx: SagaContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 2:
            raise Crash
        if ctx.attempt < 4:
            raise ValueError("again")
        return "ok"

    saga = Saga(
        "trip",
        [
            Step("a", world.action("a")),
            Step("b", flaky, retry=Retry(attempts=3, clock=clock)),
        ],
        journal=journal,
    )
    with pytest.raises(Crash):
        saga.run(saga_id="s")

    report = recover_sagas(journal, [saga])

    assert report.finished == {"s": SagaStatus.COMPLETED}
    assert attempts == [1, 2, 3, 4]


def test_a_worker_fenced_off_mid_step_stops_without_compensating(
    journal: Journal,
) -> None:
    effects: list[str] = []

    def taken_over(ctx: SagaContext) -> str:
        # Meanwhile an operator (or another worker) claims the saga.
        abort_saga(journal, ctx.saga_id, force=True, note="taken over")
        effects.append("b ran")
        return "b"

    saga = Saga(
        "fenced",
        [
            Step("a", lambda ctx: "a", lambda ctx, r: effects.append("undo a")),
            Step("b", taken_over),
            Step("c", lambda ctx: effects.append("c ran")),
        ],
        journal=journal,
    )

    with pytest.raises(SagaOwnershipLostError):
        saga.run(saga_id="f")

    assert effects == ["b ran"]
    history = journal.load("f")
    assert history.header.status is SagaStatus.FAILED
    assert history.records[-1].kind is RecordKind.OPERATOR_ACTION


def test_sagas_taken_over_by_another_worker_are_reported_as_lost() -> None:
    clock = FakeClock()
    journal = MemoryJournal(clock=clock)
    crash = [True]
    inner: list[RecoveryReport] = []

    def step(ctx: SagaContext) -> str:
        if crash[0]:
            raise Crash
        if ctx.saga_id == "s1" and not crash[1:]:
            # While this worker is busy, its leases run out and another
            # worker takes both sagas over.
            crash.append(False)
            clock.advance(1000)
            inner.append(recover_sagas(journal, [saga]))
        return "done"

    saga = Saga("t", [Step("a", step)], journal=journal, compensation_retry=None)
    for saga_id in ("s1", "s2"):
        with pytest.raises(Crash):
            saga.run(saga_id=saga_id)
    crash[0] = False

    outer = recover_sagas(journal, [saga])

    assert inner[0].finished == {"s1": SagaStatus.COMPLETED, "s2": SagaStatus.COMPLETED}
    assert sorted(outer.lost) == ["s1", "s2"]
    assert (outer.finished, outer.errors) == ({}, {})


async def test_cancelled_saga_is_left_for_recovery_not_compensated() -> None:
    journal = MemoryJournal()
    started = asyncio.Event()
    effects: list[str] = []

    async def slow(ctx: SagaContext) -> str:
        started.set()
        await asyncio.Event().wait()  # until cancelled
        return "never"

    async def undo(ctx: SagaContext, result: object) -> None:
        effects.append("undo")

    saga = Saga(
        "c", [Step("a", lambda ctx: "a", undo), Step("b", slow)], journal=journal
    )
    task = asyncio.create_task(saga.arun(saga_id="c1"))
    await started.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert effects == []
    header = journal.load("c1").header
    assert (header.status, header.lease_until) == (SagaStatus.RUNNING, 0.0)
    claims = journal.claim("w", lease=60, limit=5, is_dead=lambda owner: False)
    assert [c.saga_id for c in claims] == ["c1"]


def test_dead_owner_detection_can_be_switched_off(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = new_worker_id().split(":")[0]
    journal = MemoryJournal()
    saga = saga_for(World(), journal, fail_c=False)
    journal.create(
        JournalRecord(
            saga_id="s",
            seq=1,
            kind=RecordKind.SAGA_STARTED,
            payload="null",
            owner=f"{host}:{child.pid}:gone",
            fence=1,
            at=1.0,
        ),
        saga_type="trip",
        definition_hash=saga.definition_hash,
        lease=60.0,
    )

    assert recover_sagas(journal, [saga], detect_dead_owners=False).finished == {}
    assert recover_sagas(journal, [saga]).finished == {"s": SagaStatus.COMPLETED}
