"""
Property tests: the breaker's state machine against a small reference model,
on a FakeClock, through each store.

The model is written from the rules in the documentation, independently of
`BreakerMachine`: consecutive failures trip; the open duration doubles per
re-open up to a cap; half-open hands out at most `half_open_calls` leased
permits; only outcomes of the current generation decide.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from recovery.errors import CircuitOpenError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import (
    AdmissionKind,
    BreakerConfig,
    BreakerState,
    Outcome,
)
from recovery.policies.windows import CountWindow, TimeWindow
from recovery.stores.base import BreakerStore
from recovery.stores.memory import MemoryStore
from recovery.stores.redis import RedisStore
from recovery.stores.sqlite import SqliteStore
from recovery.testing import FakeClock
from tests.stores.conftest import redis_cleanup

THRESHOLD = 2
RESET = 10.0
CAP = 40.0
TRIALS = 2
LEASE = 5.0


class Model:
    """The rules, as plainly as they can be written."""

    def __init__(self) -> None:
        self.state = "closed"
        self.generation = 0
        self.streak = 0
        self.open_until = 0.0
        self.opens_since_close = 0
        self.trials: dict[str, float] = {}
        self.trial_successes = 0

    def _enter(self, state: str) -> None:
        self.state = state
        self.generation += 1
        self.streak = 0
        self.trials = {}
        self.trial_successes = 0

    def _open(self, now: float) -> None:
        self.opens_since_close += 1
        self.open_until = now + min(CAP, RESET * 2 ** (self.opens_since_close - 1))
        self._enter("open")

    def acquire(self, now: float, permit: str) -> str:
        if self.state == "closed":
            return "allow"
        if self.state == "disabled":
            return "bypass"
        if self.state == "forced_open":
            return "reject"
        if self.state == "open":
            if now < self.open_until:
                return "reject"
            self._enter("half_open")
        self.trials = {p: t for p, t in self.trials.items() if t > now}
        if len(self.trials) < TRIALS:
            self.trials[permit] = now + LEASE
            return "trial"
        return "reject"

    def record(
        self, now: float, generation: int, permit: str | None, failed: bool
    ) -> None:
        if permit is not None:
            if permit not in self.trials or generation != self.generation:
                return
            del self.trials[permit]
            if failed:
                self._open(now)
            else:
                self.trial_successes += 1
                if self.trial_successes >= TRIALS:
                    self.opens_since_close = 0
                    self._enter("closed")
            return
        if generation != self.generation or self.state != "closed":
            return
        self.streak = self.streak + 1 if failed else 0
        if self.streak >= THRESHOLD:
            self._open(now)

    def force(self, state: str) -> None:
        self.opens_since_close = 0
        self._enter(state)


NAME = "model"
CONFIG = BreakerConfig(
    failure_threshold=THRESHOLD,
    reset_timeout=RESET,
    reset_timeout_multiplier=2.0,
    reset_timeout_max=CAP,
    half_open_calls=TRIALS,
    half_open_timeout=LEASE,
)


class BreakerComparison(RuleBasedStateMachine):
    """
    Drive a store and the model with the same steps, on a FakeClock, and
    compare every answer.
    """

    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = self.make_store(self.clock)
        self.model = Model()
        self.permits = itertools.count()

    def make_store(self, clock: FakeClock) -> BreakerStore:
        return MemoryStore(clock=clock)

    def teardown(self) -> None:
        self.store.close()

    def _admit(self) -> tuple[str, int, str | None]:
        permit = f"p{next(self.permits)}"
        admission = self.store.acquire(NAME, CONFIG, permit)
        expected = self.model.acquire(self.clock.now(), permit)
        assert admission.kind.value == expected
        return expected, admission.generation, admission.permit

    def _record(self, generation: int, permit: str | None, failed: bool) -> None:
        outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
        self.store.record(NAME, CONFIG, generation, permit, outcome, 0.0)
        self.model.record(self.clock.now(), generation, permit, failed)

    @rule(failed=st.booleans())
    def call(self, failed: bool) -> None:
        kind, generation, permit = self._admit()
        if kind in ("allow", "trial"):
            self._record(generation, permit, failed)

    @rule(target=held)
    def start(self) -> tuple[str, int, str | None]:
        return self._admit()

    @rule(target=held)
    def start_burst(self) -> object:
        """One admission more than there are trial permits, all held."""
        return multiple(*(self._admit() for _ in range(TRIALS + 1)))

    @rule(ticket=consumes(held), failed=st.booleans())
    def finish(self, ticket: tuple[str, int, str | None], failed: bool) -> None:
        kind, generation, permit = ticket
        if kind in ("allow", "trial"):
            self._record(generation, permit, failed)

    @rule()
    def fail_repeatedly(self) -> None:
        """A burst of failures, enough to trip a closed breaker."""
        for _ in range(THRESHOLD):
            self.call(failed=True)

    @rule()
    def wait_until_due(self) -> None:
        """Let the open duration pass exactly."""
        self.clock.advance(max(0.0, self.model.open_until - self.clock.now()))

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 10.0, 25.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(state=st.sampled_from(["closed", "forced_open", "disabled"]))
    def force(self, state: str) -> None:
        self.store.force(NAME, CONFIG, BreakerState(state))
        self.model.force(state)

    @invariant()
    def same_state(self) -> None:
        metrics = self.store.metrics(NAME, CONFIG)
        model = self.model
        now = self.clock.now()
        if metrics is None:  # nothing written yet
            assert (model.state, model.generation, model.streak) == ("closed", 0, 0)
            return

        # A reader sees an open breaker whose time is up as half-open.
        expected = model.state
        if expected == "open" and now >= model.open_until:
            expected = "half_open"
        assert metrics.state.value == expected
        assert metrics.generation == model.generation
        assert metrics.consecutive_failures == model.streak
        if expected == "open":
            assert metrics.retry_after == pytest.approx(
                model.open_until - now, abs=1e-6
            )
        if metrics.state is BreakerState.CLOSED:
            assert metrics.consecutive_failures < THRESHOLD


TestMemoryStoreAgainstModel = BreakerComparison.TestCase
TestMemoryStoreAgainstModel.settings = settings(
    max_examples=50, stateful_step_count=25, deadline=None
)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_shared_stores_follow_the_model(
    kind: str, tmp_path: Path, unique_name: str, request: pytest.FixtureRequest
) -> None:
    """The SQLite transaction and the Redis Lua port obey the same rules."""
    made = itertools.count()
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")

    class SharedComparison(BreakerComparison):
        def make_store(self, clock: FakeClock) -> BreakerStore:
            if kind == "sqlite":
                return SqliteStore(tmp_path / f"{next(made)}.db", clock=clock)
            return RedisStore(url, prefix=f"{unique_name}-{next(made)}", clock=clock)

    try:
        run_state_machine_as_test(
            SharedComparison,
            settings=settings(max_examples=20, stateful_step_count=20, deadline=None),
        )
    finally:
        if kind == "redis":
            redis_cleanup(url, unique_name)


def test_admission_kinds_are_the_ones_the_model_names() -> None:
    assert {kind.value for kind in AdmissionKind} == {
        "allow",
        "trial",
        "bypass",
        "reject",
    }


Step = tuple[str, float]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.25, 0.5, 1.0])),
        st.tuples(st.sampled_from(["ok", "ok", "ok", "fail"]), st.just(0.0)),
    ),
    max_size=60,
)


def _window_model(steps: list[Step], kind: str) -> list[tuple[str, int, int]]:
    """Replay *steps* with plain lists: (state, window calls, window failures)."""
    now, state, open_until = 0.0, "closed", 0.0
    calls: list[tuple[float, bool]] = []
    seen = []
    for action, seconds in steps:
        if action == "advance":
            now += seconds
        elif state == "closed":
            calls.append((now, action == "fail"))
        elif now >= open_until:  # the trial decides
            state, calls = ("open", []) if action == "fail" else ("closed", [])
            open_until = now + 1.0 if state == "open" else open_until

        if kind == "count":
            window = calls[-5:]
        else:  # 500 ms buckets, the last four of them
            first = round(now * 1000) // 500 - 3
            window = [c for c in calls if round(c[0] * 1000) // 500 >= first]
        failures = sum(failed for _, failed in window)
        # Rates are judged when a call is recorded, not as time passes.
        judged = action != "advance" and state == "closed"
        if judged and len(window) >= 4 and failures >= 0.5 * len(window):
            state, open_until, calls, window, failures = "open", now + 1.0, [], [], 0
        seen.append((state, len(window), failures))
    return seen


@pytest.mark.parametrize("kind", ["count", "time"])
@settings(max_examples=100, deadline=None)
@given(steps=STEPS)
def test_windowed_breaker_follows_a_naive_recount(kind: str, steps: list[Step]) -> None:
    """Through `call`, with its lock-free successes, windows count exactly."""
    clock = FakeClock()
    window = CountWindow(5) if kind == "count" else TimeWindow(2, buckets=4)
    breaker = CircuitBreaker(
        "w",
        window=window,
        failure_rate=0.5,
        min_calls=4,
        reset_timeout=1.0,
        clock=clock,
    )
    expected = _window_model(steps, kind)

    for (action, seconds), (state, calls, failures) in zip(
        steps, expected, strict=True
    ):
        if action == "advance":
            clock.advance(seconds)
        else:
            with contextlib.suppress(ValueError, CircuitOpenError):
                breaker.call(_outcome, action == "fail")
        metrics = breaker.metrics()
        if state == "closed":
            assert metrics.state is BreakerState.CLOSED
            assert (metrics.window_calls, metrics.window_failures) == (calls, failures)
        else:
            assert metrics.state in (BreakerState.OPEN, BreakerState.HALF_OPEN)


def _outcome(failed: bool) -> None:
    if failed:
        raise ValueError("failed")
