"""
Hedging: a second attempt after the delay, the first success wins, and the
losers are cancelled.
"""

from __future__ import annotations

import asyncio

import pytest

from recovery.errors import ConfigurationError
from recovery.events import Event
from recovery.policies.hedging import HedgeStarted, Hedging
from recovery.testing import FakeClock


class Replicas:
    """Attempt n behaves as scripted: "hang", "ok", or an exception."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.started = 0
        self.cancelled: list[int] = []

    async def __call__(self, key: str) -> str:
        attempt = self.started
        self.started += 1
        behaviour = self.script[attempt]
        if isinstance(behaviour, BaseException):
            raise behaviour
        if behaviour == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(attempt)
                raise
        return f"{key} from attempt {attempt}"


async def test_fast_first_attempt_is_not_hedged() -> None:
    clock = FakeClock()
    events: list[Event] = []
    replicas = Replicas("ok")

    result = await Hedging(0.1, clock=clock, listeners=(events.append,)).acall(
        replicas, "k"
    )

    assert result == "k from attempt 0"
    assert replicas.started == 1
    assert events == []


async def test_slow_attempt_is_hedged_after_the_delay_and_cancelled() -> None:
    clock = FakeClock()
    events: list[Event] = []
    replicas = Replicas("hang", "ok")

    result = await Hedging(
        0.2, name="reads", clock=clock, listeners=(events.append,)
    ).acall(replicas, "k")

    assert result == "k from attempt 1"
    assert replicas.cancelled == [0]
    assert clock.now() == 0.2
    assert events == [
        HedgeStarted(source="reads", pipeline=None, attempt=2, reason="delay")
    ]


async def test_a_failure_starts_the_next_attempt_at_once() -> None:
    clock = FakeClock()
    events: list[Event] = []
    replicas = Replicas(ConnectionError(), "ok")

    result = await Hedging(5, clock=clock, listeners=(events.append,)).acall(
        replicas, "k"
    )

    assert result == "k from attempt 1"
    assert [e.reason for e in events if isinstance(e, HedgeStarted)] == ["failure"]


async def test_up_to_max_attempts_in_flight() -> None:
    clock = FakeClock()
    replicas = Replicas("hang", "hang", "ok")

    result = await Hedging(1, max_attempts=3, clock=clock).acall(replicas, "k")

    assert result == "k from attempt 2"
    assert sorted(replicas.cancelled) == [0, 1]
    assert clock.now() == 2


async def test_all_failing_raises_the_last_failure_with_a_note() -> None:
    last = TimeoutError("third")
    replicas = Replicas(ConnectionError("first"), ConnectionError("second"), last)

    with pytest.raises(TimeoutError) as caught:
        await Hedging(1, max_attempts=3, clock=FakeClock()).acall(replicas, "k")

    assert caught.value is last
    assert caught.value.__notes__ == [
        "recovery: 'hedging': all 3 hedged attempts failed"
    ]


async def test_unmatched_failure_propagates_and_cancels_the_rest() -> None:
    replicas = Replicas("hang", TypeError("bug"))

    with pytest.raises(TypeError, match="bug"):
        await Hedging(1, on=ConnectionError, clock=FakeClock()).acall(replicas, "k")

    assert replicas.cancelled == [0]


async def test_waits_for_the_last_attempt_when_no_more_may_start() -> None:
    replicas = Replicas(ConnectionError(), "ok")

    result = await Hedging(1, max_attempts=2, clock=FakeClock()).acall(replicas, "k")

    assert result == "k from attempt 1"


async def test_cancelling_the_caller_cancels_every_attempt() -> None:
    replicas = Replicas("hang", "hang")
    task = asyncio.ensure_future(Hedging(1, clock=FakeClock()).acall(replicas, "k"))
    for _ in range(50):  # both attempts start within a few loop steps
        if replicas.started == 2:
            break
        await asyncio.sleep(0)
    assert replicas.started == 2

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sorted(replicas.cancelled) == [0, 1]


async def test_decorator() -> None:
    replicas = Replicas("hang", "ok")
    hedged = Hedging(0.5, clock=FakeClock())(replicas.__call__)

    assert await hedged("k") == "k from attempt 1"


def test_sync_calls_are_refused() -> None:
    with pytest.raises(TypeError, match="acall"):
        Hedging(1).call(lambda: None)
    with pytest.raises(TypeError, match="async"):
        Hedging(1)(lambda: None)  # type: ignore[arg-type, return-value]


def test_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="delay"):
        Hedging(0)
    with pytest.raises(ConfigurationError, match="max_attempts"):
        Hedging(1, max_attempts=0)
