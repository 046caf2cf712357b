"""
Passive health: ejecting endpoints whose calls keep failing.

Calls reported through the registry are counted per endpoint. After
`consecutive_failures` failures in a row, the endpoint is ejected for
`base_ejection_time * n` seconds, where *n* counts its ejections, capped
at `max_ejection_time`. The count decays by one for every
`base_ejection_time` the endpoint then spends in service, so an endpoint
that failed once long ago starts again from the base time.

Ejection is refused when, *after* it, more than `max_ejection_percent` of
the service's endpoints would be ejected, so one bad client cannot empty a
service through passive checks alone. The percentage is checked after the
ejection on purpose: checked before, three endpoints at 50 % would lose two.

Everything here is pure: the registry passes `now` and holds the lock.
"""

from __future__ import annotations

import dataclasses
import math

from .._validation import require_int, require_positive, require_range
from ..errors import ConfigurationError

__all__ = ["OutlierDetection", "OutlierState"]


@dataclasses.dataclass(frozen=True, slots=True)
class OutlierDetection:
    """
    When to eject an endpoint from passive results, and for how long.

    Args:
        consecutive_failures: failed calls in a row that earn an ejection.
        base_ejection_time: seconds of the first ejection; the n-th lasts n
            times longer.
        max_ejection_time: the cap on one ejection, in seconds.
        max_ejection_percent: the largest share of a service's endpoints
            (0 to 100) that may be ejected at once.
    """

    consecutive_failures: int = 5
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        require_int("consecutive_failures", self.consecutive_failures, minimum=1)
        # Stored as floats so that durations in events are always floats.
        for name, value in (
            (
                "base_ejection_time",
                require_positive("base_ejection_time", self.base_ejection_time),
            ),
            (
                "max_ejection_time",
                require_positive("max_ejection_time", self.max_ejection_time),
            ),
            (
                "max_ejection_percent",
                require_range(
                    "max_ejection_percent", self.max_ejection_percent, 0, 100
                ),
            ),
        ):
            object.__setattr__(self, name, value)
        if self.max_ejection_time < self.base_ejection_time:
            raise ConfigurationError(
                "max_ejection_time must be >= base_ejection_time "
                f"({self.base_ejection_time!r}), got {self.max_ejection_time!r}"
            )

    def ejection_time(self, ejections: int) -> float:
        """
        Return how long the *ejections*-th ejection lasts (1-based).
        """
        return min(self.base_ejection_time * ejections, self.max_ejection_time)

    def may_eject(self, ejected: int, total: int) -> bool:
        """
        Return whether one more ejection keeps the ejected share within the cap.
        """
        # Integers on both sides: no rounding lets a fourth of four slip by.
        return (ejected + 1) * 100 <= self.max_ejection_percent * total


@dataclasses.dataclass(slots=True)
class OutlierState:
    """
    The passive-health record of one endpoint.

    `ejected_until` is a time on the registry's clock; the endpoint is
    ejected while `ejected` is true and that time lies ahead.
    """

    failures: int = 0
    ejections: int = 0
    ejected: bool = False
    ejected_until: float = -math.inf

    def record_success(self) -> None:
        """
        Count a successful call: the run of failures is broken.
        """
        self.failures = 0

    def record_failure(self, settings: OutlierDetection) -> bool:
        """
        Count a failed call; return whether it earned an ejection.

        Failures reported while the endpoint is ejected (calls that were
        already running) do not count.
        """
        if self.ejected:
            return False

        self.failures += 1
        return self.failures >= settings.consecutive_failures

    def eject(self, settings: OutlierDetection, now: float) -> float:
        """
        Eject the endpoint from *now*; return the ejection's length in seconds.
        """
        if self.ejections and now > self.ejected_until:
            served = int((now - self.ejected_until) // settings.base_ejection_time)
            self.ejections = max(0, self.ejections - served)

        self.ejections += 1
        duration = settings.ejection_time(self.ejections)
        self.ejected = True
        self.ejected_until = now + duration
        self.failures = 0

        return duration

    def restore_due(self, now: float) -> bool:
        """
        End the ejection if its time is up; return whether it just ended.
        """
        if self.ejected and now >= self.ejected_until:
            self.ejected = False
            self.failures = 0
            return True

        return False
