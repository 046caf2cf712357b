"""
Property tests: the breaker's state machine against a small reference model.

The model is written from the rules in the documentation, independently of
`BreakerMachine`: consecutive failures trip; the open duration doubles per
re-open up to a cap; half-open hands out at most `half_open_calls` leased
permits; only outcomes of the current generation decide.
"""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from recovery.policies.breaker_core import (
    AdmissionKind,
    BreakerConfig,
    BreakerMachine,
    BreakerState,
    Outcome,
)

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


class BreakerComparison(RuleBasedStateMachine):
    """Drive the machine and the model with the same steps and compare."""

    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        config = BreakerConfig(
            failure_threshold=THRESHOLD,
            reset_timeout=RESET,
            reset_timeout_multiplier=2.0,
            reset_timeout_max=CAP,
            half_open_calls=TRIALS,
            half_open_timeout=LEASE,
        )
        self.now = 0.0
        self.machine = BreakerMachine(config, self.now)
        self.model = Model()
        self.permits = itertools.count()

    def _admit(self) -> tuple[str, int, str | None]:
        permit = f"p{next(self.permits)}"
        admission = self.machine.acquire(self.now, permit)
        expected = self.model.acquire(self.now, permit)
        assert admission.kind.value == expected
        return expected, admission.generation, admission.permit

    @rule(failed=st.booleans())
    def call(self, failed: bool) -> None:
        kind, generation, permit = self._admit()
        if kind in ("allow", "trial"):
            outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
            self.machine.record(self.now, generation, permit, outcome, 0.0)
            self.model.record(self.now, generation, permit, failed)

    @rule(target=held)
    def start(self) -> tuple[str, int, str | None]:
        return self._admit()

    @rule(ticket=consumes(held), failed=st.booleans())
    def finish(self, ticket: tuple[str, int, str | None], failed: bool) -> None:
        kind, generation, permit = ticket
        if kind not in ("allow", "trial"):
            return
        outcome = Outcome.FAILURE if failed else Outcome.SUCCESS
        self.machine.record(self.now, generation, permit, outcome, 0.0)
        self.model.record(self.now, generation, permit, failed)

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 10.0, 25.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(state=st.sampled_from(["closed", "forced_open", "disabled"]))
    def force(self, state: str) -> None:
        self.machine.force(self.now, BreakerState(state))
        self.model.force(state)

    @invariant()
    def same_state(self) -> None:
        assert self.machine.state.value == self.model.state
        assert self.machine.generation == self.model.generation
        assert self.machine.consecutive == self.model.streak
        if self.model.state == "open":
            assert self.machine.retry_after(self.now) == max(
                0.0, self.model.open_until - self.now
            )

    @invariant()
    def trials_are_bounded(self) -> None:
        live = [t for t in self.machine.probes.values() if t > self.now]
        assert len(live) <= TRIALS

    @invariant()
    def opens_only_after_the_threshold(self) -> None:
        if self.machine.state is BreakerState.CLOSED:
            assert self.machine.consecutive < THRESHOLD


BreakerComparison.TestCase.settings = settings(
    max_examples=100, stateful_step_count=25, deadline=None
)
TestBreakerMachine = BreakerComparison.TestCase


def test_admission_kinds_are_the_ones_the_model_names() -> None:
    assert {kind.value for kind in AdmissionKind} == {
        "allow",
        "trial",
        "bypass",
        "reject",
    }
