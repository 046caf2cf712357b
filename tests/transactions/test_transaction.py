"""
The in-memory `Transaction`: run operations, roll back in reverse on error.
"""

from __future__ import annotations

import asyncio

import pytest

from recovery.errors import ConfigurationError
from recovery.events import Event
from recovery.policies.backoff import constant
from recovery.policies.retry import Retry
from recovery.testing import FakeClock
from recovery.transactions import (
    SagaCompensated,
    SagaCompensationRan,
    SagaFailed,
    SagaFailedError,
    SagaStatus,
    Transaction,
)


class PaymentError(Exception):
    pass


def test_execute_returns_results_in_order() -> None:
    tx = Transaction().add(lambda: 1, name="one").add(lambda: "two", name="two")

    assert tx.execute() == [1, "two"]


def test_execute_rolls_back_completed_operations_in_reverse() -> None:
    log: list[str] = []

    def fail() -> None:
        raise PaymentError("declined")

    tx = (
        Transaction("checkout")
        .add(
            lambda: "seat-7", lambda seat: log.append(f"release {seat}"), name="reserve"
        )
        .add(lambda: 42, lambda n: log.append(f"unhold {n}"), name="hold")
        .add(fail, lambda _: log.append("never"), name="charge")
    )

    with pytest.raises(SagaFailedError) as caught:
        tx.execute()

    assert log == ["unhold 42", "release seat-7"]
    error = caught.value
    assert isinstance(error.error, PaymentError)
    assert error.status is SagaStatus.COMPENSATED
    assert error.failed_step == "charge"
    assert error.compensated == ("hold", "reserve")
    assert "checkout" in str(error)


def test_context_manager_rolls_back_when_the_block_raises() -> None:
    log: list[str] = []

    with pytest.raises(SagaFailedError) as caught, Transaction() as tx:
        seat = tx.run(lambda: 7, lambda s: log.append(f"release {s}"), name="reserve")
        assert seat == 7
        raise PaymentError("declined")

    assert log == ["release 7"]
    assert caught.value.failed_step == "the block"
    assert isinstance(caught.value.error, PaymentError)


def test_context_manager_rolls_back_when_an_operation_raises() -> None:
    log: list[str] = []

    def charge() -> None:
        raise PaymentError

    with pytest.raises(SagaFailedError) as caught, Transaction() as tx:
        tx.run(lambda: 1, lambda _: log.append("undo 1"), name="one")
        tx.run(charge, name="charge")
        log.append("not reached")

    assert log == ["undo 1"]
    assert caught.value.failed_step == "charge"


def test_successful_block_keeps_everything() -> None:
    log: list[str] = []

    with Transaction() as tx:
        tx.run(lambda: 1, lambda _: log.append("undo"))

    assert log == []


def test_rollback_errors_are_all_reachable_and_the_rest_still_run() -> None:
    log: list[str] = []

    def bad_rollback(_: object) -> None:
        raise OSError("cannot release")

    tx = (
        Transaction()
        .add(lambda: 1, lambda _: log.append("undo a"), name="a")
        .add(lambda: 2, bad_rollback, name="b")
        .add(lambda: (_ for _ in ()).throw(PaymentError()), name="c")
    )

    with pytest.raises(SagaFailedError) as caught:
        tx.execute()

    assert log == ["undo a"]
    error = caught.value
    assert error.status is SagaStatus.FAILED
    assert [type(e) for e in error.exceptions] == [PaymentError, OSError]
    assert error.compensated == ("a",)
    assert error.not_compensated == ("b",)


def test_stop_mode_leaves_the_earlier_rollbacks() -> None:
    log: list[str] = []

    def bad_rollback(_: object) -> None:
        raise OSError

    tx = Transaction(on_rollback_failure="stop")
    tx.add(lambda: 1, lambda _: log.append("undo a"), name="a")
    tx.add(lambda: 2, bad_rollback, name="b")
    tx.add(lambda: (_ for _ in ()).throw(PaymentError()), name="c")

    with pytest.raises(SagaFailedError) as caught:
        tx.execute()

    assert log == []
    assert caught.value.status is SagaStatus.STUCK
    assert caught.value.not_compensated == ("b", "a")


def test_rollbacks_are_retried() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    def flaky(_: object) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError

    tx = Transaction(
        rollback_retry=Retry(attempts=3, backoff=constant(0.5), clock=clock)
    )
    tx.add(lambda: 1, flaky, name="a").add(
        lambda: (_ for _ in ()).throw(PaymentError())
    )

    with pytest.raises(SagaFailedError) as caught:
        tx.execute()

    assert len(attempts) == 3
    assert clock.sleeps == [0.5, 0.5]
    assert caught.value.status is SagaStatus.COMPENSATED


def test_events_report_rollbacks() -> None:
    events: list[Event] = []
    tx = Transaction("t", listeners=[events.append])
    tx.add(lambda: 1, lambda _: None, name="a").add(
        lambda: (_ for _ in ()).throw(PaymentError())
    )

    with pytest.raises(SagaFailedError):
        tx.execute()

    assert [type(e) for e in events] == [SagaCompensationRan, SagaCompensated]


