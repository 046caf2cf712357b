"""
Helpers for tests: a fake clock, and a switch that makes retries instant.

`FakeClock` is what every timing test in `recovery` uses: sleeping moves its
time forward at once and returns. `fast_retries()` is for the user's own
test suite: inside it, every `Retry` waits zero seconds and can be capped to
a number of attempts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from . import _testmode
from ._validation import require_int, require_non_negative

__all__ = ["FakeClock", "fast_retries"]

# 2023-11-14T22:13:20Z: a fixed wall-clock start so HTTP dates are repeatable.
_DEFAULT_WALL_START = 1_700_000_000.0


class FakeClock:
    """
    A clock for tests: time moves only when told to, or when something sleeps.

    `sleep` and `asleep` advance the time by the requested amount and return
    at once (`asleep` still yields to the event loop once, so it stays a
    cancellation point). Every requested sleep is recorded in `sleeps`.
    Safe to share between threads.
    """

    def __init__(self, start: float = 0.0, *, wall: float = _DEFAULT_WALL_START):
        self._now = require_non_negative("start", start)
        self._wall_offset = wall - self._now
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """
        Return the fake monotonic time in seconds.
        """
        return self._now

    def time(self) -> float:
        """
        Return the fake wall-clock time, which moves with `now()`.
        """
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """
        Move time forward by *seconds* (>= 0).
        """
        require_non_negative("seconds", seconds)
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """
        Record the sleep and advance time by it (negative counts as zero).
        """
        seconds = max(0.0, seconds)
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        """
        Record the sleep, advance time by it, and yield to the loop once.
        """
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


@contextmanager
def fast_retries(attempts: int | None = None) -> Iterator[None]:
    """
    Make every `Retry` in the process wait zero seconds inside this block.

    With *attempts*, retrying stops after that many attempts at most (a cap:
    a policy allowing fewer keeps its own limit). `attempts=1` switches
    retrying off: a failing call fails at once, and a block that succeeds
    runs exactly once.
    """
    if attempts is not None:
        require_int("attempts", attempts, minimum=1)

    previous = _testmode.set_current(_testmode.TestMode(max_attempts=attempts))
    try:
        yield
    finally:
        _testmode.set_current(previous)
