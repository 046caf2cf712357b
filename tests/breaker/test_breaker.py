"""
CircuitBreaker on the in-memory store: trip rules, half-open, what counts.
"""

from __future__ import annotations

import pytest

from recovery.errors import CircuitOpenError, ConfigurationError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState
from recovery.policies.windows import CountWindow, TimeWindow
from recovery.testing import FakeClock

from .helpers import BoomError, fail, fail_times, ok, state_of, succeed_times


class TestConsecutiveFailures:
    def test_trips_on_the_threshold_with_the_callers_own_exception(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=3, clock=FakeClock())
        fail_times(breaker, 2)
        assert state_of(breaker) is BreakerState.CLOSED

        with pytest.raises(BoomError):
            breaker.call(fail)

        assert state_of(breaker) is BreakerState.OPEN

    def test_a_success_resets_the_streak(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=3, clock=FakeClock())
        fail_times(breaker, 2)
        breaker.call(ok)
        fail_times(breaker, 2)

        assert state_of(breaker) is BreakerState.CLOSED
        assert breaker.metrics().consecutive_failures == 2

    def test_rejection_carries_name_retry_after_and_last_failure(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "pay", failure_threshold=1, reset_timeout=30, clock=clock
        )
        with pytest.raises(BoomError) as tripped:
            breaker.call(fail)
        clock.advance(12)
        called: list[int] = []

        with pytest.raises(CircuitOpenError) as info:
            breaker.call(called.append, 1)

        assert called == []
        assert info.value.name == "pay"
        assert info.value.retry_after == 18.0
        assert info.value.last_failure is tripped.value

    def test_defaults_to_five_consecutive_failures(self) -> None:
        breaker = CircuitBreaker("t", clock=FakeClock())
        fail_times(breaker, 4)
        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)
        assert state_of(breaker) is BreakerState.OPEN


class TestFailureRate:
    def test_count_window_waits_for_min_calls(self) -> None:
        breaker = CircuitBreaker(
            "t",
            window=CountWindow(10),
            failure_rate=0.5,
            min_calls=4,
            clock=FakeClock(),
        )
        fail_times(breaker, 3)
        assert state_of(breaker) is BreakerState.CLOSED

        breaker.call(ok)  # 4 calls, 3 failed: 0.75 >= 0.5

        assert state_of(breaker) is BreakerState.OPEN

    def test_count_window_forgets_old_failures(self) -> None:
        breaker = CircuitBreaker(
            "t", window=CountWindow(4), failure_rate=0.5, min_calls=4, clock=FakeClock()
        )
        fail_times(breaker, 1)
        succeed_times(breaker, 3)  # 1 of 4 failed
        succeed_times(breaker, 1)  # the failure leaves the window
        fail_times(breaker, 1)  # 1 of 4 again

        assert state_of(breaker) is BreakerState.CLOSED
        assert breaker.metrics().window_failures == 1

    def test_rate_below_threshold_does_not_trip(self) -> None:
        breaker = CircuitBreaker(
            "t",
            window=CountWindow(10),
            failure_rate=0.5,
            min_calls=10,
            clock=FakeClock(),
        )
        succeed_times(breaker, 6)
        fail_times(breaker, 4)  # 4 of 10: 0.4 < 0.5

        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)  # a success leaves, a failure enters: 5 of 10
        assert state_of(breaker) is BreakerState.OPEN

    def test_time_window_drops_failures_older_than_its_span(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=TimeWindow(10, buckets=10),
            failure_rate=0.5,
            min_calls=4,
            clock=clock,
        )
        fail_times(breaker, 3)
        clock.advance(10)
        fail_times(breaker, 1)
        succeed_times(breaker, 2)  # window: 1 failure of 3 calls

        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)  # 2 of 4: trips
        assert state_of(breaker) is BreakerState.OPEN

    def test_window_without_a_failure_threshold_ignores_streaks(self) -> None:
        breaker = CircuitBreaker(
            "t",
            window=CountWindow(100),
            failure_rate=0.9,
            min_calls=50,
            clock=FakeClock(),
        )
        fail_times(breaker, 20)
        assert state_of(breaker) is BreakerState.CLOSED


