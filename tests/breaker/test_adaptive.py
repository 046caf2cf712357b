"""
The adaptive threshold: a baseline learned from past samples, floor and ceiling.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.errors import ConfigurationError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_adaptive import AdaptiveThreshold
from recovery.policies.breaker_core import BreakerState
from recovery.policies.windows import CountWindow, TimeWindow
from recovery.testing import FakeClock

from .helpers import fail_times, state_of, succeed_times


def adaptive_breaker(clock: FakeClock, **kwargs: float) -> CircuitBreaker:
    return CircuitBreaker(
        "t",
        window=CountWindow(10),
        min_calls=10,
        adaptive=AdaptiveThreshold(**kwargs),
        reset_timeout=1,
        clock=clock,
    )


class TestThreshold:
    def test_is_the_ceiling_before_anything_is_learned(self) -> None:
        assert AdaptiveThreshold(ceiling=0.6).threshold(None) == 0.6

    @given(st.floats(0, 1))
    def test_stays_between_floor_and_ceiling(self, baseline: float) -> None:
        rule = AdaptiveThreshold(factor=4, floor=0.05, ceiling=0.7)
        assert 0.05 <= rule.threshold(baseline) <= 0.7

    def test_learns_an_exponential_moving_average(self) -> None:
        rule = AdaptiveThreshold(smoothing=0.25)
        baseline = rule.learn(None, 0.2)
        assert baseline == 0.2
        assert rule.learn(baseline, 0.6) == pytest.approx(0.3)

    def test_floor_above_ceiling_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="floor"):
            AdaptiveThreshold(floor=0.6, ceiling=0.5)

    def test_needs_a_window(self) -> None:
        with pytest.raises(ConfigurationError, match="window"):
            CircuitBreaker("t", adaptive=AdaptiveThreshold())


class TestBreaker:
    def test_trips_at_three_times_a_learned_low_baseline(self) -> None:
        """Baseline 0.1 gives threshold 0.3, where a fixed 0.5 would hold."""
        breaker = adaptive_breaker(FakeClock(), factor=3, floor=0.1, ceiling=0.5)
        fail_times(breaker, 1)
        succeed_times(breaker, 9)  # sample 1: rate 0.1
        assert breaker.metrics().baseline_failure_rate == 0.1

        fail_times(breaker, 2)  # window: 2 of 10
        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)  # 3 of 10 = 0.3

        assert state_of(breaker) is BreakerState.OPEN

    def test_a_noisy_dependency_is_held_to_the_ceiling(self) -> None:
        breaker = adaptive_breaker(FakeClock(), factor=3, floor=0.1, ceiling=0.5)
        for _ in range(3):
            succeed_times(breaker, 6)
            fail_times(breaker, 4)
        assert breaker.metrics().baseline_failure_rate == pytest.approx(0.4)

        fail_times(breaker, 1)  # a success leaves, a failure enters: 5 of 10

        assert state_of(breaker) is BreakerState.OPEN

    def test_an_outage_does_not_raise_the_baseline(self) -> None:
        clock = FakeClock()
        breaker = adaptive_breaker(clock, factor=3, floor=0.2, ceiling=0.5)
        succeed_times(breaker, 10)  # baseline 0.0: threshold = floor = 0.2
        fail_times(breaker, 1)
        succeed_times(breaker, 9)  # second sample: rate 0.1, baseline 0.02
        fail_times(breaker, 1)
        succeed_times(breaker, 4)
        fail_times(breaker, 1)  # 2 of 10 trips; this sample is discarded
        assert state_of(breaker) is BreakerState.OPEN
        clock.advance(1)
        succeed_times(breaker, 1)  # trial closes

        assert state_of(breaker) is BreakerState.CLOSED
        assert breaker.metrics().baseline_failure_rate == pytest.approx(0.02)

    def test_time_samples_end_after_the_window_span(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=TimeWindow(10),
            min_calls=4,
            adaptive=AdaptiveThreshold(),
            clock=clock,
        )
        fail_times(breaker, 1)
        succeed_times(breaker, 3)
        assert breaker.metrics().baseline_failure_rate is None

        clock.advance(10)
        succeed_times(breaker, 1)  # ends the first sample: 1 of 4

        assert breaker.metrics().baseline_failure_rate == 0.25

    def test_small_samples_teach_nothing(self) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "t",
            window=TimeWindow(10),
            min_calls=5,
            adaptive=AdaptiveThreshold(),
            clock=clock,
        )
        fail_times(breaker, 2)
        clock.advance(10)
        succeed_times(breaker, 1)

        assert breaker.metrics().baseline_failure_rate is None
