"""
Delay schedules: how long to wait before each retry.

A `Backoff` is a pure, immutable description. `delay(n, rng, previous)`
returns the wait before retry *n* (n = 1 is the wait after the first failed
attempt); it does no I/O and reads no clock. Three growth shapes exist:

- `constant(delay)`: always the same base delay;
- `linear(initial, increment, cap)`: initial + increment * (n - 1);
- `exponential(initial, multiplier, cap)`: initial * multiplier ** (n - 1).

and five kinds of jitter, applied to the capped base delay *b*:

- ``"none"``: exactly *b*;
- ``"proportional"``: uniform in [b * (1 - f), b * (1 + f)], f = `jitter_factor`;
- ``"full"``: uniform in [minimum, b];
- ``"equal"``: uniform in [b / 2, b];
- ``"decorrelated"``: uniform in [initial, 3 * previous delay].

Whatever the kind, every delay is clamped to [minimum, cap]: it is never
negative, NaN or infinite, and computing it never overflows, even at attempt
10,000. Jitter intervals are intersected with [minimum, cap] rather than
clamped afterwards, so delays keep spreading out once the cap is reached
instead of piling up on it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from collections.abc import Iterator

from .._validation import require_non_negative, require_positive, require_range
from ..errors import ConfigurationError

__all__ = ["Backoff", "Jitter", "constant", "exponential", "linear"]


class Jitter(enum.Enum):
    """
    How a base delay is randomised.
    """

    NONE = "none"
    PROPORTIONAL = "proportional"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


class _Shape(enum.Enum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """
    An immutable delay schedule; build one with `constant`, `linear` or
    `exponential`.
    """

    shape: _Shape
    initial: float
    step: float
    cap: float
    minimum: float
    jitter: Jitter
    jitter_factor: float

    def base(self, attempt: int) -> float:
        """
        Return the capped delay before retry *attempt*, without jitter.
        """
        n = attempt - 1
        if self.shape is _CONSTANT:
            raw = self.initial
        elif self.shape is _LINEAR:
            # A float product cannot overflow here: both factors are finite.
            raw = self.initial + self.step * n
        else:
            raw = self._exponential(n)

        return min(self.cap, max(self.minimum, raw))

    def _exponential(self, n: int) -> float:
        if self.step == 1.0 or self.initial == 0.0 or self.initial >= self.cap:
            return self.initial
        # Compare exponents instead of computing a power that may overflow.
        growth = n * math.log(self.step)
        if growth >= math.log(self.cap) - math.log(self.initial):
            return self.cap
        if growth < _EXACT_GROWTH:
            return self.initial * self.step**n

        # A tiny initial delay can stay under the cap while step**n alone
        # would overflow a float; the logarithms keep the product in range.
        return math.exp(math.log(self.initial) + growth)

    def delay(
        self,
        attempt: int,
        rng: random.Random | None = None,
        previous: float | None = None,
    ) -> float:
        """
        Return the delay in seconds before retry *attempt* (1-based).

        *rng* supplies the randomness (a fresh `random.Random` when omitted);
        *previous* is the delay used before the previous retry, which only
        decorrelated jitter reads.
        """
        base = self.initial if self.shape is _CONSTANT else self.base(attempt)
        if self.jitter is _NO_JITTER:
            return base

        rng = rng if rng is not None else _default_rng
        low, high = self._jitter_interval(base, previous)

        return _clamp(rng.uniform(low, high), self.minimum, self.cap)

    def _jitter_interval(
        self, base: float, previous: float | None
    ) -> tuple[float, float]:
        if self.jitter is Jitter.PROPORTIONAL:
            low = base * (1.0 - self.jitter_factor)
            high = base * (1.0 + self.jitter_factor)
        elif self.jitter is Jitter.FULL:
            low, high = self.minimum, base
        elif self.jitter is Jitter.EQUAL:
            low, high = base / 2.0, base
        else:
            low = self.initial
            high = 3.0 * (previous if previous is not None else self.initial)

        # When the interval lies wholly at or above the cap, spread over the
        # cap's own neighbourhood so capped delays still differ between
        # callers; otherwise intersect it with [minimum, cap].
        if low >= self.cap and self.cap > 0:
            return max(self.minimum, self.cap * (1.0 - _CAP_SPREAD)), self.cap

        low = max(low, self.minimum)
        high = max(low, min(high, self.cap))
        return low, high

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """
        Yield the delays before retries 1, 2, 3, ... forever.
        """
        previous: float | None = None
        attempt = 1
        while True:
            previous = self.delay(attempt, rng, previous)
            yield previous
            attempt += 1


# Enum members bound to module names: reading them from the enum class on
# every delay costs more than the rest of the computation.
_CONSTANT = _Shape.CONSTANT
_LINEAR = _Shape.LINEAR
_NO_JITTER = Jitter.NONE

# Below this natural-log growth, step**n is computed exactly as a float.
_EXACT_GROWTH = 700.0

# When jitter cannot spread below the cap (for example decorrelated jitter
# whose whole range lies above it), delays are drawn from the top quarter.
_CAP_SPREAD = 0.25

_default_rng = random.Random()


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _jitter_kind(jitter: Jitter | str) -> Jitter:
    try:
        return Jitter(jitter)
    except ValueError:
        kinds = ", ".join(repr(k.value) for k in Jitter)
        raise ConfigurationError(
            f"jitter must be one of {kinds}, got {jitter!r}"
        ) from None


def _build(
    shape: _Shape,
    *,
    initial: float,
    step: float,
    cap: float,
    minimum: float,
    jitter: Jitter | str,
    jitter_factor: float,
) -> Backoff:
    if minimum > cap:
        raise ConfigurationError(
            f"minimum must be <= cap, got minimum={minimum!r} and cap={cap!r}"
        )
    jitter_factor = require_range("jitter_factor", jitter_factor, 0.0, 1.0)

    return Backoff(
        shape=shape,
        initial=initial,
        step=step,
        cap=cap,
        minimum=minimum,
        jitter=_jitter_kind(jitter),
        jitter_factor=jitter_factor,
    )


def constant(
    delay: float,
    *,
    jitter: Jitter | str = Jitter.NONE,
    jitter_factor: float = 0.1,
    minimum: float = 0.0,
) -> Backoff:
    """
    Wait the same *delay* seconds before every retry.

    With jitter, delays stay within [minimum, delay].
    """
    delay = require_non_negative("delay", delay)
    return _build(
        _Shape.CONSTANT,
        initial=delay,
        step=0.0,
        cap=delay,
        minimum=require_non_negative("minimum", minimum),
        jitter=jitter,
        jitter_factor=jitter_factor,
    )


def linear(
    initial: float,
    increment: float,
    cap: float,
    *,
    jitter: Jitter | str = Jitter.NONE,
    jitter_factor: float = 0.1,
    minimum: float = 0.0,
) -> Backoff:
    """
    Wait *initial* seconds, then *increment* more before each later retry,
    never more than *cap*.
    """
    return _build(
        _Shape.LINEAR,
        initial=require_non_negative("initial", initial),
        step=require_non_negative("increment", increment),
        cap=require_non_negative("cap", cap),
        minimum=require_non_negative("minimum", minimum),
        jitter=jitter,
        jitter_factor=jitter_factor,
    )


def exponential(
    initial: float = 0.1,
    multiplier: float = 2.0,
    cap: float = 10.0,
    *,
    jitter: Jitter | str = Jitter.NONE,
    jitter_factor: float = 0.1,
    minimum: float = 0.0,
) -> Backoff:
    """
    Wait *initial* seconds, multiplying the wait by *multiplier* before each
    later retry, never more than *cap*.
    """
    multiplier = require_positive("multiplier", multiplier)
    if multiplier < 1:
        raise ConfigurationError(f"multiplier must be >= 1, got {multiplier!r}")

    return _build(
        _Shape.EXPONENTIAL,
        initial=require_non_negative("initial", initial),
        step=multiplier,
        cap=require_non_negative("cap", cap),
        minimum=require_non_negative("minimum", minimum),
        jitter=jitter,
        jitter_factor=jitter_factor,
    )
