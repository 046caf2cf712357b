"""
Sliding windows: the recent calls a circuit breaker judges its rates on.

A window is an immutable description (`CountWindow`, `TimeWindow`); each
breaker state owns a tally built from it with `window.tally()`. A tally
records one outcome at a time and answers three numbers: how many calls,
failures and slow calls are in the window now. It keeps counters, never a
log of calls, so its size is bounded by the window's shape alone:

- `CountWindow(size)`: the last *size* calls, whatever their age; a ring of
  outcome codes plus running totals, O(1) per record.
- `TimeWindow(seconds, buckets)`: the calls of the last *seconds*, counted in
  *buckets* equal slices. A call lands in the slice holding its time; a slice
  leaves the window as a whole once it is older than *seconds*, so the window
  covers between ``seconds - seconds / buckets`` and *seconds* of history.

Tallies take the time as an argument and do no I/O. They are not
thread-safe: the breaker updates them under its own lock.
"""

from __future__ import annotations

import dataclasses

from .._validation import require_int, require_positive
from ..errors import ConfigurationError

__all__ = [
    "FAILED",
    "SLOW",
    "CountTally",
    "CountWindow",
    "TimeTally",
    "TimeWindow",
    "Window",
    "WindowTally",
]

# An outcome code is a bit set: bit 0 a failure, bit 1 a slow call. A code
# of 0 is a fast success. The same codes are stored by the shared stores.
FAILED = 1
SLOW = 2


@dataclasses.dataclass(frozen=True, slots=True)
class CountWindow:
    """
    A window over the last *size* calls.
    """

    size: int

    def __post_init__(self) -> None:
        require_int("size", self.size, minimum=1, maximum=1_000_000)

    def tally(self) -> CountTally:
        """
        Return an empty tally for this window.
        """
        return CountTally(self.size)


@dataclasses.dataclass(frozen=True, slots=True)
class TimeWindow:
    """
    A window over the calls of the last *seconds*, counted in *buckets* slices.
    """

    seconds: float
    buckets: int = 10

    def __post_init__(self) -> None:
        require_positive("seconds", self.seconds)
        require_int("buckets", self.buckets, minimum=1, maximum=1000)
        if self.seconds / self.buckets < 0.001:
            raise ConfigurationError(
                f"seconds / buckets must be at least 0.001 (one millisecond per "
                f"bucket), got {self.seconds!r} / {self.buckets!r}"
            )

    @property
    def bucket_width(self) -> float:
        """
        The length of one bucket in seconds.
        """
        return self.seconds / self.buckets

    def tally(self) -> TimeTally:
        """
        Return an empty tally for this window.
        """
        return TimeTally(self.seconds, self.buckets)


Window = CountWindow | TimeWindow


