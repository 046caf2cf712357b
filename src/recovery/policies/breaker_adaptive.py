"""
The adaptive trip threshold: a failure rate judged against the breaker's own past.

A fixed `failure_rate` suits a dependency whose normal error rate is known.
`AdaptiveThreshold` learns it instead. While the breaker is closed, calls are
grouped into consecutive, non-overlapping *samples* (each as long as the
breaker's window: *size* calls for a `CountWindow`, *seconds* for a
`TimeWindow`). When a sample ends with at least `min_calls` calls, its
failure rate *r* updates the baseline *b*, an exponentially weighted moving
average::

    b = r                        for the first sample
    b = b + smoothing * (r - b)  for every later one

The breaker trips when the failure rate over its window, with at least
`min_calls` calls, reaches::

    threshold = min(ceiling, max(floor, factor * b))

and, before the first sample has been learned, ``threshold = ceiling``. A
sample that ends in a trip is discarded and each re-close starts a fresh
sample, so an outage never teaches the baseline that failing is normal.
"""

from __future__ import annotations

import dataclasses

from .._validation import require_fraction, require_range
from ..errors import ConfigurationError

__all__ = ["AdaptiveThreshold"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveThreshold:
    """
    Trip when the failure rate reaches *factor* times the learned baseline.

    *floor* keeps a near-zero baseline from making one failure enough to
    trip; *ceiling* is the rate that always trips (and the threshold used
    until a baseline is learned); *smoothing* is the weight of the newest
    sample in the moving average.
    """

    factor: float = 3.0
    floor: float = 0.1
    ceiling: float = 0.5
    smoothing: float = 0.2

    def __post_init__(self) -> None:
        require_range("factor", self.factor, 1.0, 1000.0)
        require_fraction("floor", self.floor)
        require_fraction("ceiling", self.ceiling)
        require_fraction("smoothing", self.smoothing)
        if self.floor > self.ceiling:
            raise ConfigurationError(
                f"floor must be <= ceiling, got floor={self.floor!r} "
                f"and ceiling={self.ceiling!r}"
            )

    def threshold(self, baseline: float | None) -> float:
        """
        Return the failure rate that trips, given the learned *baseline*.
        """
        if baseline is None:
            return self.ceiling
        return min(self.ceiling, max(self.floor, self.factor * baseline))

    def learn(self, baseline: float | None, rate: float) -> float:
        """
        Return the baseline after a sample with failure rate *rate* ended.
        """
        if baseline is None:
            return rate
        return baseline + self.smoothing * (rate - baseline)
