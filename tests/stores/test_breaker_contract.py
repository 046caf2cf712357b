"""
The breaker store contract: the same transitions on memory, SQLite and Redis.

Every test drives the store's whole-transition operations directly and
checks the exact answers the rules give; `CircuitBreaker` tests on top of
the stores are in test_shared_breaker.py.
"""

from __future__ import annotations

import threading

import pytest

from recovery.policies.breaker_adaptive import AdaptiveThreshold
from recovery.policies.breaker_core import (
    AdmissionKind,
    BreakerConfig,
    BreakerState,
    Outcome,
    StateView,
)
from recovery.policies.windows import CountWindow, TimeWindow

from .conftest import StoreCase

NAME = "payments"
CONSECUTIVE = BreakerConfig(
    failure_threshold=3,
    reset_timeout=10,
    reset_timeout_multiplier=2,
    reset_timeout_max=30,
    half_open_calls=2,
    half_open_timeout=4,
)


def record(
    case: StoreCase,
    outcome: Outcome,
    *,
    config: BreakerConfig = CONSECUTIVE,
    generation: int = 0,
    permit: str | None = None,
    duration: float = 0.0,
) -> StateView:
    return case.store.record(NAME, config, generation, permit, outcome, duration)


def trip(case: StoreCase, config: BreakerConfig = CONSECUTIVE) -> StateView:
    view = record(case, Outcome.FAILURE, config=config)
    while view.state is BreakerState.CLOSED:
        view = record(case, Outcome.FAILURE, config=config)
    return view


class TestClosed:
    def test_a_new_breaker_allows_calls(self, breaker_store: StoreCase) -> None:
        admission = breaker_store.store.acquire(NAME, CONSECUTIVE, "p1")

        assert (admission.kind, admission.state, admission.generation) == (
            AdmissionKind.ALLOW,
            BreakerState.CLOSED,
            0,
        )
        assert breaker_store.store.metrics("never-used") is None

    def test_trips_on_consecutive_failures(self, breaker_store: StoreCase) -> None:
        record(breaker_store, Outcome.FAILURE)
        record(breaker_store, Outcome.FAILURE)
        record(breaker_store, Outcome.SUCCESS)
        record(breaker_store, Outcome.FAILURE)
        record(breaker_store, Outcome.FAILURE)
        view = record(breaker_store, Outcome.FAILURE)

        assert (view.state, view.generation) == (BreakerState.OPEN, 1)
        assert view.retry_after == pytest.approx(10, abs=1e-3)
        assert view.transition is not None
        assert (view.transition.previous, view.transition.state) == (
            BreakerState.CLOSED,
            BreakerState.OPEN,
        )
        assert view.transition.reason == "3 consecutive failures"

    def test_ignored_and_cancelled_do_not_break_a_streak(
        self, breaker_store: StoreCase
    ) -> None:
        record(breaker_store, Outcome.FAILURE)
        record(breaker_store, Outcome.IGNORED)
        record(breaker_store, Outcome.FAILURE)
        record(breaker_store, Outcome.CANCELLED)
        view = record(breaker_store, Outcome.FAILURE)

        assert view.state is BreakerState.OPEN

    def test_outcomes_of_an_old_generation_decide_nothing(
        self, breaker_store: StoreCase
    ) -> None:
        trip(breaker_store)
        breaker_store.store.force(NAME, CONSECUTIVE, BreakerState.CLOSED)  # gen 2
        for _ in range(5):
            view = record(breaker_store, Outcome.FAILURE, generation=0)

        assert (view.state, view.generation) == (BreakerState.CLOSED, 2)
        metrics = breaker_store.store.metrics(NAME, CONSECUTIVE)
        assert metrics is not None
        assert metrics.failed_calls == 8  # counted all the same