class TestDeferredSuccesses:
    """Once a CountWindow is full, fast successes skip the lock; nothing changes."""

    def make(self) -> CircuitBreaker:
        return CircuitBreaker(
            "t",
            window=CountWindow(10),
            failure_rate=0.5,
            min_calls=10,
            clock=FakeClock(),
        )

    def test_the_window_still_slides_exactly(self) -> None:
        breaker = self.make()
        succeed_times(breaker, 10)  # full
        succeed_times(breaker, 7)  # counted without the lock
        metrics = breaker.metrics()
        assert (metrics.window_calls, metrics.window_failures) == (10, 0)
        assert metrics.successful_calls == 17

        fail_times(breaker, 4)
        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)  # 5 of the last 10

        assert state_of(breaker) is BreakerState.OPEN

    async def test_async_calls_defer_too(self) -> None:
        breaker = self.make()

        async def aok() -> int:
            return 1

        for _ in range(25):
            await breaker.acall(aok)
        fail_times(breaker, 4)

        metrics = breaker.metrics()
        assert (metrics.window_calls, metrics.window_failures) == (10, 4)
        assert metrics.successful_calls == 25

    def test_time_window_keeps_deferred_successes_in_their_bucket(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=TimeWindow(10, buckets=10),
            failure_rate=0.5,
            min_calls=4,
            clock=clock,
        )
        succeed_times(breaker, 4)  # min_calls reached: deferring from now on
        clock.advance(0.5)
        succeed_times(breaker, 6)  # deferred, all in bucket 0
        clock.advance(0.5)
        fail_times(breaker, 1)  # bucket 1
        assert breaker.metrics().window_calls == 11

        clock.advance(9.0)  # t = 10: bucket 0 leaves, with the deferred six
        assert breaker.metrics().window_calls == 1
        fail_times(breaker, 2)
        assert state_of(breaker) is BreakerState.CLOSED  # 3 calls < min_calls
        fail_times(breaker, 1)

        assert state_of(breaker) is BreakerState.OPEN

    def test_a_new_bucket_takes_the_lock_again(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=TimeWindow(2, buckets=2),
            failure_rate=0.5,
            min_calls=2,
            clock=clock,
        )
        succeed_times(breaker, 2)
        succeed_times(breaker, 3)  # deferred, in bucket 0
        clock.advance(1.0)
        fail_times(breaker, 1)  # bucket 1: 1 failure of 6 calls
        clock.advance(1.0)  # bucket 0 leaves with all five successes

        fail_times(breaker, 1)  # 2 failures of 2 calls

        assert state_of(breaker) is BreakerState.OPEN

    def test_a_reset_drops_them_with_the_window(self) -> None:
        breaker = self.make()
        succeed_times(breaker, 15)
        breaker.reset()

        assert breaker.metrics().window_calls == 0
        succeed_times(breaker, 3)
        assert breaker.metrics().window_calls == 3


class TestSlowCalls:
    def test_slow_call_rate_trips(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=CountWindow(4),
            min_calls=4,
            slow_call=1.0,
            slow_call_rate=0.5,
            clock=clock,
        )

        def slow() -> int:
            clock.advance(1.5)
            return 1

        breaker.call(slow)
        succeed_times(breaker, 2)
        assert state_of(breaker) is BreakerState.CLOSED
        breaker.call(slow)

        assert state_of(breaker) is BreakerState.OPEN
        assert breaker.metrics().slow_calls == 2

    def test_slow_call_alone_trips_only_when_every_call_is_slow(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t", window=CountWindow(3), min_calls=3, slow_call=1.0, clock=clock
        )

        def slow() -> int:
            clock.advance(2)
            return 1

        fail_times(breaker, 3)  # failures alone never trip here
        assert state_of(breaker) is BreakerState.CLOSED
        for _ in range(3):
            breaker.call(slow)
        assert state_of(breaker) is BreakerState.OPEN


class TestOpenDuration:
    def test_grows_on_each_reopen_up_to_the_cap(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            reset_timeout=10,
            reset_timeout_multiplier=2,
            reset_timeout_max=25,
            clock=clock,
        )
        waits = []
        fail_times(breaker, 1)
        for _ in range(4):
            waits.append(breaker.metrics().retry_after)
            clock.advance(waits[-1] or 0)
            fail_times(breaker, 1)  # the trial fails: re-open

        assert waits == [10, 20, 25, 25]

    def test_a_close_restarts_growth(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            reset_timeout=10,
            reset_timeout_multiplier=3,
            clock=clock,
        )
        fail_times(breaker, 1)
        clock.advance(10)
        fail_times(breaker, 1)  # re-open: 30 s
        clock.advance(30)
        breaker.call(ok)  # close
        fail_times(breaker, 1)

        assert breaker.metrics().retry_after == 10


