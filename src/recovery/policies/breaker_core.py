"""
The circuit breaker's pure core: settings, states and the state machine.

`BreakerMachine` holds one breaker's state and decides every transition. It
reads no clock and does no I/O: each operation takes `now`, the time on the
clock of whoever stores the state (monotonic seconds in memory, wall-clock
seconds in a shared store). The stores in `recovery.stores` run it under
their own atomicity (a lock, an SQLite transaction); the Redis store runs a
Lua port of the same rules.

The protocol has three operations, each one whole transition:

- `acquire(now, permit)`: may a call run? It answers ALLOW (closed), TRIAL
  (one of the `half_open_calls` leased trial permits), BYPASS (disabled: run,
  judge nothing) or REJECT, and moves open to half-open once the open
  duration has passed;
- `record(now, generation, permit, outcome, duration)`: a call ended; only an
  outcome admitted in the current generation can change the state;
- `force(now, state)`: an operator sets forced-open, disabled or closed.

Every transition increments `generation`, so that a late outcome of a call
admitted before it (a slow call from the closed state ending while half-open,
a trial whose lease was reaped) is counted in the metrics but decides nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math

from .._validation import (
    require_fraction,
    require_int,
    require_positive,
    require_range,
)
from ..errors import ConfigurationError
from .breaker_adaptive import AdaptiveThreshold
from .windows import FAILED, SLOW, CountTally, CountWindow, TimeTally, TimeWindow

__all__ = [
    "RESET_REASON",
    "Admission",
    "AdmissionKind",
    "BreakerConfig",
    "BreakerMachine",
    "BreakerMetrics",
    "BreakerState",
    "Outcome",
    "StateView",
    "Transition",
    "count_value",
]


# Rates are compared as counts: failures >= rate * calls - _TOLERANCE.
_TOLERANCE = 1e-9

# The reason recorded when an operator resets a breaker to closed.
RESET_REASON = "reset by an operator"


class BreakerState(enum.Enum):
    """
    The state of a circuit breaker.

    CLOSED lets calls through and judges them; OPEN rejects them until the
    open duration has passed; HALF_OPEN lets a few trial calls decide.
    FORCED_OPEN (reject everything) and DISABLED (let everything through,
    judge nothing) are set by an operator and stay until changed.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Outcome(enum.Enum):
    """
    How a call through the breaker ended, as the breaker counts it.

    CANCELLED covers cancellation, KeyboardInterrupt and SystemExit: the call
    counts as nothing and only gives back its permit.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"
    CANCELLED = "cancelled"


class AdmissionKind(enum.Enum):
    """
    The answer to "may this call run?".
    """

    ALLOW = "allow"
    TRIAL = "trial"
    BYPASS = "bypass"
    REJECT = "reject"


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """
    A change of state: from *previous* to *state*, and why.
    """

    previous: BreakerState
    state: BreakerState
    generation: int
    reason: str
    retry_after: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """
    The answer of `acquire`: the verdict, and what to report back with.
    """

    kind: AdmissionKind
    state: BreakerState
    generation: int
    permit: str | None = None
    retry_after: float | None = None
    transition: Transition | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StateView:
    """
    The state after `record` or `force`, and the transition it caused, if any.
    """

    state: BreakerState
    generation: int
    retry_after: float | None = None
    transition: Transition | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerMetrics:
    """
    A breaker's state and counters at one moment.

    Counters run from creation or the last `reset_metrics()`; they include
    the late outcomes that no longer decide anything. `since` is the time of
    the last transition on the state's clock, `retry_after` the seconds until
    a trial is allowed (None unless open). Rates are None before any call.
    """

    name: str
    state: BreakerState
    since: float
    retry_after: float | None
    total_calls: int
    successful_calls: int
    failed_calls: int
    slow_calls: int
    ignored_calls: int
    rejected_calls: int
    times_opened: int
    consecutive_failures: int
    window_calls: int
    window_failures: int
    window_slow_calls: int
    baseline_failure_rate: float | None
    generation: int

    @property
    def success_rate(self) -> float | None:
        """
        Successful calls / (successful + failed), or None before any.
        """
        judged = self.successful_calls + self.failed_calls
        return None if judged == 0 else self.successful_calls / judged

    @property
    def failure_rate(self) -> float | None:
        """
        Failed calls / (successful + failed), or None before any.
        """
        judged = self.successful_calls + self.failed_calls
        return None if judged == 0 else self.failed_calls / judged


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """
    The resolved, validated settings of one breaker (see `CircuitBreaker`).
    """

    failure_threshold: int | None = 5
    window: CountWindow | TimeWindow | None = None
    failure_rate: float | None = None
    min_calls: int = 10
    slow_call: float | None = None
    slow_call_rate: float | None = None
    adaptive: AdaptiveThreshold | None = None
    reset_timeout: float = 30.0
    reset_timeout_multiplier: float = 1.0
    reset_timeout_max: float | None = None
    half_open_calls: int = 1
    half_open_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.failure_threshold is not None:
            require_int("failure_threshold", self.failure_threshold, minimum=1)
        if self.failure_rate is not None:
            require_fraction("failure_rate", self.failure_rate)
        require_int("min_calls", self.min_calls, minimum=1)
        if self.slow_call is not None:
            require_positive("slow_call", self.slow_call)
        if self.slow_call_rate is not None:
            require_fraction("slow_call_rate", self.slow_call_rate)
        require_positive("reset_timeout", self.reset_timeout)
        require_range("reset_timeout_multiplier", self.reset_timeout_multiplier, 1, 100)
        if self.reset_timeout_max is not None:
            require_range(
                "reset_timeout_max", self.reset_timeout_max, self.reset_timeout, 1e9
            )
        require_int("half_open_calls", self.half_open_calls, minimum=1, maximum=10_000)
        if self.half_open_timeout is not None:
            require_positive("half_open_timeout", self.half_open_timeout)
        self._check_rules()

    def _check_rules(self) -> None:
        if self.window is not None and not isinstance(
            self.window, CountWindow | TimeWindow
        ):
            raise ConfigurationError(
                f"window must be a CountWindow or a TimeWindow, got {self.window!r}"
            )
        rate_rules = (self.failure_rate, self.slow_call_rate, self.adaptive)
        if self.window is None and any(rule is not None for rule in rate_rules):
            raise ConfigurationError(
                "failure_rate, slow_call_rate and adaptive need a window= "
                "(CountWindow or TimeWindow), got window=None"
            )
        if self.failure_rate is not None and self.adaptive is not None:
            raise ConfigurationError(
                "give failure_rate or adaptive, not both: adaptive replaces the "
                f"fixed rate, got failure_rate={self.failure_rate!r}"
            )
        if self.slow_call_rate is not None and self.slow_call is None:
            raise ConfigurationError(
                "slow_call_rate needs slow_call (the duration in seconds that "
                "makes a call slow), got slow_call=None"
            )
        if self.failure_threshold is None and all(r is None for r in rate_rules):
            raise ConfigurationError(
                "a breaker needs a trip rule: failure_threshold, or a window with "
                "failure_rate, slow_call_rate or adaptive"
            )
        window = self.window
        if isinstance(window, CountWindow) and self.min_calls > window.size:
            raise ConfigurationError(
                f"min_calls must be <= the CountWindow size {window.size}, "
                f"got {self.min_calls!r}: the breaker could never trip on rates"
            )

    @property
    def lease(self) -> float:
        """
        Seconds a half-open trial permit stays held without a reported outcome.
        """
        if self.half_open_timeout is not None:
            return self.half_open_timeout
        return self.reset_timeout

    @property
    def open_cap(self) -> float:
        """
        The longest open duration: `reset_timeout_max`, or 10 x `reset_timeout`.
        """
        if self.reset_timeout_max is not None:
            return self.reset_timeout_max
        if self.reset_timeout_multiplier == 1.0:
            return self.reset_timeout
        return 10 * self.reset_timeout

    def open_duration(self, trips: int) -> float:
        """
        Return how long the breaker stays open after its *trips*-th opening.

        *trips* counts openings since the last close, so the duration grows
        by `reset_timeout_multiplier` on each re-open from half-open, up to
        `open_cap`.
        """
        base = self.reset_timeout
        growth = self.reset_timeout_multiplier
        steps = trips - 1
        if growth == 1.0 or steps <= 0:
            return base

        cap = self.open_cap
        # Compare exponents rather than powers, so no trip count overflows.
        if steps >= math.log(cap / base) / math.log(growth):
            return cap
        return min(cap, base * growth**steps)

    def failure_threshold_rate(self, baseline: float | None) -> float | None:
        """
        Return the failure rate over the window that trips, if any.
        """
        if self.adaptive is not None:
            return self.adaptive.threshold(baseline)
        return self.failure_rate


def count_value(counter: itertools.count[int]) -> int:
    """
    Return the next value an `itertools.count` would give, without taking it.
    """
    # count objects expose their position only through repr: "count(5)".
    return int(repr(counter)[6:-1])


class BreakerMachine:
    """
    One breaker's state and the rules that move it; see the module docstring.

    Not thread-safe: a store serialises the operations. The two counters
    `fast_successes` and `fast_rejections` are the exception: they are
    `itertools.count` objects that the in-memory breaker advances without a
    lock (one C call, atomic under the GIL) on its hot paths.
    """

    __slots__ = (
        "_fast_base",
        "_window_applied",
        "baseline",
        "can_defer",
        "config",
        "consecutive",
        "defer_bucket",
        "defer_ok",
        "failed",
        "fast_rejections",
        "fast_successes",
        "generation",
        "ignored",
        "open_until",
        "opened",
        "probe_ok",
        "probes",
        "reason",
        "rejected",
        "sample_calls",
        "sample_failures",
        "sample_start",
        "since",
        "slow",
        "state",
        "successful",
        "tally",
        "trips",
    )

    def __init__(self, config: BreakerConfig, now: float) -> None:
        self.config = config
        self.state = BreakerState.CLOSED
        self.generation = 0
        self.since = now
        self.open_until = 0.0
        self.trips = 0
        self.consecutive = 0
        self.probes: dict[str, float] = {}
        self.probe_ok = 0
        self.tally = self._new_tally()
        self.baseline: float | None = None
        self.sample_calls = 0
        self.sample_failures = 0
        self.sample_start = now
        self.successful = self.failed = self.slow = self.ignored = 0
        self.rejected = self.opened = 0
        self.reason = "created"
        self.fast_successes = itertools.count()
        self.fast_rejections = itertools.count()
        self._fast_base = (0, 0)
        # Deferred successes. Once the window holds at least `min_calls`
        # calls, a fast success cannot trip it: it adds a call and, at most,
        # pushes out an older one, so no rate can rise; only time moving a
        # TimeWindow to its next bucket can. While `defer_ok` holds (and, for
        # a TimeWindow, the time is still in bucket `defer_bucket`), the
        # in-memory breaker counts such a success lock-free in
        # `fast_successes`, and the next locked operation adds the pending
        # ones to the window, in their bucket. `_window_applied` is the
        # position of `fast_successes` up to which successes are in the window.
        self.can_defer = config.window is not None and config.adaptive is None
        self.defer_ok = False
        self.defer_bucket = -1
        self._window_applied = 0

    def _new_tally(self) -> CountTally | TimeTally | None:
        window = self.config.window
        return None if window is None else window.tally()

    # -- the three operations ---------------------------------------------

    def acquire(self, now: float, permit: str) -> Admission:
        """
        Decide whether a call may run now; *permit* names a trial if one is given.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return Admission(AdmissionKind.ALLOW, state, self.generation)
        if state is BreakerState.DISABLED:
            return Admission(AdmissionKind.BYPASS, state, self.generation)
        if state is BreakerState.FORCED_OPEN:
            self.rejected += 1
            return Admission(AdmissionKind.REJECT, state, self.generation)

        transition = self.refresh(now)
        if self.state is BreakerState.OPEN:
            self.rejected += 1
            return Admission(
                AdmissionKind.REJECT,
                self.state,
                self.generation,
                retry_after=self.open_until - now,
            )

        return self._admit_trial(now, permit, transition)

    def _admit_trial(
        self, now: float, permit: str, transition: Transition | None
    ) -> Admission:
        self._reap(now)
        if len(self.probes) < self.config.half_open_calls:
            self.probes[permit] = now + self.config.lease
            return Admission(
                AdmissionKind.TRIAL,
                self.state,
                self.generation,
                permit=permit,
                transition=transition,
            )

        # Every permit is out: the earliest lease expiry bounds the wait.
        self.rejected += 1
        wait = min(min(self.probes.values()) - now, self.config.reset_timeout)
        return Admission(
            AdmissionKind.REJECT,
            self.state,
            self.generation,
            retry_after=max(0.0, wait),
            transition=transition,
        )

    def record(
        self,
        now: float,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
    ) -> StateView:
        """
        Count a call's outcome and apply any transition it causes.
        """
        self.flush_deferred()
        if permit is None and outcome is Outcome.SUCCESS:
            transition = self.record_success(now, generation, duration)
            return StateView(
                self.state, self.generation, self.retry_after(now), transition
            )

        slow = self._count(outcome, duration)
        if permit is not None:
            transition = self._record_trial(now, generation, permit, outcome, slow)
        elif generation == self.generation and self.state is BreakerState.CLOSED:
            transition = self._record_closed(now, outcome, slow)
        else:
            # A late outcome: admitted before the last transition.
            transition = None

        return StateView(self.state, self.generation, self.retry_after(now), transition)

    def record_success(
        self, now: float, generation: int, duration: float
    ) -> Transition | None:
        """
        Count a success of a call admitted without a permit, and apply it.

        The same as `record` with `Outcome.SUCCESS` and no permit, minus the
        `StateView`: the in-memory breaker's hot path.
        """
        slow_call = self.config.slow_call
        slow = slow_call is not None and duration >= slow_call
        self.successful += 1
        if slow:
            self.slow += 1
        if generation != self.generation or self.state is not BreakerState.CLOSED:
            return None

        self.consecutive = 0
        tally = self.tally
        if tally is None:
            return None
        if self.defer_ok:
            self.flush_deferred()
        tally.add(SLOW if slow else 0, now)
        self._note_deferrable(now)
        # A fast success can only complete a failure-rate trip, and only
        # when the window holds failures (every rate threshold is > 0).
        if slow or tally.failures:
            reason = self._trip_reason(now)
            if reason is not None:
                return self._trip(now, reason)
        if self.config.adaptive is not None:
            self._sample(now, False)
        return None

    def force(self, now: float, state: BreakerState) -> StateView:
        """
        Set an operator state: FORCED_OPEN, DISABLED, or CLOSED (a reset).
        """
        if state not in (
            BreakerState.CLOSED,
            BreakerState.FORCED_OPEN,
            BreakerState.DISABLED,
        ):
            raise ValueError(
                f"an operator can set closed, forced_open or disabled, not {state}"
            )
        reason = {
            BreakerState.CLOSED: RESET_REASON,
            BreakerState.FORCED_OPEN: "forced open by an operator",
            BreakerState.DISABLED: "disabled by an operator",
        }[state]
        transition = self._move(now, state, reason)
        self.trips = 0

        return StateView(self.state, self.generation, None, transition)

    def refresh(self, now: float) -> Transition | None:
        """
        Move from open to half-open if the open duration has passed.
        """
        if self.state is BreakerState.OPEN and now >= self.open_until:
            return self._move(now, BreakerState.HALF_OPEN, "open duration elapsed")
        return None

    # -- recording --------------------------------------------------------

    def _count(self, outcome: Outcome, duration: float) -> bool:
        slow_call = self.config.slow_call
        slow = slow_call is not None and duration >= slow_call
        if outcome is Outcome.SUCCESS:
            self.successful += 1
        elif outcome is Outcome.FAILURE:
            self.failed += 1
        elif outcome is Outcome.IGNORED:
            self.ignored += 1
            return False
        else:
            return False
        if slow:
            self.slow += 1

        return slow

    def _record_trial(
        self, now: float, generation: int, permit: str, outcome: Outcome, slow: bool
    ) -> Transition | None:
        # A permit that is gone was reaped (its lease expired) or belongs to
        # an earlier half-open period: its outcome decides nothing.
        if self.probes.pop(permit, None) is None or generation != self.generation:
            return None
        if outcome is Outcome.IGNORED or outcome is Outcome.CANCELLED:
            return None

        if outcome is Outcome.FAILURE:
            return self._trip(now, "a trial call failed")
        if slow and self.config.slow_call_rate is not None:
            return self._trip(now, "a trial call was slow")

        self.probe_ok += 1
        if self.probe_ok >= self.config.half_open_calls:
            return self._move(now, BreakerState.CLOSED, "trial calls succeeded")
        return None

    def _record_closed(
        self, now: float, outcome: Outcome, slow: bool
    ) -> Transition | None:
        if outcome is Outcome.IGNORED or outcome is Outcome.CANCELLED:
            return None

        failed = outcome is Outcome.FAILURE
        self.consecutive = self.consecutive + 1 if failed else 0
        code = (FAILED if failed else 0) | (SLOW if slow else 0)
        if self.tally is not None:
            self.tally.add(code, now)
            self._note_deferrable(now)

        reason = self._trip_reason(now)
        if reason is not None:
            return self._trip(now, reason)

        self._sample(now, failed)
        return None

    def _trip_reason(self, now: float) -> str | None:
        config = self.config
        threshold = config.failure_threshold
        if threshold is not None and self.consecutive >= threshold:
            count = self.consecutive
            return f"{count} consecutive failure{'' if count == 1 else 's'}"
        if self.tally is None:
            return None

        calls, failures, slow = self.tally.totals(now)
        if calls < config.min_calls:
            return None
        # The tolerance keeps 3 failures of 10 at a rate of 3 x 0.1 (which
        # is 0.30000000000000004 in floating point) a trip, as intended.
        rate = config.failure_threshold_rate(self.baseline)
        if rate is not None and failures >= rate * calls - _TOLERANCE:
            return (
                f"failure rate {failures / calls:.3f} >= {rate:.3f} over {calls} calls"
            )
        slow_rate = config.slow_call_rate
        if slow_rate is not None and slow >= slow_rate * calls - _TOLERANCE:
            observed = slow / calls
            return (
                f"slow-call rate {observed:.3f} >= {slow_rate:.3f} over {calls} calls"
            )
        return None

    def _sample(self, now: float, failed: bool) -> None:
        adaptive = self.config.adaptive
        window = self.config.window
        if adaptive is None or window is None:
            return

        # A time sample ends when its period has passed; the call that
        # notices belongs to the next sample.
        if isinstance(window, TimeWindow) and now - self.sample_start >= window.seconds:
            self._end_sample()
            self.sample_start = now
        self.sample_calls += 1
        self.sample_failures += failed
        if isinstance(window, CountWindow) and self.sample_calls >= window.size:
            self._end_sample()

    def _end_sample(self) -> None:
        adaptive = self.config.adaptive
        assert adaptive is not None
        if self.sample_calls >= self.config.min_calls:
            rate = self.sample_failures / self.sample_calls
            self.baseline = adaptive.learn(self.baseline, rate)
        self.sample_calls = self.sample_failures = 0

    # -- transitions ------------------------------------------------------

    def _trip(self, now: float, reason: str) -> Transition:
        self.trips += 1
        self.opened += 1
        self.open_until = now + self.config.open_duration(self.trips)
        return self._move(now, BreakerState.OPEN, reason)

    def flush_deferred(self) -> None:
        """
        Add the successes counted lock-free since the last flush to the window.
        """
        if not self.defer_ok:
            return
        seen = count_value(self.fast_successes)
        pending = seen - self._window_applied
        if pending <= 0:
            return

        self._window_applied = seen
        tally = self.tally
        if isinstance(tally, CountTally):
            tally.add_successes(pending)
        elif isinstance(tally, TimeTally):
            tally.add_successes(pending, self.defer_bucket)

    def _note_deferrable(self, now: float) -> None:
        tally = self.tally
        if not self.can_defer or tally is None:
            return
        if tally.calls < self.config.min_calls:
            self.defer_ok = False
            return

        if not self.defer_ok:
            self._window_applied = count_value(self.fast_successes)
            self.defer_ok = True
        if isinstance(tally, TimeTally):
            self.defer_bucket = tally.index(now)

    def _move(self, now: float, state: BreakerState, reason: str) -> Transition:
        previous = self.state
        # Deferred successes belong to the window that is being dropped.
        self.defer_ok = False
        self.state = state
        self.generation += 1
        self.since = now
        self.reason = reason
        self.consecutive = 0
        self.probes.clear()
        self.probe_ok = 0
        self.tally = self._new_tally()
        self.sample_calls = self.sample_failures = 0
        self.sample_start = now
        if state is BreakerState.CLOSED:
            self.trips = 0

        return Transition(
            previous, state, self.generation, reason, self.retry_after(now)
        )

    def _reap(self, now: float) -> None:
        expired = [permit for permit, until in self.probes.items() if until <= now]
        for permit in expired:
            del self.probes[permit]

    # -- reading ----------------------------------------------------------

    def retry_after(self, now: float) -> float | None:
        """
        Return the seconds until a trial is allowed, or None unless open.
        """
        if self.state is BreakerState.OPEN:
            return max(0.0, self.open_until - now)
        return None

    def metrics(self, name: str, now: float) -> BreakerMetrics:
        """
        Return the state and counters as a `BreakerMetrics`.
        """
        self.flush_deferred()
        successful, rejected = self.folded_counters()
        calls, failures, slow = (
            (0, 0, 0) if self.tally is None else self.tally.totals(now)
        )
        # An open breaker whose time is up is half-open in all but the write:
        # the next acquire moves it. A reader sees it as what it has become.
        state = self.state
        if state is BreakerState.OPEN and now >= self.open_until:
            state = BreakerState.HALF_OPEN
        return BreakerMetrics(
            name=name,
            state=state,
            since=self.since,
            retry_after=self.retry_after(now) if state is self.state else None,
            total_calls=successful + self.failed + self.ignored,
            successful_calls=successful,
            failed_calls=self.failed,
            slow_calls=self.slow,
            ignored_calls=self.ignored,
            rejected_calls=rejected,
            times_opened=self.opened,
            consecutive_failures=self.consecutive,
            window_calls=calls,
            window_failures=failures,
            window_slow_calls=slow,
            baseline_failure_rate=self.baseline,
            generation=self.generation,
        )

    def folded_counters(self) -> tuple[int, int]:
        """
        Return (successful, rejected) including the lock-free fast counters.
        """
        base_ok, base_rejected = self._fast_base
        successful = self.successful + count_value(self.fast_successes) - base_ok
        rejected = self.rejected + count_value(self.fast_rejections) - base_rejected
        return successful, rejected

    def reset_metrics(self) -> None:
        """
        Set every counter back to zero; the state and window are kept.
        """
        self.successful = self.failed = self.slow = self.ignored = 0
        self.rejected = self.opened = 0
        # The fast counters are never replaced (a caller may hold them);
        # their current positions become the new zero.
        self._fast_base = (
            count_value(self.fast_successes),
            count_value(self.fast_rejections),
        )

    # -- plain data, for the shared stores --------------------------------

    def to_data(self) -> dict[str, object]:
        """
        Return the whole state as JSON-ready data.
        """
        self.flush_deferred()
        successful, rejected = self.folded_counters()
        tally = self.tally
        return {
            "state": self.state.value,
            "generation": self.generation,
            "since": self.since,
            "open_until": self.open_until,
            "trips": self.trips,
            "consecutive": self.consecutive,
            "probes": dict(self.probes),
            "probe_ok": self.probe_ok,
            "tally": None if tally is None else tally.to_data(),
            "baseline": self.baseline,
            "sample": [self.sample_calls, self.sample_failures, self.sample_start],
            "counters": [
                successful,
                self.failed,
                self.slow,
                self.ignored,
                rejected,
                self.opened,
            ],
            "reason": self.reason,
        }

    @classmethod
    def from_data(
        cls, config: BreakerConfig, data: dict[str, object], now: float
    ) -> BreakerMachine:
        """
        Rebuild a machine from `to_data()` output, under *config*.

        A window of another shape than *config*'s (the settings changed
        between runs) is started afresh rather than misread.
        """
        machine = cls(config, now)
        machine.state = BreakerState(data["state"])
        machine.generation = _int(data["generation"])
        machine.since = _float(data["since"])
        machine.open_until = _float(data["open_until"])
        machine.trips = _int(data["trips"])
        machine.consecutive = _int(data["consecutive"])
        probes = data.get("probes") or {}
        assert isinstance(probes, dict)
        machine.probes = {str(k): _float(v) for k, v in probes.items()}
        machine.probe_ok = _int(data["probe_ok"])
        machine.tally = _load_tally(config, data.get("tally"))
        baseline = data.get("baseline")
        machine.baseline = None if baseline is None else _float(baseline)
        sample = data["sample"]
        assert isinstance(sample, list)
        machine.sample_calls, machine.sample_failures = _int(sample[0]), _int(sample[1])
        machine.sample_start = _float(sample[2])
        counters = data["counters"]
        assert isinstance(counters, list)
        (
            machine.successful,
            machine.failed,
            machine.slow,
            machine.ignored,
            machine.rejected,
            machine.opened,
        ) = (_int(value) for value in counters)
        machine.reason = str(data.get("reason", ""))
        return machine


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _load_tally(config: BreakerConfig, data: object) -> CountTally | TimeTally | None:
    window = config.window
    if isinstance(window, CountWindow) and isinstance(data, list):
        return CountTally.from_data(window.size, [_int(code) for code in data])
    if isinstance(window, TimeWindow) and isinstance(data, dict):
        return TimeTally.from_data(window.seconds, window.buckets, data)
    return None if window is None else window.tally()
