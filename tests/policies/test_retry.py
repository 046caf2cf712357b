"""
Retry: what is retried, how long it waits, when it stops, and what it reports.

Every timing here runs on the FakeClock: the delays asserted are the ones
the policy asked the clock to sleep, and no test waits for real.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import threading
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery import (
    AttemptFailed,
    ConfigurationError,
    Event,
    GaveUp,
    Recovered,
    Retry,
    RetryOutcome,
    RetryScheduled,
    constant,
    exponential,
    linear,
    retry,
)
from recovery.testing import FakeClock, fast_retries


class Flaky:
    """
    A callable that fails a given number of times, then returns its count.
    """

    def __init__(
        self,
        failures: int,
        error: Callable[[int], Exception] = lambda n: ValueError(f"failure {n}"),
        clock: FakeClock | None = None,
        duration: float = 0.0,
    ) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.clock = clock
        self.duration = duration
        self.raised: list[Exception] = []

    def __call__(self) -> int:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.duration)
        if self.calls <= self.failures:
            exc = self.error(self.calls)
            self.raised.append(exc)
            raise exc
        return self.calls


class AsyncFlaky(Flaky):
    async def __call__(self) -> int:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().__call__()


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


class HintedError(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestRetrying:
    def test_retries_until_success_with_the_scheduled_delays(
        self, clock: FakeClock
    ) -> None:
        flaky = Flaky(3)
        policy = Retry(attempts=5, backoff=exponential(1, 2, 10), clock=clock)

        assert policy.call(flaky) == 4
        assert flaky.calls == 4
        assert clock.sleeps == [1.0, 2.0, 4.0]

    def test_gives_up_with_the_last_exception_itself(self, clock: FakeClock) -> None:
        flaky = Flaky(10)
        policy = Retry(attempts=3, backoff=constant(0.5), clock=clock, name="fetch")

        with pytest.raises(ValueError, match="failure 3") as info:
            policy.call(flaky)

        assert info.value is flaky.raised[-1]
        assert info.value.__notes__ == [
            "recovery: 'fetch' gave up after 3 attempts over 1.000 s "
            "(attempt limit of 3 reached)"
        ]
        assert clock.sleeps == [0.5, 0.5]

    def test_the_traceback_reaches_the_failing_line(self, clock: FakeClock) -> None:
        def broken() -> None:
            raise KeyError("deep")

        with pytest.raises(KeyError) as info:
            Retry(attempts=2, backoff=constant(0), clock=clock).call(broken)

        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert frames[-1] == "broken"
        assert info.value.__context__ is None
        assert info.value.__cause__ is None

    def test_other_exceptions_propagate_at_once(self, clock: FakeClock) -> None:
        flaky = Flaky(5, error=KeyError)
        policy = Retry(on=ValueError, attempts=5, clock=clock)

        with pytest.raises(KeyError):
            policy.call(flaky)

        assert flaky.calls == 1
        assert clock.sleeps == []

    def test_a_predicate_chooses_what_to_retry(self, clock: FakeClock) -> None:
        flaky = Flaky(5, error=lambda n: ValueError("transient" if n < 3 else "fatal"))
        policy = Retry(
            on=lambda exc: "transient" in str(exc),
            attempts=10,
            backoff=constant(1),
            clock=clock,
        )

        with pytest.raises(ValueError, match="fatal"):
            policy.call(flaky)

        assert flaky.calls == 3

    def test_results_can_be_retried(self, clock: FakeClock) -> None:
        answers = iter([None, None, "ok"])
        policy = Retry(
            retry_if_result=lambda value: value is None,
            backoff=constant(2),
            clock=clock,
        )

        assert policy.call(lambda: next(answers)) == "ok"
        assert clock.sleeps == [2.0, 2.0]

    def test_the_last_result_is_returned_when_retrying_stops(
        self, clock: FakeClock
    ) -> None:
        answers = iter([1, 2, 3, 4])
        policy = Retry(
            retry_if_result=lambda value: value < 10,
            attempts=3,
            backoff=constant(0),
            clock=clock,
        )

        assert policy.call(lambda: next(answers)) == 3

    @pytest.mark.parametrize(
        "error", [KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit]
    )
    def test_base_exceptions_are_never_retried(
        self, clock: FakeClock, error: type[BaseException]
    ) -> None:
        calls = []

        def interrupted() -> None:
            calls.append(1)
            raise error

        with pytest.raises(error):
            Retry(on=lambda exc: True, attempts=5, clock=clock).call(interrupted)

        assert calls == [1]

    def test_arguments_are_passed_through(self, clock: FakeClock) -> None:
        def add(a: int, b: int, *, c: int) -> int:
            return a + b + c

        assert Retry(clock=clock).call(add, 1, 2, c=3) == 6


class TestDeadline:
    def test_no_sleep_ends_past_the_deadline(self, clock: FakeClock) -> None:
        """
        Attempts take 1 s each and the wait is 2 s: the first attempt ends at
        1, the second runs 3..4, and a sleep to 6 would cross the deadline 5.
        """
        flaky = Flaky(10, clock=clock, duration=1.0)
        policy = Retry(attempts=None, deadline=5, backoff=constant(2), clock=clock)

        with pytest.raises(ValueError) as info:
            policy.call(flaky)

        assert flaky.calls == 2
        assert clock.sleeps == [2.0]
        assert clock.now() == 4.0
        assert "deadline of 5 s would be exceeded" in info.value.__notes__[0]
        assert "over 4.000 s" in info.value.__notes__[0]

    def test_attempt_at_deadline_shortens_the_last_sleep(
        self, clock: FakeClock
    ) -> None:
        flaky = Flaky(10, clock=clock, duration=1.0)
        policy = Retry(
            attempts=None,
            deadline=5,
            backoff=constant(2),
            attempt_at_deadline=True,
            clock=clock,
        )

        with pytest.raises(ValueError):
            policy.call(flaky)

        assert flaky.calls == 3
        assert clock.sleeps == [2.0, 1.0]

    def test_the_deadline_counts_from_the_first_attempt(self, clock: FakeClock) -> None:
        flaky = Flaky(1, clock=clock, duration=3.0)
        policy = Retry(deadline=4, backoff=constant(1.5), clock=clock)

        with pytest.raises(ValueError):
            policy.call(flaky)

        assert flaky.calls == 1
        assert clock.sleeps == []


class TestServerHints:
    def test_a_hint_replaces_the_computed_delay(self, clock: FakeClock) -> None:
        flaky = Flaky(2, error=lambda n: HintedError(3.5))
        policy = Retry(backoff=constant(1, jitter="full"), max_hint=10, clock=clock)

        policy.call(flaky)

        assert clock.sleeps == [3.5, 3.5]

    def test_http_dates_count_from_the_clock(self, clock: FakeClock) -> None:
        when = email.utils.formatdate(clock.time() + 7, usegmt=True)
        flaky = Flaky(1, error=lambda n: HintedError(when))
        policy = Retry(backoff=constant(1), max_hint=30, clock=clock)

        policy.call(flaky)

        assert clock.sleeps == [7.0]

    @pytest.mark.parametrize(
        "hint", [-1, "soon", "Wed, 21 Oct 2015 07:28:00 GMT", float("nan"), True]
    )
    def test_invalid_or_past_hints_are_ignored(
        self, clock: FakeClock, hint: object
    ) -> None:
        flaky = Flaky(1, error=lambda n: HintedError(hint))
        policy = Retry(backoff=constant(0.25), clock=clock)

        policy.call(flaky)

        assert clock.sleeps == [0.25]

    def test_long_hints_are_capped(self, clock: FakeClock) -> None:
        flaky = Flaky(1, error=lambda n: HintedError("120"))
        policy = Retry(backoff=exponential(1, 2, cap=8), clock=clock)

        policy.call(flaky)

        assert clock.sleeps == [8.0]

    def test_long_hints_can_end_the_call(self, clock: FakeClock) -> None:
        flaky = Flaky(1, error=lambda n: HintedError(120))
        policy = Retry(max_hint=60, on_long_hint="give_up", clock=clock)

        with pytest.raises(HintedError) as info:
            policy.call(flaky)

        assert flaky.calls == 1
        assert "over max_hint" in info.value.__notes__[0]

    def test_a_hint_never_crosses_the_deadline(self, clock: FakeClock) -> None:
        flaky = Flaky(1, error=lambda n: HintedError(9))
        policy = Retry(deadline=5, max_hint=60, clock=clock)

        with pytest.raises(HintedError):
            policy.call(flaky)

        assert clock.sleeps == []


class TestStatistics:
    def test_each_call_gets_its_own_record(self, clock: FakeClock) -> None:
        policy = Retry(attempts=5, backoff=linear(1, 1, 10), clock=clock)

        first, stats1 = policy.call_with_statistics(Flaky(2))
        second, stats2 = policy.call_with_statistics(Flaky(0))

        assert (first, second) == (3, 1)
        assert stats1 is not stats2
        assert (stats1.attempts, stats1.waited, stats1.delays) == (3, 3.0, [1.0, 2.0])
        assert stats1.outcome is RetryOutcome.SUCCEEDED
        assert (stats2.attempts, stats2.waited, stats2.delays) == (1, 0.0, [])

    def test_concurrent_calls_never_share_a_record(self) -> None:
        """
        Threads with different failure counts each see exactly their own.
        """
        clock = FakeClock()
        policy = Retry(attempts=10, backoff=constant(0.5), clock=clock)
        results: dict[int, tuple[int, float]] = {}
        barrier = threading.Barrier(8)

        def worker(failures: int) -> None:
            flaky = Flaky(failures)
            barrier.wait()
            _, stats = policy.call_with_statistics(flaky)
            results[failures] = (stats.attempts, stats.waited)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert results == {n: (n + 1, 0.5 * n) for n in range(8)}

    async def test_async_calls_keep_their_own_records(self) -> None:
        clock = FakeClock()
        policy = Retry(attempts=10, backoff=constant(1), clock=clock)

        outcomes = await asyncio.gather(
            *(policy.acall_with_statistics(AsyncFlaky(n)) for n in range(5))
        )

        assert [(s.attempts, s.waited) for _, s in outcomes] == [
            (n + 1, float(n)) for n in range(5)
        ]


class TestEvents:
    def test_events_tell_the_story_of_a_call(self, clock: FakeClock) -> None:
        recorder = Recorder()
        policy = Retry(
            attempts=5,
            backoff=constant(2),
            clock=clock,
            name="fetch",
            listeners=[recorder],
        )

        policy.call(Flaky(2))

        kinds = [type(e).__name__ for e in recorder.events]
        assert kinds == [
            "AttemptFailed",
            "RetryScheduled",
            "AttemptFailed",
            "RetryScheduled",
            "Recovered",
        ]
        scheduled = typing.cast(list[RetryScheduled], recorder.of(RetryScheduled))
        assert [(e.attempt, e.delay, e.error) for e in scheduled] == [
            (1, 2.0, "ValueError"),
            (2, 2.0, "ValueError"),
        ]
        (recovered,) = typing.cast(list[Recovered], recorder.of(Recovered))
        assert (recovered.attempts, recovered.waited, recovered.source) == (
            3,
            4.0,
            "fetch",
        )

    def test_no_delay_is_announced_after_the_last_attempt(
        self, clock: FakeClock
    ) -> None:
        recorder = Recorder()
        policy = Retry(
            attempts=2, backoff=constant(1), clock=clock, listeners=[recorder]
        )

        with pytest.raises(ValueError):
            policy.call(Flaky(5))

        assert len(recorder.of(RetryScheduled)) == 1
        assert len(recorder.of(AttemptFailed)) == 2
        (gave_up,) = typing.cast(list[GaveUp], recorder.of(GaveUp))
        assert (gave_up.attempts, gave_up.reason) == (2, "attempt limit of 2 reached")

    def test_announced_delays_are_the_slept_delays(self) -> None:
        clock = FakeClock()
        recorder = Recorder()
        policy = Retry(
            attempts=6,
            backoff=exponential(0.1, 3, 2, jitter="decorrelated"),
            clock=clock,
            listeners=[recorder],
        )

        policy.call(Flaky(5))

        announced = [e.delay for e in recorder.of(RetryScheduled)]  # type: ignore[attr-defined]
        assert announced == clock.sleeps
        assert len(announced) == 5

    def test_logs_never_contain_call_arguments(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        def login(password: str) -> None:
            raise ConnectionError("refused")

        caplog.set_level(logging.DEBUG, logger="recovery")
        with pytest.raises(ConnectionError):
            Retry(attempts=3, backoff=constant(1), clock=clock).call(login, "hunter2")

        assert caplog.records
        for record in caplog.records:
            assert "hunter2" not in record.getMessage()
            assert "hunter2" not in repr(record.__dict__)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.recovery_event for r in warnings] == [  # type: ignore[attr-defined]
            "retry_scheduled",
            "retry_scheduled",
            "gave_up",
        ]

    @pytest.mark.parametrize(
        ("level", "expected"),
        [
            (logging.DEBUG, ["attempt_failed", "retry_scheduled", "recovered"]),
            (logging.INFO, ["retry_scheduled", "recovered"]),
            (logging.WARNING, ["retry_scheduled"]),
            (logging.ERROR, []),
        ],
    )
    def test_each_log_level_gets_exactly_its_events(
        self,
        clock: FakeClock,
        caplog: pytest.LogCaptureFixture,
        level: int,
        expected: list[str],
    ) -> None:
        caplog.set_level(level, logger="recovery")

        Retry(attempts=3, backoff=constant(1), clock=clock).call(Flaky(1))

        kinds = [r.recovery_event for r in caplog.records]  # type: ignore[attr-defined]
        assert kinds == expected

    def test_a_failing_listener_does_not_break_the_call(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        policy = Retry(backoff=constant(0), clock=clock, listeners=[broken])

        assert policy.call(Flaky(1)) == 2
        assert any("listener bug" in (r.exc_text or "") for r in caplog.records)


class TestTestingSwitch:
    def test_fast_retries_makes_waits_zero(self, clock: FakeClock) -> None:
        policy = Retry(attempts=4, backoff=constant(30), clock=clock)

        with fast_retries():
            assert policy.call(Flaky(3)) == 4

        assert clock.sleeps == []
        assert clock.now() == 0.0

    def test_fast_retries_caps_attempts(self, clock: FakeClock) -> None:
        flaky = Flaky(10)
        policy = Retry(attempts=5, clock=clock)

        with fast_retries(attempts=2), pytest.raises(ValueError):
            policy.call(flaky)

        assert flaky.calls == 2

    def test_a_cap_never_raises_a_policys_own_limit(self, clock: FakeClock) -> None:
        flaky = Flaky(10)

        with fast_retries(attempts=9), pytest.raises(ValueError):
            Retry(attempts=3, clock=clock).call(flaky)

        assert flaky.calls == 3

    def test_switched_off_a_succeeding_block_runs_once(self, clock: FakeClock) -> None:
        runs = 0

        with fast_retries(attempts=1):
            for attempt in Retry(attempts=5, clock=clock):
                with attempt:
                    runs += 1

        assert runs == 1

    def test_the_switch_is_restored(self, clock: FakeClock) -> None:
        with fast_retries():
            pass

        Retry(attempts=2, backoff=constant(3), clock=clock).call(Flaky(1))
        assert clock.sleeps == [3.0]


class TestDecorator:
    def test_keeps_name_doc_signature_and_hints(self, clock: FakeClock) -> None:
        def fetch(url: str, *, timeout: float = 1.0) -> bytes:
            """Fetch a URL."""
            return url.encode()

        wrapped = retry(clock=clock)(fetch)

        assert wrapped.__name__ == "fetch"
        assert wrapped.__doc__ == "Fetch a URL."
        assert wrapped.__wrapped__ is fetch  # type: ignore[attr-defined]
        assert inspect.signature(wrapped) == inspect.signature(fetch)
        assert typing.get_type_hints(wrapped) == typing.get_type_hints(fetch)
        assert wrapped("a") == b"a"

    def test_bare_decorator(self) -> None:
        @retry
        def answer() -> int:
            return 42

        assert answer() == 42

    def test_coroutine_functions_stay_coroutine_functions(self) -> None:
        @retry(clock=FakeClock())
        async def fetch() -> int:
            return 1

        assert inspect.iscoroutinefunction(fetch)
        assert asyncio.run(fetch()) == 1

    def test_methods_bind_self(self, clock: FakeClock) -> None:
        class Client:
            def __init__(self) -> None:
                self.calls = 0

            @retry(attempts=3, backoff=constant(1), clock=clock)
            def get(self, key: str) -> str:
                self.calls += 1
                if self.calls < 2:
                    raise OSError
                return key * 2

        client = Client()

        assert client.get("ab") == "abab"
        assert client.calls == 2

    def test_the_event_name_is_the_function_name(self, clock: FakeClock) -> None:
        recorder = Recorder()

        @retry(backoff=constant(0), clock=clock, listeners=[recorder])
        def sync_orders() -> None:
            raise ValueError

        with pytest.raises(ValueError):
            sync_orders()

        assert recorder.events[0].source.endswith("sync_orders")

    def test_generator_functions_are_refused(self) -> None:
        def numbers() -> typing.Iterator[int]:
            yield 1

        async def anumbers() -> typing.AsyncIterator[int]:
            yield 1

        with pytest.raises(TypeError, match="generator function"):
            retry(numbers)
        with pytest.raises(TypeError, match="generator function"):
            retry(anumbers)

    def test_a_policy_is_a_decorator(self, clock: FakeClock) -> None:
        policy = Retry(attempts=3, backoff=constant(1), clock=clock)
        flaky = Flaky(2)

        wrapped = policy(flaky)

        assert wrapped() == 3

    def test_decorated_calls_with_a_deadline(self, clock: FakeClock) -> None:
        flaky = Flaky(10, clock=clock, duration=1.0)
        wrapped = retry(attempts=None, deadline=3, backoff=constant(1), clock=clock)(
            flaky
        )

        with pytest.raises(ValueError):
            wrapped()

        assert flaky.calls == 2


class TestBlockForm:
    def test_retries_the_block(self, clock: FakeClock) -> None:
        flaky = Flaky(2)
        policy = Retry(attempts=5, backoff=constant(1.5), clock=clock)

        for attempt in policy:
            with attempt:
                value = flaky()

        assert value == 3
        assert attempt.number == 3
        assert attempt.statistics.waited == 3.0
        assert clock.sleeps == [1.5, 1.5]

    def test_gives_up_with_the_blocks_exception(self, clock: FakeClock) -> None:
        flaky = Flaky(9)

        with pytest.raises(ValueError, match="failure 2") as info:
            for attempt in Retry(attempts=2, backoff=constant(0), clock=clock):
                with attempt:
                    flaky()

        assert "gave up after 2 attempts" in info.value.__notes__[0]

    def test_non_retryable_errors_leave_at_once(self, clock: FakeClock) -> None:
        runs = 0

        with pytest.raises(KeyError):
            for attempt in Retry(on=ValueError, attempts=5, clock=clock):
                with attempt:
                    runs += 1
                    raise KeyError

        assert runs == 1

    async def test_async_for(self) -> None:
        clock = FakeClock()
        flaky = AsyncFlaky(3)

        async for attempt in Retry(attempts=5, backoff=constant(2), clock=clock):
            with attempt:
                value = await flaky()

        assert value == 4
        assert clock.sleeps == [2.0, 2.0, 2.0]


SCENARIOS = [
    # (failures, attempts, deadline, expected calls, expected sleeps, succeeds)
    (0, 3, None, 1, [], True),
    (2, 3, None, 3, [1.0, 2.0], True),
    (5, 3, None, 3, [1.0, 2.0], False),
    (5, None, 4.0, 3, [1.0, 2.0], False),
    (1, 1, None, 1, [], False),
]


class TestShellsAgree:
    """
    One scenario table through the sync and async shells.
    """

    @pytest.mark.parametrize(
        ("failures", "attempts", "deadline", "calls", "sleeps", "succeeds"),
        SCENARIOS,
    )
    def test_sync(
        self,
        failures: int,
        attempts: int | None,
        deadline: float | None,
        calls: int,
        sleeps: list[float],
        succeeds: bool,
    ) -> None:
        clock = FakeClock()
        flaky = Flaky(failures)
        policy = Retry(
            attempts=attempts,
            deadline=deadline,
            backoff=exponential(1, 2, 8),
            clock=clock,
        )

        if succeeds:
            assert policy.call(flaky) == calls
        else:
            with pytest.raises(ValueError):
                policy.call(flaky)

        assert (flaky.calls, clock.sleeps) == (calls, sleeps)

    @pytest.mark.parametrize(
        ("failures", "attempts", "deadline", "calls", "sleeps", "succeeds"),
        SCENARIOS,
    )
    async def test_async(
        self,
        failures: int,
        attempts: int | None,
        deadline: float | None,
        calls: int,
        sleeps: list[float],
        succeeds: bool,
    ) -> None:
        clock = FakeClock()
        flaky = AsyncFlaky(failures)
        policy = Retry(
            attempts=attempts,
            deadline=deadline,
            backoff=exponential(1, 2, 8),
            clock=clock,
        )

        if succeeds:
            assert await policy.acall(flaky) == calls
        else:
            with pytest.raises(ValueError):
                await policy.acall(flaky)

        assert (flaky.calls, clock.sleeps) == (calls, sleeps)


@given(failures=st.integers(0, 30), attempts=st.integers(1, 30))
def test_attempts_made_follow_the_limit(failures: int, attempts: int) -> None:
    clock = FakeClock()
    flaky = Flaky(failures)
    policy = Retry(attempts=attempts, backoff=constant(1), clock=clock)

    try:
        policy.call(flaky)
        succeeded = True
    except ValueError:
        succeeded = False

    assert flaky.calls == min(failures + 1, attempts)
    assert succeeded == (failures < attempts)
    assert clock.sleeps == [1.0] * (flaky.calls - 1)


class TestConcurrency:
    def test_one_policy_serves_many_threads(self) -> None:
        clock = FakeClock()
        policy = Retry(attempts=4, backoff=constant(0.1), clock=clock)
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for n in range(200):
                    assert policy.call(Flaky(n % 4)) == n % 4 + 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(clock.sleeps) == 8 * sum(n % 4 for n in range(200))

    async def test_one_policy_serves_many_tasks(self) -> None:
        clock = FakeClock()
        policy = Retry(attempts=4, backoff=constant(0.1), clock=clock)

        results = await asyncio.gather(
            *(policy.acall(AsyncFlaky(n % 4)) for n in range(100))
        )

        assert results == [n % 4 + 1 for n in range(100)]


class TestBadSettings:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"attempts": 0}, "attempts"),
            ({"attempts": 2.5}, "attempts"),
            ({"deadline": -1}, "deadline"),
            ({"on": KeyboardInterrupt}, "on"),
            ({"on": (ValueError, "x")}, "on"),
            ({"on": 42}, "on"),
            ({"max_hint": -3}, "max_hint"),
            ({"on_long_hint": "wait"}, "on_long_hint"),
            ({"backoff": 1.0}, "backoff"),
            ({"retry_if_result": 3}, "retry_if_result"),
        ],
    )
    def test_fail_at_construction_naming_the_parameter(
        self, kwargs: dict[str, object], name: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=name):
            Retry(**kwargs)  # type: ignore[arg-type]