class CountTally:
    """
    The running totals of a `CountWindow`: a ring of codes and three counters.
    """

    __slots__ = ("_next", "_ring", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._ring: list[int] = [0] * size
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def add(self, code: int, now: float) -> None:
        """
        Record one call with outcome *code*; the oldest call leaves a full ring.
        """
        ring = self._ring
        size = len(ring)
        if self.calls == size:
            old = ring[self._next]
            self.failures -= old & FAILED
            self.slow -= (old & SLOW) >> 1
        else:
            self.calls += 1

        ring[self._next] = code
        self._next = (self._next + 1) % size
        self.failures += code & FAILED
        self.slow += (code & SLOW) >> 1

    @property
    def size(self) -> int:
        """
        The number of calls the window holds when full.
        """
        return len(self._ring)

    def add_successes(self, count: int) -> None:
        """
        Record *count* fast successes at once (oldest calls leave as needed).
        """
        ring = self._ring
        if count < len(ring):
            for _ in range(count):
                self.add(0, 0.0)
            return

        ring[:] = [0] * len(ring)
        self._next = 0
        self.calls = len(ring)
        self.failures = self.slow = 0

    def totals(self, now: float) -> tuple[int, int, int]:
        """
        Return (calls, failures, slow calls) in the window.
        """
        return self.calls, self.failures, self.slow

    def to_data(self) -> list[int]:
        """
        Return the recorded codes, oldest first, as plain data.
        """
        if self.calls < len(self._ring):
            return self._ring[: self.calls]
        return self._ring[self._next :] + self._ring[: self._next]

    @classmethod
    def from_data(cls, size: int, codes: list[int]) -> CountTally:
        """
        Rebuild a tally from `to_data()` output (extra old codes are dropped).
        """
        tally = cls(size)
        for code in codes[-size:]:
            tally.add(int(code) & (FAILED | SLOW), 0.0)
        return tally


class TimeTally:
    """
    The running totals of a `TimeWindow`: counters per time bucket.

    Running totals over the kept buckets make `add` and `totals` O(1) while
    no bucket has aged out; only when one has is the (small) set of buckets
    walked again.
    """

    __slots__ = (
        "_buckets",
        "_count",
        "_oldest",
        "_width_ms",
        "calls",
        "failures",
        "slow",
    )

    def __init__(self, seconds: float, buckets: int) -> None:
        # Bucket boundaries are computed in whole milliseconds, the unit the
        # shared stores use, so that every store puts a call in the same bucket.
        self._width_ms = max(1, round(seconds * 1000 / buckets))
        self._count = buckets
        # bucket index -> [calls, failures, slow]
        self._buckets: dict[int, list[int]] = {}
        # Totals over the kept buckets: exact for "now" right after `add`.
        self.calls = self.failures = self.slow = 0
        # The smallest bucket index kept (a huge number while empty).
        self._oldest = 1 << 62

    def index(self, now: float) -> int:
        """
        Return the index of the bucket that holds time *now*.
        """
        return round(now * 1000) // self._width_ms

    def _expire(self, current: int) -> None:
        first_kept = current - self._count + 1
        if first_kept <= self._oldest:
            return

        for index in [i for i in self._buckets if i < first_kept]:
            c, f, s = self._buckets.pop(index)
            self.calls -= c
            self.failures -= f
            self.slow -= s
        self._oldest = min(self._buckets, default=1 << 62)

    def add(self, code: int, now: float) -> None:
        """
        Record one call with outcome *code* at time *now*.
        """
        current = self.index(now)
        self._expire(current)

        bucket = self._buckets.get(current)
        if bucket is None:
            bucket = self._buckets[current] = [0, 0, 0]
            self._oldest = min(self._oldest, current)
        failed, slow = code & FAILED, (code & SLOW) >> 1
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def add_successes(self, count: int, index: int) -> None:
        """
        Record *count* fast successes that happened in bucket *index*.
        """
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = [0, 0, 0]
            self._oldest = min(self._oldest, index)
        bucket[0] += count
        self.calls += count

    def totals(self, now: float) -> tuple[int, int, int]:
        """
        Return (calls, failures, slow calls) in the window at time *now*.
        """
        first_kept = self.index(now) - self._count + 1
        if first_kept <= self._oldest:
            return self.calls, self.failures, self.slow

        calls = failures = slow = 0
        for index, (c, f, s) in self._buckets.items():
            if index >= first_kept:
                calls += c
                failures += f
                slow += s
        return calls, failures, slow

    def to_data(self) -> dict[str, list[int]]:
        """
        Return the buckets as plain data (keys are bucket indexes as text).
        """
        return {str(index): list(bucket) for index, bucket in self._buckets.items()}

    @classmethod
    def from_data(
        cls, seconds: float, buckets: int, data: dict[str, list[int]]
    ) -> TimeTally:
        """
        Rebuild a tally from `to_data()` output.
        """
        tally = cls(seconds, buckets)
        for index, (c, f, s) in data.items():
            tally._buckets[int(index)] = [int(c), int(f), int(s)]
            tally.calls += int(c)
            tally.failures += int(f)
            tally.slow += int(s)
        tally._oldest = min(tally._buckets, default=1 << 62)
        return tally


WindowTally = CountTally | TimeTally
