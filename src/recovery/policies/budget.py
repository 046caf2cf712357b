"""
Retry budgets: keep retries a small fraction of the calls that succeed.

A retry policy alone multiplies load when a dependency struggles: every
caller retries, and the dependency sees three or five times its normal
traffic exactly when it can least bear it. A `RetryBudget` caps that
amplification. Every successful call deposits one token, every retry
withdraws one, and retries are allowed only while

    withdrawals < floor(deposits * ratio + min_per_second * window)

over the last `window` seconds. With the defaults (20 % of successes plus
10 retries a second over 10 s), a healthy service retries freely, and a
failing one is retried at most 10 times a second in total.

The budget is local to the process. Ratios compose: if every process keeps
its retries under 20 % of its own successes, the fleet does too (plus the
per-process reserve), so sharing the counts would buy little for a store
round trip per call. An absolute fleet-wide cap on retries is a
`RateLimiter` with a shared store.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from .._validation import (
    require_clock,
    require_int,
    require_non_negative,
    require_positive,
)
from ..clock import SYSTEM_CLOCK, Clock

__all__ = ["RetryBudget"]

# Products such as 100 * 0.2 land a hair below the integer they mean.
_EPSILON = 1e-9


class RetryBudget:
    """
    A Finagle-style budget of retries: a fraction of recent successes.

    Pass it to `Retry(budget=...)`; the retry calls `record_success()` after
    each successful call and `try_withdraw()` before each retry. Counts live
    in `slots` buckets covering `window` seconds, so old activity expires a
    bucket at a time. Thread-safe; the lock is held for a few additions.

    Args:
        ratio: retries allowed per successful call in the window (0 to 1000).
        min_per_second: a reserve of retries per second allowed even without
            successes, so that a service that has never succeeded can still
            be retried a little.
        window: seconds over which deposits and withdrawals count.
        slots: how many buckets the window is cut into.
    """

    __slots__ = (
        "_clock",
        "_deposits",
        "_lock",
        "_ratio",
        "_reserve",
        "_ring",
        "_slot_width",
        "_slots",
        "_withdrawals",
        "name",
    )

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        slots: int = 10,
        name: str = "retry-budget",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._ratio = require_non_negative("ratio", ratio)
        per_second = require_non_negative("min_per_second", min_per_second)
        window = require_positive("window", window)
        self._slots = require_int("slots", slots, minimum=1, maximum=10_000)
        self._reserve = per_second * window
        self._slot_width = window / self._slots
        self._clock = require_clock("clock", clock)
        self._lock = threading.Lock()
        self.name = name

        # (slot index, deposits, withdrawals), oldest first; totals kept
        # alongside so a check never walks the ring.
        self._ring: deque[list[int]] = deque()
        self._deposits = 0
        self._withdrawals = 0

    def record_success(self) -> None:
        """
        Deposit one token: a call succeeded.
        """
        with self._lock:
            self._current_slot_locked()[1] += 1
            self._deposits += 1

    def try_withdraw(self) -> bool:
        """
        Take one retry from the budget; return False when none is left.
        """
        with self._lock:
            slot = self._current_slot_locked()
            if self._withdrawals >= self._allowance_locked():
                return False

            slot[2] += 1
            self._withdrawals += 1
            return True

    def available(self) -> int:
        """
        Return how many retries the budget would allow right now.
        """
        with self._lock:
            self._current_slot_locked()
            return max(0, self._allowance_locked() - self._withdrawals)

    def _allowance_locked(self) -> int:
        return math.floor(self._deposits * self._ratio + self._reserve + _EPSILON)

    def _current_slot_locked(self) -> list[int]:
        index = math.floor(self._clock.now() / self._slot_width)
        ring = self._ring

        # Drop buckets that slid out of the window, with their counts.
        oldest_kept = index - self._slots + 1
        while ring and ring[0][0] < oldest_kept:
            _, deposits, withdrawals = ring.popleft()
            self._deposits -= deposits
            self._withdrawals -= withdrawals

        if ring and ring[-1][0] >= index:
            return ring[-1]
        slot = [index, 0, 0]
        ring.append(slot)
        return slot

    def __repr__(self) -> str:
        window = self._slot_width * self._slots
        return (
            f"RetryBudget(ratio={self._ratio!r}, "
            f"min_per_second={self._reserve / window!r}, window={window!r})"
        )
