"""
Bulkheads: a cap on how many calls run at once, with a bounded queue.

A slow dependency ties up every thread or task that calls it; a bulkhead
keeps that damage inside a compartment. At most `max_concurrent` calls run
through it at once; up to `max_queued` more wait, in arrival order, at most
`queue_timeout` seconds each; anything beyond is refused at once with
`BulkheadFullError`, so the caller can degrade instead of piling up.

One bulkhead can serve threads and asyncio tasks together: its counts live
under one lock, and a freed slot is handed directly to the oldest waiter,
whichever kind it is, so a newcomer can never overtake the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ClassVar, ParamSpec, TypeVar

from .._validation import require_clock, require_int, require_non_negative
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import BulkheadFullError
from ..events import Event, EventEmitter, Listener
from .timeout import _wait_event, _wait_future

__all__ = ["Bulkhead", "BulkheadRejected"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BulkheadRejected(Event):
    """
    A call was refused: every slot was busy and the queue full or too slow.
    """

    reason: str
    active: int
    queued: int

    kind: ClassVar[str] = "bulkhead_rejected"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: call rejected (%s; %d running, %d queued)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "reason", "active", "queued")


class _Waiter:
    """
    One queued caller; `granted` is the truth, the wake-up only a signal.
    """

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        future: asyncio.Future[object] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.event = event
        self.future = future
        self.loop = loop
        self.granted = False

    def wake(self) -> bool:
        """
        Signal the waiter; return False if it can no longer be reached.
        """
        if self.event is not None:
            self.event.set()
            return True
        if self.loop is None or self.future is None:
            return False

        # The slot may be freed by a thread outside the waiter's loop, and
        # that loop may have been closed with the waiter still queued.
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:
            return False
        return True


def _resolve(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_result(None)


class Bulkhead:
    """
    At most `max_concurrent` calls at once, and `max_queued` waiting.

    Usable as `call`/`acall`, as a decorator, as `with`/`async with`, and as
    a pipeline stage. Rejections raise `BulkheadFullError` (its
    `retry_after` is None: a bulkhead cannot know when a slot frees up).

    Args:
        max_concurrent: calls allowed to run at once, >= 1.
        max_queued: callers allowed to wait for a slot, >= 0.
        queue_timeout: the longest a caller waits in the queue, in seconds;
            None waits as long as it takes.
    """

    __slots__ = (
        "_active",
        "_clock",
        "_emitter",
        "_lock",
        "_waiters",
        "max_concurrent",
        "max_queued",
        "name",
        "queue_timeout",
    )

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_queued: int = 0,
        queue_timeout: float | None = None,
        name: str = "bulkhead",
        clock: Clock = SYSTEM_CLOCK,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.max_concurrent = require_int("max_concurrent", max_concurrent, minimum=1)
        self.max_queued = require_int("max_queued", max_queued, minimum=0)
        self.queue_timeout = (
            None
            if queue_timeout is None
            else require_non_negative("queue_timeout", queue_timeout)
        )
        self.name = name
        self._clock = require_clock("clock", clock)
        self._emitter = EventEmitter(listeners)
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def active(self) -> int:
        """
        The number of calls running through the bulkhead now.
        """
        return self._active

    @property
    def queued(self) -> int:
        """
        The number of callers waiting for a slot now.
        """
        return len(self._waiters)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* in a slot; wait in the queue or raise `BulkheadFullError`.
        """
        # The uncontended path is inlined: one lock round trip to enter.
        with self._lock:
            admitted = self._active < self.max_concurrent and not self._waiters
            if admitted:
                self._active += 1
        if not admitted:
            self.acquire()
        try:
            return fn(*args, **kwargs)
        finally:
            self.release()

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* in a slot; wait in the queue or raise `BulkheadFullError`.
        """
        with self._lock:
            admitted = self._active < self.max_concurrent and not self._waiters
            if admitted:
                self._active += 1
        if not admitted:
            await self.aacquire()
        try:
            return await fn(*args, **kwargs)
        finally:
            self.release()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate a sync or async function so that each call takes a slot.
        """
        if inspect.iscoroutinefunction(fn):
            acall = self.acall

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
                return await acall(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        call = self.call

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return call(fn, *args, **kwargs)

        return wrapper

    def acquire(self) -> None:
        """
        Take a slot, waiting in the queue if allowed; pair with `release()`.
        """
        with self._lock:
            if self._active < self.max_concurrent and not self._waiters:
                self._active += 1
                return
            waiter = self._enqueue_locked(_Waiter(event=threading.Event()))
        if waiter is None:
            raise self._rejected("full")

        assert waiter.event is not None
        try:
            woken = _wait_event(waiter.event, self.queue_timeout, self._clock)
        except BaseException:
            self._abandon(waiter, release=True)
            raise

        if not woken and not self._abandon(waiter, release=False):
            raise self._rejected("queue timeout")

    async def aacquire(self) -> None:
        """
        Take a slot from a task, waiting in the queue if allowed.
        """
        with self._lock:
            if self._active < self.max_concurrent and not self._waiters:
                self._active += 1
                return
            loop = asyncio.get_running_loop()
            waiter = self._enqueue_locked(
                _Waiter(future=loop.create_future(), loop=loop)
            )
        if waiter is None:
            raise self._rejected("full")

        assert waiter.future is not None
        try:
            woken = await _wait_future(waiter.future, self.queue_timeout, self._clock)
        except BaseException:
            self._abandon(waiter, release=True)
            raise

        if not woken and not self._abandon(waiter, release=False):
            raise self._rejected("queue timeout")

    def release(self) -> None:
        """
        Free a slot, handing it to the oldest waiter if there is one.
        """
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                if waiter.wake():
                    return
            if self._active == 0:
                raise RuntimeError(f"bulkhead {self.name!r}: release() without a slot")
            self._active -= 1

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        await self.aacquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _enqueue_locked(self, waiter: _Waiter) -> _Waiter | None:
        if len(self._waiters) >= self.max_queued or self.queue_timeout == 0:
            return None

        self._waiters.append(waiter)
        return waiter

    def _abandon(self, waiter: _Waiter, *, release: bool) -> bool:
        """
        Leave the queue; return True if a slot was granted meanwhile.

        With *release*, a slot granted in the race is given back at once
        (the caller is leaving by an exception and will not use it).
        """
        with self._lock:
            if not waiter.granted:
                self._waiters.remove(waiter)
                return False

        if release:
            self.release()
        return True

    def _rejected(self, reason: str) -> BulkheadFullError:
        # Read without the lock: the counts only describe the rejection, and
        # listeners must never run under the lock.
        active, queued = self._active, len(self._waiters)
        if self._emitter.wants(BulkheadRejected):
            self._emitter.emit(
                BulkheadRejected(
                    source=self.name, reason=reason, active=active, queued=queued
                )
            )
        return BulkheadFullError(
            f"bulkhead {self.name!r} is full ({reason}: {active} running, "
            f"{queued} queued)"
        )

    def __repr__(self) -> str:
        return (
            f"Bulkhead({self.max_concurrent}, max_queued={self.max_queued}, "
            f"queue_timeout={self.queue_timeout!r}, name={self.name!r})"
        )
