"""
Hedged requests: when an answer is slow, ask again, and take the first one.

Tail latency often comes from one slow replica, one lost packet, one long
pause. A hedge starts a second attempt if the first has not answered after
`delay` seconds, a third after another `delay`, up to `max_attempts` in
flight, and returns the first success; every other attempt is then
cancelled. An attempt that fails with a matched exception starts the next
one at once instead of waiting for the delay. When every attempt has
failed, the last failure is raised, with a note counting the attempts.

Hedging multiplies load by up to `max_attempts` on slow calls: use it for
idempotent reads, with a delay near the 95th percentile of latency, so
that about one call in twenty is hedged.

Only async calls can be hedged: a thread cannot be cancelled, so a sync
hedge would leave its losers running. `call` raises `TypeError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, NoReturn, ParamSpec, TypeGuard, TypeVar

from .._validation import (
    ExceptionSpec,
    exception_matcher,
    require_clock,
    require_int,
    require_positive,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..events import Event, EventEmitter, Listener

__all__ = ["HedgeStarted", "Hedging"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HedgeStarted(Event):
    """
    Another attempt was started beside the ones still running.
    """

    attempt: int
    reason: str

    kind: ClassVar[str] = "hedge_started"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: started attempt %d (%s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "attempt", "reason")


class Hedging:
    """
    Start another attempt after `delay` seconds without an answer.

    Args:
        delay: seconds to wait for an attempt before starting the next, > 0.
        max_attempts: attempts allowed in total, >= 1 (1 means no hedging).
        on: failures that start the next attempt at once; any other
            exception cancels the remaining attempts and propagates.
    """

    __slots__ = (
        "_catch",
        "_clock",
        "_emitter",
        "_predicate",
        "delay",
        "max_attempts",
        "name",
    )

    def __init__(
        self,
        delay: float,
        *,
        max_attempts: int = 2,
        on: ExceptionSpec = Exception,
        name: str = "hedging",
        clock: Clock = SYSTEM_CLOCK,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.delay = require_positive("delay", delay)
        self.max_attempts = require_int(
            "max_attempts", max_attempts, minimum=1, maximum=16
        )
        self._catch, self._predicate = exception_matcher("on", on)
        self._clock = require_clock("clock", clock)
        self._emitter = EventEmitter(listeners)
        self.name = name

    def call(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> NoReturn:
        """
        Refuse: sync calls cannot be hedged (threads cannot be cancelled).
        """
        raise TypeError(
            f"{self.name}: hedging needs async calls (use acall); a sync attempt "
            "could not be cancelled once another one answered"
        )

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn*, hedging slow attempts; return the first success.
        """
        running: set[asyncio.Future[R]] = {asyncio.ensure_future(fn(*args, **kwargs))}
        failures: list[Exception] = []
        started = 1
        try:
            while True:
                done, timer_fired = await self._wait(
                    running, may_hedge=started < self.max_attempts
                )
                for task in done:
                    running.discard(task)
                    exc = task.exception()
                    if exc is None:
                        return task.result()
                    if not self._handles(exc):
                        raise exc
                    failures.append(exc)

                if started < self.max_attempts and (timer_fired or done):
                    started += 1
                    self._started(started, "delay" if timer_fired else "failure")
                    running.add(asyncio.ensure_future(fn(*args, **kwargs)))
                elif not running:
                    self._give_up(failures)
        finally:
            await _cancel_all(running)

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """
        Decorate an async function so that each call is hedged.
        """
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{self.name}: only async functions can be hedged")

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await self.acall(fn, *args, **kwargs)

        return wrapper

    async def _wait(
        self, running: set[asyncio.Future[R]], *, may_hedge: bool
    ) -> tuple[set[asyncio.Future[R]], bool]:
        """
        Wait for a finished attempt or, if another may start, the delay.

        Return the finished attempts and whether the delay ran out first.
        """
        if not may_hedge:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            return done, False

        timer = asyncio.ensure_future(self._clock.asleep(self.delay))
        try:
            waiting: list[asyncio.Future[Any]] = [*running, timer]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        done = {task for task in running if task.done()}
        return done, not done

    def _handles(self, exc: BaseException) -> TypeGuard[Exception]:
        if not isinstance(exc, self._catch):
            return False
        return self._predicate is None or self._predicate(exc)

    def _started(self, attempt: int, reason: str) -> None:
        if self._emitter.wants(HedgeStarted):
            self._emitter.emit(
                HedgeStarted(source=self.name, attempt=attempt, reason=reason)
            )

    def _give_up(self, failures: list[Exception]) -> NoReturn:
        last = failures[-1]
        last.add_note(
            f"recovery: {self.name!r}: all {len(failures)} hedged attempts failed"
        )
        raise last

    def __repr__(self) -> str:
        return (
            f"Hedging({self.delay!r}, max_attempts={self.max_attempts}, "
            f"name={self.name!r})"
        )


async def _cancel_all(tasks: set[asyncio.Future[R]]) -> None:
    # Losers are cancelled and awaited, so none outlives the call.
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