class TestHalfOpen:
    def make(self, clock: FakeClock, calls: int = 2) -> CircuitBreaker:
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            reset_timeout=10,
            half_open_calls=calls,
            half_open_timeout=5,
            clock=clock,
        )
        fail_times(breaker, 1)
        clock.advance(10)
        return breaker

    def test_admits_exactly_half_open_calls_at_once(self) -> None:
        clock = FakeClock()
        breaker = self.make(clock, calls=2)
        breaker.__enter__()
        breaker.__enter__()

        with pytest.raises(CircuitOpenError):
            breaker.call(ok)

        breaker.__exit__(None, None, None)
        breaker.__exit__(None, None, None)
        assert state_of(breaker) is BreakerState.CLOSED

    def test_one_failed_trial_reopens(self) -> None:
        clock = FakeClock()
        breaker = self.make(clock)
        breaker.call(ok)
        fail_times(breaker, 1)

        assert state_of(breaker) is BreakerState.OPEN

    def test_a_lost_trial_gives_its_permit_back_after_the_lease(self) -> None:
        clock = FakeClock()
        breaker = self.make(clock, calls=1)
        breaker.__enter__()  # a trial that never reports back
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(ok)
        assert info.value.retry_after == 5

        clock.advance(5)
        breaker.call(ok)

        assert state_of(breaker) is BreakerState.CLOSED

    def test_late_outcome_of_a_reaped_trial_changes_nothing(self) -> None:
        clock = FakeClock()
        breaker = self.make(clock, calls=1)
        breaker.__enter__()
        clock.advance(5)
        breaker.call(ok)  # a new trial closes the breaker

        breaker.__exit__(BoomError, BoomError("late"), None)

        assert state_of(breaker) is BreakerState.CLOSED
        assert breaker.metrics().failed_calls == 2  # counted, not acted on

    def test_late_failure_from_the_closed_state_does_not_reopen(self) -> None:
        """A call admitted while closed that fails during half-open decides nothing."""
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t", failure_threshold=1, reset_timeout=10, clock=clock
        )
        breaker.__enter__()  # admitted while closed
        fail_times(breaker, 1)
        clock.advance(10)
        assert state_of(breaker) is BreakerState.HALF_OPEN

        breaker.__exit__(BoomError, BoomError("late"), None)

        assert state_of(breaker) is BreakerState.HALF_OPEN
        breaker.call(ok)
        assert state_of(breaker) is BreakerState.CLOSED

    def test_state_reads_half_open_once_the_time_is_up(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t", failure_threshold=1, reset_timeout=10, clock=clock
        )
        fail_times(breaker, 1)
        clock.advance(9.999)
        assert state_of(breaker) is BreakerState.OPEN
        clock.advance(0.001)
        assert state_of(breaker) is BreakerState.HALF_OPEN


class TestWhatCounts:
    def test_failure_on_types_and_other_exceptions_count_as_success(self) -> None:
        breaker = CircuitBreaker(
            "t", failure_threshold=2, failure_on=BoomError, clock=FakeClock()
        )
        fail_times(breaker, 1)
        with pytest.raises(KeyError):
            breaker.call(_raise, KeyError("x"))
        fail_times(breaker, 1)

        assert state_of(breaker) is BreakerState.CLOSED
        assert breaker.metrics().successful_calls == 1

    def test_failure_on_predicate(self) -> None:
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            failure_on=lambda exc: "fatal" in str(exc),
            clock=FakeClock(),
        )
        with pytest.raises(ValueError, match="soft"):
            breaker.call(_raise, ValueError("soft"))
        assert state_of(breaker) is BreakerState.CLOSED
        with pytest.raises(ValueError, match="fatal"):
            breaker.call(_raise, ValueError("fatal"))
        assert state_of(breaker) is BreakerState.OPEN

    def test_ignored_exceptions_count_neither_way(self) -> None:
        breaker = CircuitBreaker(
            "t", failure_threshold=2, ignore=KeyError, clock=FakeClock()
        )
        fail_times(breaker, 1)
        with pytest.raises(KeyError):
            breaker.call(_raise, KeyError("x"))  # does not reset the streak
        fail_times(breaker, 1)

        metrics = breaker.metrics()
        assert state_of(breaker) is BreakerState.OPEN
        assert (metrics.ignored_calls, metrics.total_calls) == (1, 3)

    def test_ignore_predicate_wins_over_failure_on(self) -> None:
        breaker = CircuitBreaker(
            "t",
            failure_threshold=1,
            ignore=lambda exc: isinstance(exc, BoomError),
            clock=FakeClock(),
        )
        fail_times(breaker, 3)
        assert state_of(breaker) is BreakerState.CLOSED

    def test_ignored_trial_gives_back_its_permit_without_deciding(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t", failure_threshold=1, reset_timeout=1, ignore=KeyError, clock=clock
        )
        fail_times(breaker, 1)
        clock.advance(1)
        with pytest.raises(KeyError):
            breaker.call(_raise, KeyError("x"))

        assert state_of(breaker) is BreakerState.HALF_OPEN
        breaker.call(ok)  # the permit is free again
        assert state_of(breaker) is BreakerState.CLOSED

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
    def test_interrupts_count_as_nothing_and_free_the_permit(
        self, exc_type: type[BaseException]
    ) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker("t", failure_threshold=1, reset_timeout=1, clock=clock)
        with pytest.raises(exc_type):
            breaker.call(_raise, exc_type())
        assert breaker.metrics().total_calls == 0

        fail_times(breaker, 1)
        clock.advance(1)
        with pytest.raises(exc_type):
            breaker.call(_raise, exc_type())
        breaker.call(ok)

        assert state_of(breaker) is BreakerState.CLOSED

    def test_failure_on_rejects_base_exceptions(self) -> None:
        with pytest.raises(ConfigurationError, match="failure_on"):
            CircuitBreaker("t", failure_on=KeyboardInterrupt)  # type: ignore[arg-type]