def test_failed_rollback_event() -> None:
    events: list[Event] = []

    def bad(_: object) -> None:
        raise OSError

    tx = Transaction("t", listeners=[events.append])
    tx.add(lambda: 1, bad, name="a").add(lambda: (_ for _ in ()).throw(PaymentError()))

    with pytest.raises(SagaFailedError):
        tx.execute()

    assert isinstance(events[-1], SagaFailed)
    assert events[-1].not_compensated == ("a",)


async def test_async_forms() -> None:
    log: list[str] = []

    async def reserve() -> str:
        return "seat"

    async def release(seat: str) -> None:
        log.append(f"release {seat}")

    async def charge() -> None:
        raise PaymentError

    with pytest.raises(SagaFailedError):
        async with Transaction() as tx:
            assert await tx.arun(reserve, release) == "seat"
            await tx.arun(charge)
    tx2 = Transaction().add(reserve, release).add(charge)
    with pytest.raises(SagaFailedError):
        await tx2.aexecute()

    assert log == ["release seat", "release seat"]


def test_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="on_rollback_failure"):
        Transaction(on_rollback_failure="skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="callable"):
        Transaction().add("nope")  # type: ignore[call-overload]


INTERRUPTIONS = (KeyboardInterrupt, SystemExit, asyncio.CancelledError)


@pytest.mark.parametrize("kind", INTERRUPTIONS)
def test_interruption_in_an_operation_rolls_back_then_propagates(
    kind: type[BaseException],
) -> None:
    log: list[str] = []
    events: list[Event] = []
    interruption = kind()

    def interrupted() -> None:
        raise interruption

    tx = Transaction("t", listeners=[events.append])
    tx.add(lambda: 1, lambda n: log.append(f"undo {n}"), name="a")
    tx.add(lambda: 2, lambda n: log.append(f"undo {n}"), name="b")
    tx.add(interrupted, lambda _: log.append("never"), name="c")

    with pytest.raises(kind) as caught:
        tx.execute()

    assert caught.value is interruption
    assert log == ["undo 2", "undo 1"]
    assert [type(e) for e in events] == [
        SagaCompensationRan,
        SagaCompensationRan,
        SagaCompensated,
    ]
    assert caught.value.__notes__ == [
        "transaction 't' was interrupted at 'c'; rolled back: b, a; "
        "not rolled back: nothing"
    ]


@pytest.mark.parametrize("kind", INTERRUPTIONS)
def test_interruption_in_the_block_rolls_back_once_then_propagates(
    kind: type[BaseException],
) -> None:
    log: list[str] = []
    events: list[Event] = []
    interruption = kind()

    with pytest.raises(kind) as caught, Transaction(listeners=[events.append]) as tx:
        tx.run(lambda: 1, lambda n: log.append(f"undo {n}"), name="a")
        raise interruption

    assert caught.value is interruption
    assert log == ["undo 1"]
    assert [type(e) for e in events] == [SagaCompensationRan, SagaCompensated]


@pytest.mark.parametrize("kind", INTERRUPTIONS)
def test_interrupted_operation_inside_a_block_rolls_back_once(
    kind: type[BaseException],
) -> None:
    log: list[str] = []
    events: list[Event] = []

    def interrupted() -> None:
        raise kind

    with pytest.raises(kind), Transaction(listeners=[events.append]) as tx:
        tx.run(lambda: 1, lambda n: log.append(f"undo {n}"), name="a")
        tx.run(interrupted, name="b")

    assert log == ["undo 1"]
    assert [type(e) for e in events] == [SagaCompensationRan, SagaCompensated]


def test_failed_rollback_after_an_interruption_is_noted_not_raised() -> None:
    events: list[Event] = []

    def bad(_: object) -> None:
        raise OSError("refund service down")

    tx = Transaction("t", listeners=[events.append])
    with pytest.raises(KeyboardInterrupt) as caught, tx:
        tx.run(lambda: 1, lambda _: None, name="a")
        tx.run(lambda: 2, bad, name="b")
        raise KeyboardInterrupt

    assert isinstance(events[-1], SagaFailed)
    assert events[-1].not_compensated == ("b",)
    assert caught.value.__notes__ == [
        "transaction 't' was interrupted at 'the block'; rolled back: a; "
        "not rolled back: b"
    ]


async def test_cancelled_task_rolls_back_with_async_rollbacks() -> None:
    log: list[str] = []
    started = asyncio.Event()

    async def release(seat: str) -> None:
        await asyncio.sleep(0)
        log.append(f"release {seat}")

    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def checkout() -> None:
        async with Transaction() as tx:
            await tx.arun(lambda: "seat", release, name="reserve")
            await tx.arun(wait_forever, lambda _: log.append("never"), name="pay")

    task = asyncio.create_task(checkout())
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["release seat"]


async def test_cancelled_block_rolls_back_with_async_rollbacks() -> None:
    log: list[str] = []
    started = asyncio.Event()

    async def release(seat: str) -> None:
        log.append(f"release {seat}")

    async def checkout() -> None:
        async with Transaction() as tx:
            await tx.arun(lambda: "seat", release, name="reserve")
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(checkout())
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["release seat"]
