"""
The ways to call through a breaker: call/acall, decorators, context managers,
generators; and the events every state change emits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Generator

import pytest

from recovery.errors import CircuitOpenError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState
from recovery.policies.breaker_events import (
    BreakerClosed,
    BreakerForcedOpen,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerReset,
    BreakerStateChanged,
    CallRejected,
)
from recovery.testing import FakeClock

from .helpers import BoomError, Recorder, fail_times, state_of


def tripped(clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker("t", failure_threshold=1, reset_timeout=10, clock=clock)
    fail_times(breaker, 1)
    return breaker


class TestDecorator:
    def test_keeps_the_signature_and_name(self) -> None:
        breaker = CircuitBreaker("t", clock=FakeClock())

        @breaker
        def add(a: int, b: int = 2) -> int:
            """Add."""
            return a + b

        assert add(1) == 3
        assert add.__name__ == "add"
        assert add.__doc__ == "Add."
        assert list(inspect.signature(add).parameters) == ["a", "b"]
        assert inspect.signature(add) == inspect.signature(add.__wrapped__)  # type: ignore[attr-defined]

    async def test_coroutine_functions_stay_coroutine_functions(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())

        @breaker
        async def fetch(x: int) -> int:
            await asyncio.sleep(0)
            if x < 0:
                raise BoomError("negative")
            return x

        assert inspect.iscoroutinefunction(fetch)
        assert await fetch(3) == 3
        with pytest.raises(BoomError):
            await fetch(-1)
        with pytest.raises(CircuitOpenError):
            await fetch(1)

    def test_methods_bind_self(self) -> None:
        breaker = CircuitBreaker("t", clock=FakeClock())

        class Client:
            factor = 10

            @breaker
            def scale(self, x: int) -> int:
                return self.factor * x

        assert Client().scale(4) == 40

    def test_rejects_non_callables(self) -> None:
        with pytest.raises(TypeError, match="callables"):
            CircuitBreaker("t")(42)  # type: ignore[call-overload]


class TestGenerators:
    def test_a_consumer_stopping_early_is_not_a_failure(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())

        @breaker
        def numbers() -> Generator[int, None, None]:
            yield from range(100)

        gen = numbers()
        assert next(gen) == 0
        gen.close()

        m = breaker.metrics()
        assert (m.state, m.successful_calls, m.failed_calls) == (
            BreakerState.CLOSED,
            1,
            0,
        )

    def test_an_error_while_iterating_is_a_failure(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())

        @breaker
        def broken() -> Generator[int, None, None]:
            yield 1
            raise BoomError("mid-stream")

        with pytest.raises(BoomError):
            list(broken())
        assert state_of(breaker) is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            next(broken())

    def test_send_and_return_value_pass_through(self) -> None:
        breaker = CircuitBreaker("t", clock=FakeClock())

        @breaker
        def echo() -> Generator[object, object, str]:
            received = yield "ready"
            yield received
            return "done"

        gen = echo()
        assert next(gen) == "ready"
        assert gen.send("hello") == "hello"
        with pytest.raises(StopIteration) as stop:
            next(gen)
        assert stop.value.value == "done"

    async def test_async_generators(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())

        @breaker
        async def ticks(n: int) -> AsyncIterator[int]:
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        assert inspect.isasyncgenfunction(ticks)
        assert [i async for i in ticks(3)] == [0, 1, 2]
        agen = ticks(10)
        assert await agen.__anext__() == 0
        await agen.aclose()

        m = breaker.metrics()
        assert (m.successful_calls, m.failed_calls) == (2, 0)

    async def test_async_generator_passes_asend_and_athrow_through(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        seen: list[object] = []

        @breaker
        async def echo() -> AsyncGenerator[object, object]:
            while True:
                try:
                    seen.append((yield "ready"))
                except KeyError:
                    seen.append("caught")

        agen = echo()
        assert await agen.asend(None) == "ready"
        assert await agen.asend("hello") == "ready"
        assert await agen.athrow(KeyError()) == "ready"
        await agen.aclose()

        assert seen == ["hello", "caught"]
        assert breaker.metrics().successful_calls == 1

    async def test_async_generator_failure(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())

        @breaker
        async def broken() -> AsyncIterator[int]:
            yield 1
            raise BoomError("mid-stream")

        with pytest.raises(BoomError):
            _ = [i async for i in broken()]
        assert state_of(breaker) is BreakerState.OPEN


class TestContextManagers:
    def test_with_block_counts_its_exception(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        with breaker:
            pass
        with pytest.raises(BoomError), breaker:
            raise BoomError("inside")

        assert state_of(breaker) is BreakerState.OPEN
        with pytest.raises(CircuitOpenError), breaker:
            pytest.fail("the block must not run")

    async def test_async_with(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        async with breaker:
            await asyncio.sleep(0)
        with pytest.raises(BoomError):
            async with breaker:
                raise BoomError("inside")

        assert state_of(breaker) is BreakerState.OPEN

    def test_exit_without_enter_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="without a matching"):
            CircuitBreaker("t").__exit__(None, None, None)


class TestCancellation:
    async def test_a_cancelled_trial_frees_its_permit(self) -> None:
        clock = FakeClock()
        breaker = tripped(clock)
        clock.advance(10)
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(breaker.acall(hang))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert breaker.metrics().total_calls == 1  # the tripping failure only
        await breaker.acall(asyncio.sleep, 0)
        assert state_of(breaker) is BreakerState.CLOSED


class TestEvents:
    def test_every_transition_reaches_the_listener(self) -> None:
        clock = FakeClock()
        recorder = Recorder()
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            reset_timeout=10,
            clock=clock,
            listeners=[recorder],
        )
        fail_times(breaker, 1)
        with pytest.raises(CircuitOpenError):
            breaker.call(int)
        clock.advance(10)
        breaker.call(int)
        breaker.force_open()
        breaker.reset()

        assert [type(e) for e in recorder.events] == [
            BreakerOpened,
            CallRejected,
            BreakerHalfOpened,
            BreakerClosed,
            BreakerForcedOpen,
            BreakerReset,
        ]
        changes = [e for e in recorder.events if isinstance(e, BreakerStateChanged)]
        assert [(e.previous, e.state) for e in changes] == [
            (BreakerState.CLOSED, BreakerState.OPEN),
            (BreakerState.OPEN, BreakerState.HALF_OPEN),
            (BreakerState.HALF_OPEN, BreakerState.CLOSED),
            (BreakerState.CLOSED, BreakerState.FORCED_OPEN),
            (BreakerState.FORCED_OPEN, BreakerState.CLOSED),
        ]
        opened = recorder.events[0]
        assert isinstance(opened, BreakerOpened)
        assert (opened.retry_after, opened.reason) == (10.0, "1 consecutive failure")

    def test_levels_follow_the_house_rules(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        clock = FakeClock()
        caplog.set_level(logging.DEBUG, logger="recovery.policies.breaker")
        breaker = tripped(clock)
        with pytest.raises(CircuitOpenError):
            breaker.call(int)
        clock.advance(10)
        breaker.call(int)

        levels = [(r.recovery_event, r.levelno) for r in caplog.records]  # type: ignore[attr-defined]
        assert levels == [
            ("breaker_opened", logging.WARNING),
            ("breaker_call_rejected", logging.DEBUG),
            ("breaker_half_opened", logging.WARNING),
            ("breaker_closed", logging.INFO),
        ]

    def test_add_listener_after_construction(self) -> None:
        recorder = Recorder()
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        breaker.add_listener(recorder)
        fail_times(breaker, 1)
        assert recorder.kinds() == ["breaker_opened"]