class TestRejectionError:
    @pytest.mark.parametrize("forced", [False, True])
    def test_is_what_the_constructor_would_build(self, forced: bool) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "pay", failure_threshold=1, reset_timeout=7, clock=clock
        )
        with pytest.raises(BoomError):
            breaker.call(fail)
        clock.advance(1.23456)
        if forced:
            breaker.force_open()

        with pytest.raises(CircuitOpenError) as info:
            breaker.call(ok)

        got = info.value
        built = CircuitOpenError(
            "pay", retry_after=got.retry_after, last_failure=got.last_failure
        )
        assert type(got) is CircuitOpenError
        assert (str(got), got.args) == (str(built), built.args)
        assert vars(got) == vars(built)
        assert got.retry_after == (None if forced else pytest.approx(5.76544))


class TestOperatorStates:
    def test_force_open_rejects_everything_until_reset(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker("t", reset_timeout=1, clock=clock)
        breaker.force_open()
        clock.advance(100)

        with pytest.raises(CircuitOpenError) as info:
            breaker.call(ok)
        assert info.value.retry_after is None
        assert state_of(breaker) is BreakerState.FORCED_OPEN

        breaker.reset()
        assert breaker.call(ok) == 42

    def test_disabled_lets_failures_through_without_tripping(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        breaker.disable()
        fail_times(breaker, 5)

        assert state_of(breaker) is BreakerState.DISABLED
        breaker.close()
        assert state_of(breaker) is BreakerState.CLOSED

    def test_reset_clears_the_streak_and_growth(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=2, clock=FakeClock())
        fail_times(breaker, 1)
        breaker.reset()
        fail_times(breaker, 1)
        assert state_of(breaker) is BreakerState.CLOSED


class TestMetrics:
    def test_counts_every_kind_of_call(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t", failure_threshold=3, ignore=KeyError, clock=clock, reset_timeout=5
        )
        succeed_times(breaker, 3)
        with pytest.raises(KeyError):
            breaker.call(_raise, KeyError("k"))
        fail_times(breaker, 3)
        for _ in range(2):
            with pytest.raises(CircuitOpenError):
                breaker.call(ok)

        m = breaker.metrics()
        assert (m.total_calls, m.successful_calls, m.failed_calls) == (7, 3, 3)
        assert (m.ignored_calls, m.rejected_calls, m.times_opened) == (1, 2, 1)
        assert (m.success_rate, m.failure_rate) == (0.5, 0.5)
        assert (m.state, m.since, m.retry_after) == (BreakerState.OPEN, 0.0, 5.0)

    def test_reset_metrics_keeps_the_state(self) -> None:
        breaker = CircuitBreaker("t", failure_threshold=1, clock=FakeClock())
        succeed_times(breaker, 2)
        fail_times(breaker, 1)
        with pytest.raises(CircuitOpenError):
            breaker.call(ok)

        breaker.reset_metrics()

        m = breaker.metrics()
        assert (m.total_calls, m.successful_calls, m.rejected_calls) == (0, 0, 0)
        assert m.success_rate is None
        assert m.state is BreakerState.OPEN


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"reset_timeout": 0}, "reset_timeout"),
            ({"half_open_calls": 0}, "half_open_calls"),
            ({"failure_rate": 0.5}, "window"),
            ({"window": CountWindow(5), "min_calls": 6}, "min_calls"),
            ({"window": CountWindow(5), "failure_rate": 1.5}, "failure_rate"),
            ({"reset_timeout": 10, "reset_timeout_max": 5}, "reset_timeout_max"),
            ({"window": CountWindow(5), "slow_call_rate": 0.5}, "slow_call"),
            ({"sync_interval": 0}, "sync_interval"),
            ({"on_store_error": "panic"}, "on_store_error"),
        ],
    )
    def test_bad_settings_fail_at_construction(
        self, kwargs: dict[str, object], match: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=match):
            CircuitBreaker("t", **kwargs)  # type: ignore[arg-type]

    def test_rejects_an_empty_name(self) -> None:
        with pytest.raises(ConfigurationError, match="name"):
            CircuitBreaker("")


def _raise(exc: BaseException) -> None:
    raise exc
