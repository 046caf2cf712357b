"""
Timeout: cancelling async calls, abandoning or trusting sync ones, and the
deadline that a running call reads through `remaining()`.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from recovery.clock import SYSTEM_CLOCK
from recovery.errors import CallTimeoutError, ConfigurationError
from recovery.events import Event
from recovery.policies.timeout import CallTimedOut, Timeout, remaining
from recovery.testing import FakeClock


class TestAsync:
    async def test_cancels_the_call_at_the_deadline(self) -> None:
        clock = FakeClock()
        seen: list[BaseException] = []

        async def hangs() -> None:
            clock.advance(2.5)
            try:
                await asyncio.Event().wait()
            except BaseException as exc:
                seen.append(exc)
                raise

        with pytest.raises(CallTimeoutError) as caught:
            await Timeout(2.5, clock=clock).acall(hangs)

        assert caught.value.timeout == 2.5
        assert isinstance(caught.value, TimeoutError)
        assert clock.now() == 2.5
        assert [type(e) for e in seen] == [asyncio.CancelledError]

    async def test_on_the_loop_clock(self) -> None:
        async def hangs() -> None:
            await asyncio.Event().wait()

        with pytest.raises(CallTimeoutError):
            await Timeout(0.001).acall(hangs)

    async def test_fake_time_moves_only_when_moved(self) -> None:
        clock = FakeClock()

        async def yields_a_lot() -> str:
            for _ in range(20):
                await asyncio.sleep(0)
            clock.advance(4.999)
            await asyncio.sleep(0.002)  # the watchdog polls and finds time left
            return "in time"

        assert await Timeout(5, clock=clock).acall(yields_a_lot) == "in time"
        assert clock.now() == 4.999

    async def test_returns_the_value_in_time(self) -> None:
        async def quick(x: int) -> int:
            return x + 1

        assert await Timeout(1, clock=FakeClock()).acall(quick, 1) == 2
        assert await Timeout(1).acall(quick, 2) == 3

    @pytest.mark.parametrize("clock", [SYSTEM_CLOCK, FakeClock()])
    async def test_the_calls_own_timeout_error_passes_through(
        self, clock: object
    ) -> None:
        error = TimeoutError("the callee's own")

        async def raises() -> None:
            raise error

        with pytest.raises(TimeoutError) as caught:
            await Timeout(5, clock=clock).acall(raises)  # type: ignore[arg-type]

        assert caught.value is error

    async def test_remaining_inside_the_call(self) -> None:
        clock = FakeClock()

        async def reads() -> float | None:
            clock.advance(1.5)
            return remaining()

        assert await Timeout(5, clock=clock).acall(reads) == 3.5
        assert remaining() is None

    async def test_event(self) -> None:
        events: list[Event] = []
        clock = FakeClock()

        async def hangs() -> None:
            clock.advance(1)
            await asyncio.Event().wait()

        timeout = Timeout(1, name="db", clock=clock, listeners=(events.append,))
        with pytest.raises(CallTimeoutError):
            await timeout.acall(hangs)

        assert events == [
            CallTimedOut(source="db", pipeline=None, timeout=1.0, mode="cancelled")
        ]


class TestThreadMode:
    def test_returns_the_value_and_raises_the_callees_error(self) -> None:
        error = KeyError("x")
        timeout = Timeout(5, clock=FakeClock())

        def raises() -> None:
            raise error

        assert timeout.call(lambda a, b: a + b, 2, 3) == 5
        with pytest.raises(KeyError) as caught:
            timeout.call(raises)
        assert caught.value is error

    def test_abandons_the_thread_at_the_deadline(self) -> None:
        clock = FakeClock()
        release = threading.Event()
        finished = threading.Event()

        def slow() -> str:
            clock.advance(5)
            release.wait()
            finished.set()
            return "late"

        with pytest.raises(CallTimeoutError, match="keeps running") as caught:
            Timeout(5, clock=clock).call(slow)

        assert caught.value.timeout == 5.0
        assert not finished.is_set()  # the worker is still running
        release.set()
        assert finished.wait(5)

    def test_remaining_is_seen_in_the_worker(self) -> None:
        clock = FakeClock()

        def reads() -> float | None:
            clock.advance(0.25)
            return remaining()

        assert Timeout(1, clock=clock).call(reads) == 0.75

    def test_real_clock(self) -> None:
        release = threading.Event()
        try:
            with pytest.raises(CallTimeoutError):
                Timeout(0.001).call(release.wait)
        finally:
            release.set()


class TestCooperativeMode:
    def test_runs_inline_with_a_readable_deadline(self) -> None:
        clock = FakeClock()

        def reads() -> tuple[str, float | None]:
            clock.advance(1)
            return threading.current_thread().name, remaining()

        name, left = Timeout(3, mode="cooperative", clock=clock).call(reads)

        assert name == threading.current_thread().name
        assert left == 2.0

    def test_late_result_is_discarded(self) -> None:
        clock = FakeClock()

        def late() -> str:
            clock.advance(3.5)
            return "late"

        with pytest.raises(CallTimeoutError, match="discarded"):
            Timeout(3, mode="cooperative", clock=clock).call(late)

    def test_result_exactly_at_the_deadline_counts(self) -> None:
        clock = FakeClock()

        def just_in_time() -> str:
            clock.advance(3)
            return "ok"

        assert Timeout(3, mode="cooperative", clock=clock).call(just_in_time) == "ok"

    def test_nested_deadlines_keep_the_tightest(self) -> None:
        clock = FakeClock()
        outer = Timeout(2, mode="cooperative", clock=clock)
        inner = Timeout(10, mode="cooperative", clock=clock)

        assert outer.call(inner.call, remaining) == 2.0
        assert inner.call(outer.call, remaining) == 2.0


class TestDecorator:
    def test_sync(self) -> None:
        @Timeout(1, mode="cooperative", clock=FakeClock())
        def double(x: int) -> int:
            return 2 * x

        assert double(4) == 8
        assert double.__name__ == "double"

    async def test_async(self) -> None:
        @Timeout(1, clock=FakeClock())
        async def double(x: int) -> int:
            return 2 * x

        assert await double(4) == 8


def test_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="seconds"):
        Timeout(0)
    with pytest.raises(ConfigurationError, match="mode"):
        Timeout(1, mode="kill")  # type: ignore[arg-type]
