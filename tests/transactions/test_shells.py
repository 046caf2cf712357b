"""
The sync and async shells take the same decisions (one scenario table for
both), and one journal serves many threads at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from recovery.policies.backoff import constant
from recovery.policies.retry import Retry
from recovery.testing import FakeClock
from recovery.transactions import (
    Journal,
    MemoryJournal,
    RecordKind,
    Saga,
    SagaContext,
    SagaFailedError,
    SagaStatus,
    SqliteJournal,
    Step,
)


def ok(ctx: SagaContext) -> str:
    return ctx.step


def fail(ctx: SagaContext) -> str:
    raise ValueError(ctx.step)


def flaky(ctx: SagaContext) -> str:
    if ctx.attempt == 1:
        raise ValueError("first attempt")
    return "second"


def undo(ctx: SagaContext, result: object) -> None:
    return None


def bad_undo(ctx: SagaContext, result: object) -> None:
    raise OSError("undo")


def retry() -> Retry:
    return Retry(attempts=2, backoff=constant(1.0), clock=FakeClock())


def kinds(text: str) -> list[RecordKind]:
    return [RecordKind(word) for word in text.split()]


SCENARIOS: dict[str, tuple[list[Step], str, SagaStatus, list[RecordKind]]] = {
    "completes": (
        [Step("a", ok, undo), Step("b", ok)],
        "stop",
        SagaStatus.COMPLETED,
        kinds(
            "saga_started step_started step_completed step_started step_completed "
            "saga_completed"
        ),
    ),
    "retried step": (
        [Step("a", flaky, retry=retry())],
        "stop",
        SagaStatus.COMPLETED,
        kinds(
            "saga_started step_started step_failed step_started step_completed "
            "saga_completed"
        ),
    ),
    "compensated": (
        [Step("a", ok, undo), Step("b", fail)],
        "stop",
        SagaStatus.COMPENSATED,
        kinds(
            "saga_started step_started step_completed step_started step_failed "
            "saga_compensating comp_started comp_completed saga_compensated"
        ),
    ),
    "stuck": (
        [Step("a", ok, undo), Step("b", ok, bad_undo), Step("c", fail)],
        "stop",
        SagaStatus.STUCK,
        kinds(
            "saga_started step_started step_completed step_started step_completed "
            "step_started step_failed saga_compensating comp_started comp_failed "
            "saga_stuck"
        ),
    ),
    "failed": (
        [Step("a", ok, undo), Step("b", ok, bad_undo), Step("c", fail)],
        "continue",
        SagaStatus.FAILED,
        kinds(
            "saga_started step_started step_completed step_started step_completed "
            "step_started step_failed saga_compensating comp_started comp_failed "
            "comp_gave_up comp_started comp_completed saga_failed"
        ),
    ),
}


def run_sync(saga: Saga) -> SagaStatus:
    try:
        return saga.run(saga_id="s").status
    except SagaFailedError as exc:
        return exc.status


def run_async(saga: Saga) -> SagaStatus:
    async def go() -> SagaStatus:
        try:
            return (await saga.arun(saga_id="s")).status
        except SagaFailedError as exc:
            return exc.status

    return asyncio.run(go())


@pytest.mark.parametrize("shell", [run_sync, run_async], ids=["sync", "async"])
@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_both_shells_write_the_same_journal(
    name: str, shell: Callable[[Saga], SagaStatus], kind: str, tmp_path: Path
) -> None:
    steps, mode, status, kinds = SCENARIOS[name]
    journal: Journal = (
        MemoryJournal() if kind == "memory" else SqliteJournal(tmp_path / "j.db")
    )
    saga = Saga(
        "s",
        steps,
        journal=journal,
        compensation_retry=None,
        on_compensation_failure=mode,  # type: ignore[arg-type]
    )

    assert shell(saga) is status
    history = journal.load("s")
    assert [r.kind for r in history.records] == kinds
    assert history.header.status is status
    assert history.header.lease_until == 0
    journal.close()


@pytest.mark.integration
def test_many_threads_share_one_sqlite_journal(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    saga = Saga("s", [Step("a", ok, undo), Step("b", ok)], journal=journal)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                saga.run(saga_id=f"{n}-{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
            raise

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    headers = journal.sagas()
    assert len(headers) == 20
    assert {h.status for h in headers} == {SagaStatus.COMPLETED}
    assert {h.last_seq for h in headers} == {6}
    journal.close()