class TestOpen:
    def test_rejects_until_the_open_duration_passes(
        self, breaker_store: StoreCase
    ) -> None:
        trip(breaker_store)
        breaker_store.clock.advance(4)

        admission = breaker_store.store.acquire(NAME, CONSECUTIVE, "p1")

        assert admission.kind is AdmissionKind.REJECT
        assert admission.retry_after == pytest.approx(6, abs=1e-3)

        breaker_store.clock.advance(6)
        admission = breaker_store.store.acquire(NAME, CONSECUTIVE, "p2")

        assert (admission.kind, admission.state) == (
            AdmissionKind.TRIAL,
            BreakerState.HALF_OPEN,
        )
        assert (admission.generation, admission.permit) == (2, "p2")
        assert admission.transition is not None
        assert admission.transition.state is BreakerState.HALF_OPEN

    def test_open_duration_grows_to_its_cap_and_resets_on_close(
        self, breaker_store: StoreCase
    ) -> None:
        store, clock = breaker_store.store, breaker_store.clock
        view = trip(breaker_store)
        waits = []
        for n in range(3):
            waits.append(view.retry_after)
            clock.advance(view.retry_after or 0)
            admission = store.acquire(NAME, CONSECUTIVE, f"p{n}")
            view = store.record(
                NAME, CONSECUTIVE, admission.generation, f"p{n}", Outcome.FAILURE, 0
            )

        assert waits == [pytest.approx(w, abs=1e-3) for w in (10, 20, 30)]

    def test_rejections_are_counted(self, breaker_store: StoreCase) -> None:
        trip(breaker_store)
        breaker_store.store.acquire(NAME, CONSECUTIVE, "p1")
        breaker_store.store.acquire(NAME, CONSECUTIVE, "p2", rejected=5)

        metrics = breaker_store.store.metrics(NAME, CONSECUTIVE)

        assert metrics is not None
        assert (metrics.rejected_calls, metrics.times_opened) == (7, 1)


class TestHalfOpen:
    def half_open(self, case: StoreCase) -> int:
        trip(case)
        case.clock.advance(10)
        return case.store.acquire(NAME, CONSECUTIVE, "first").generation

    def test_hands_out_at_most_half_open_calls_permits(
        self, breaker_store: StoreCase
    ) -> None:
        self.half_open(breaker_store)
        second = breaker_store.store.acquire(NAME, CONSECUTIVE, "second")
        third = breaker_store.store.acquire(NAME, CONSECUTIVE, "third")

        assert second.kind is AdmissionKind.TRIAL
        assert third.kind is AdmissionKind.REJECT
        assert third.retry_after == pytest.approx(4, abs=1e-3)

    def test_enough_successes_close(self, breaker_store: StoreCase) -> None:
        generation = self.half_open(breaker_store)
        breaker_store.store.acquire(NAME, CONSECUTIVE, "second")
        first = record(
            breaker_store, Outcome.SUCCESS, generation=generation, permit="first"
        )
        assert first.state is BreakerState.HALF_OPEN

        view = record(
            breaker_store, Outcome.SUCCESS, generation=generation, permit="second"
        )

        assert (view.state, view.generation) == (BreakerState.CLOSED, generation + 1)
        assert view.transition is not None
        assert view.transition.reason == "trial calls succeeded"

    def test_a_failed_trial_reopens_longer(self, breaker_store: StoreCase) -> None:
        generation = self.half_open(breaker_store)
        view = record(
            breaker_store, Outcome.FAILURE, generation=generation, permit="first"
        )

        assert view.state is BreakerState.OPEN
        assert view.retry_after == pytest.approx(20, abs=1e-3)

    def test_ignored_trial_frees_its_permit(self, breaker_store: StoreCase) -> None:
        generation = self.half_open(breaker_store)
        breaker_store.store.acquire(NAME, CONSECUTIVE, "second")
        record(breaker_store, Outcome.IGNORED, generation=generation, permit="first")

        admission = breaker_store.store.acquire(NAME, CONSECUTIVE, "third")

        assert admission.kind is AdmissionKind.TRIAL

    def test_expired_leases_are_reaped_and_their_outcomes_ignored(
        self, breaker_store: StoreCase
    ) -> None:
        generation = self.half_open(breaker_store)
        breaker_store.store.acquire(NAME, CONSECUTIVE, "second")
        breaker_store.clock.advance(4)

        third = breaker_store.store.acquire(NAME, CONSECUTIVE, "third")
        late = record(
            breaker_store, Outcome.FAILURE, generation=generation, permit="first"
        )

        assert third.kind is AdmissionKind.TRIAL
        assert (late.state, late.transition) == (BreakerState.HALF_OPEN, None)

    def test_threads_racing_for_permits_get_exactly_the_limit(
        self, breaker_store: StoreCase
    ) -> None:
        self.half_open(breaker_store)
        kinds: list[AdmissionKind] = []
        lock = threading.Lock()
        start = threading.Barrier(12, timeout=10)

        def race(i: int) -> None:
            start.wait()
            admission = breaker_store.store.acquire(NAME, CONSECUTIVE, f"r{i}")
            with lock:
                kinds.append(admission.kind)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

        assert kinds.count(AdmissionKind.TRIAL) == 1  # "first" holds the other
        assert kinds.count(AdmissionKind.REJECT) == 11


