"""
Time, as every strategy sees it.

Strategies never call `time` or `asyncio.sleep` directly: they take a
`clock=` argument, so tests can pass `recovery.testing.FakeClock` and run
without waiting. The real clock is `SYSTEM_CLOCK`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """
    Monotonic time, wall time and sleeping, sync and async.
    """

    def now(self) -> float:
        """
        Return monotonic seconds; only differences between readings mean anything.
        """
        ...

    def time(self) -> float:
        """
        Return wall-clock seconds since the epoch (for HTTP dates and journals).
        """
        ...

    def sleep(self, seconds: float) -> None:
        """
        Block the calling thread for *seconds*; zero or less returns at once.
        """
        ...

    async def asleep(self, seconds: float) -> None:
        """
        Suspend the calling task for *seconds*; zero or less returns at once.
        """
        ...


class SystemClock:
    """
    The real clock: `time.monotonic`, `time.time` and real sleeping.
    """

    __slots__ = ()

    # Bound once so that reading the time costs one C call.
    now = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    def sleep(self, seconds: float) -> None:
        """
        Sleep for *seconds*; a delay of zero does not call `time.sleep` at all.
        """
        # time.sleep(0) still costs tens of microseconds on Python 3.11+.
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """
        Await *seconds*; a delay of zero returns without yielding.
        """
        if seconds > 0:
            await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