class TestWindows:
    def test_count_window_failure_rate(self, breaker_store: StoreCase) -> None:
        config = BreakerConfig(
            failure_threshold=None, window=CountWindow(4), failure_rate=0.5, min_calls=4
        )
        for outcome in (Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE):
            record(breaker_store, outcome, config=config)
        record(breaker_store, Outcome.SUCCESS, config=config)  # 1 of 4
        record(breaker_store, Outcome.FAILURE, config=config)  # drops a success: 2/4
        metrics = breaker_store.store.metrics(NAME, config)

        assert metrics is not None
        assert metrics.state is BreakerState.OPEN
        assert metrics.times_opened == 1

    def test_count_window_slides(self, breaker_store: StoreCase) -> None:
        config = BreakerConfig(
            failure_threshold=None, window=CountWindow(3), failure_rate=0.9, min_calls=3
        )
        outcomes = [Outcome.FAILURE, Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUCCESS]
        for outcome in outcomes:
            record(breaker_store, outcome, config=config)

        metrics = breaker_store.store.metrics(NAME, config)
        assert metrics is not None
        assert (metrics.window_calls, metrics.window_failures) == (3, 1)

    def test_time_window_forgets_old_buckets(self, breaker_store: StoreCase) -> None:
        config = BreakerConfig(
            failure_threshold=None,
            window=TimeWindow(10, buckets=5),
            failure_rate=0.5,
            min_calls=4,
        )
        for _ in range(3):
            record(breaker_store, Outcome.FAILURE, config=config)
        breaker_store.clock.advance(10)
        record(breaker_store, Outcome.FAILURE, config=config)
        for _ in range(2):
            record(breaker_store, Outcome.SUCCESS, config=config)

        metrics = breaker_store.store.metrics(NAME, config)
        assert metrics is not None
        assert metrics.state is BreakerState.CLOSED
        assert (metrics.window_calls, metrics.window_failures) == (3, 1)

        view = record(breaker_store, Outcome.FAILURE, config=config)
        assert view.state is BreakerState.OPEN
        assert view.transition is not None
        assert view.transition.reason == "failure rate 0.500 >= 0.500 over 4 calls"

    def test_slow_call_rate(self, breaker_store: StoreCase) -> None:
        config = BreakerConfig(
            failure_threshold=None,
            window=CountWindow(4),
            min_calls=4,
            slow_call=1.0,
            slow_call_rate=0.5,
        )
        record(breaker_store, Outcome.SUCCESS, config=config, duration=2.0)
        record(breaker_store, Outcome.SUCCESS, config=config, duration=0.5)
        record(breaker_store, Outcome.SUCCESS, config=config, duration=0.5)
        view = record(breaker_store, Outcome.FAILURE, config=config, duration=1.0)

        assert view.state is BreakerState.OPEN
        assert view.transition is not None
        assert view.transition.reason == "slow-call rate 0.500 >= 0.500 over 4 calls"

    def test_adaptive_baseline_is_learned_and_used(
        self, breaker_store: StoreCase
    ) -> None:
        config = BreakerConfig(
            failure_threshold=None,
            window=CountWindow(10),
            min_calls=10,
            adaptive=AdaptiveThreshold(factor=3, floor=0.1, ceiling=0.5),
        )
        record(breaker_store, Outcome.FAILURE, config=config)
        for _ in range(9):
            record(breaker_store, Outcome.SUCCESS, config=config)
        metrics = breaker_store.store.metrics(NAME, config)
        assert metrics is not None
        assert metrics.baseline_failure_rate == pytest.approx(0.1)

        for _ in range(2):
            view = record(breaker_store, Outcome.FAILURE, config=config)
        assert view.state is BreakerState.CLOSED
        view = record(breaker_store, Outcome.FAILURE, config=config)  # 3 of 10

        assert view.state is BreakerState.OPEN


class TestOperator:
    @pytest.mark.parametrize(
        ("state", "kind"),
        [
            (BreakerState.FORCED_OPEN, AdmissionKind.REJECT),
            (BreakerState.DISABLED, AdmissionKind.BYPASS),
        ],
    )
    def test_operator_states_hold_until_reset(
        self, breaker_store: StoreCase, state: BreakerState, kind: AdmissionKind
    ) -> None:
        view = breaker_store.store.force(NAME, CONSECUTIVE, state)
        assert view.state is state
        breaker_store.clock.advance(1e6)

        admission = breaker_store.store.acquire(NAME, CONSECUTIVE, "p")
        assert (admission.kind, admission.retry_after) == (kind, None)
        for _ in range(5):
            record(breaker_store, Outcome.FAILURE, generation=view.generation)

        reset = breaker_store.store.force(NAME, CONSECUTIVE, BreakerState.CLOSED)
        assert reset.state is BreakerState.CLOSED
        assert reset.transition is not None
        assert reset.transition.reason == "reset by an operator"

    def test_metrics_count_and_reset(self, breaker_store: StoreCase) -> None:
        record(breaker_store, Outcome.SUCCESS)
        record(breaker_store, Outcome.SUCCESS, duration=5)
        record(breaker_store, Outcome.IGNORED)
        trip(breaker_store)
        breaker_store.store.acquire(NAME, CONSECUTIVE, "p")

        metrics = breaker_store.store.metrics(NAME, CONSECUTIVE)
        assert metrics is not None
        assert (
            metrics.total_calls,
            metrics.successful_calls,
            metrics.failed_calls,
            metrics.ignored_calls,
            metrics.rejected_calls,
            metrics.times_opened,
        ) == (6, 2, 3, 1, 1, 1)
        assert metrics.state is BreakerState.OPEN

        breaker_store.store.reset_metrics(NAME, CONSECUTIVE)
        metrics = breaker_store.store.metrics(NAME, CONSECUTIVE)
        assert metrics is not None
        assert (metrics.total_calls, metrics.rejected_calls) == (0, 0)
        assert metrics.state is BreakerState.OPEN

    def test_an_expired_open_reads_as_half_open(self, breaker_store: StoreCase) -> None:
        trip(breaker_store)
        breaker_store.clock.advance(10)

        metrics = breaker_store.store.metrics(NAME, CONSECUTIVE)

        assert metrics is not None
        assert (metrics.state, metrics.retry_after) == (BreakerState.HALF_OPEN, None)

    def test_names_lists_the_breakers(self, breaker_store: StoreCase) -> None:
        for name in ("b", "a"):
            breaker_store.store.force(name, CONSECUTIVE, BreakerState.CLOSED)

        assert breaker_store.store.names() == ["a", "b"]
