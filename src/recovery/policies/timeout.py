"""
Time limits on calls, and the deadline a running call can read.

What a time limit can do depends on the kind of call:

- **async**: the awaited call is cancelled at the deadline (it sees
  `CancelledError` at its next `await`), and the caller gets
  `CallTimeoutError`. This is a real limit.
- **sync, ``mode="thread"``** (the default): the function runs in a fresh
  daemon thread and the caller stops waiting at the deadline. Python cannot
  stop a thread, so **the function keeps running** in the background until
  it returns on its own; its result, or its exception, is then discarded.
  Use this for calls that may hang and whose late completion is harmless.
- **sync, ``mode="cooperative"``**: the function runs in the caller's
  thread and is expected to honour `remaining()` (pass it as the timeout
  of its socket, lock or query). If it returns late anyway, its result is
  discarded and `CallTimeoutError` is raised, so that a caller never acts
  on an answer that came after its own deadline.

In every mode the function can call `remaining()` to learn how many seconds
are left before the innermost deadline; nested limits keep the tightest.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import ClassVar, Literal, ParamSpec, TypeVar

from .._validation import require_clock, require_positive
from ..clock import SYSTEM_CLOCK, Clock, SystemClock
from ..errors import CallTimeoutError, ConfigurationError
from ..events import Event, EventEmitter, Listener

__all__ = ["CallTimedOut", "Timeout", "remaining"]

P = ParamSpec("P")
R = TypeVar("R")

# A real wait cannot follow a fake clock, so with any clock but the system
# one, waits poll it this often (in real seconds); time then moves only when
# the test (or the call itself) moves it.
_POLL = 0.001

# (deadline on the clock, the clock), or None outside any time limit.
_deadline: contextvars.ContextVar[tuple[float, Clock] | None] = contextvars.ContextVar(
    "recovery_deadline", default=None
)


def remaining() -> float | None:
    """
    Return the seconds left before the current call's deadline, or None.

    Never negative: a call past its deadline reads 0.0. Outside any
    `Timeout` (or other deadline) this returns None.
    """
    current = _deadline.get()
    if current is None:
        return None

    deadline, clock = current
    return max(0.0, deadline - clock.now())


def _tighter(deadline: float, clock: Clock) -> tuple[float, Clock]:
    """
    Return the deadline to install: the earlier of *deadline* and the outer one.
    """
    outer = _deadline.get()
    if outer is not None and outer[1] is clock and outer[0] < deadline:
        return outer

    return deadline, clock


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallTimedOut(Event):
    """
    A call ran past its time limit and was abandoned or cancelled.
    """

    timeout: float
    mode: str

    kind: ClassVar[str] = "call_timed_out"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: call exceeded its %.3f s limit (%s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "timeout", "mode")


def _wait_event(event: threading.Event, timeout: float | None, clock: Clock) -> bool:
    """
    Wait for *event* up to *timeout* seconds on *clock*; return whether it is set.
    """
    if timeout is None:
        event.wait()
        return True
    if isinstance(clock, SystemClock):
        return event.wait(timeout)

    deadline = clock.now() + timeout
    while not event.wait(_POLL):
        if clock.now() >= deadline:
            return event.is_set()
    return True


async def _wait_future(
    future: asyncio.Future[object], within: float | None, clock: Clock
) -> bool:
    """
    Await *future* up to *within* seconds on *clock*; return whether it is done.

    The future itself is never cancelled here; the caller decides.
    """
    if within is None:
        await asyncio.shield(future)
        return True
    if isinstance(clock, SystemClock):
        done, _ = await asyncio.wait((future,), timeout=within)
        return bool(done)

    deadline = clock.now() + within
    while clock.now() < deadline:
        done, _ = await asyncio.wait((future,), timeout=_POLL)
        if done:
            return True
    return future.done()


class Timeout:
    """
    A time limit on each call: `CallTimeoutError` once *seconds* have passed.

    Usable as `timeout.call(fn, ...)`, `await timeout.acall(fn, ...)`, as a
    decorator on sync and async functions, and as a pipeline stage. See the
    module docstring for what a sync time limit can and cannot do.

    Args:
        seconds: the limit, > 0.
        mode: for sync calls, ``"thread"`` (run in a thread abandoned at
            the deadline) or ``"cooperative"`` (run inline; the function
            reads `remaining()`; a late result is discarded).
    """

    __slots__ = ("_clock", "_emitter", "_mode", "name", "seconds")

    def __init__(
        self,
        seconds: float,
        *,
        mode: Literal["thread", "cooperative"] = "thread",
        name: str = "timeout",
        clock: Clock = SYSTEM_CLOCK,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.seconds = require_positive("seconds", seconds)
        if mode not in ("thread", "cooperative"):
            raise ConfigurationError(
                f"mode must be 'thread' or 'cooperative', got {mode!r}"
            )
        self._mode = mode
        self._clock = require_clock("clock", clock)
        self._emitter = EventEmitter(listeners)
        self.name = name

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* with a time limit; raise `CallTimeoutError` past it.
        """
        deadline = self._clock.now() + self.seconds
        if self._mode == "cooperative":
            return self._call_inline(deadline, fn, *args, **kwargs)

        return self._call_in_thread(deadline, fn, *args, **kwargs)

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* with a time limit; cancel it and raise `CallTimeoutError`.
        """
        clock = self._clock
        token = _deadline.set(_tighter(clock.now() + self.seconds, clock))
        try:
            if isinstance(clock, SystemClock):
                return await self._await_on_loop_clock(fn, *args, **kwargs)
            return await self._await_on_other_clock(fn, *args, **kwargs)
        finally:
            _deadline.reset(token)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate a sync or async function with this time limit.
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

    def _call_inline(
        self, deadline: float, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        clock = self._clock
        token = _deadline.set(_tighter(deadline, clock))
        try:
            result = fn(*args, **kwargs)
        finally:
            _deadline.reset(token)

        if clock.now() > deadline:
            raise self._timed_out("cooperative", "its late result was discarded")
        return result

    def _call_in_thread(
        self, deadline: float, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        clock = self._clock
        context = contextvars.copy_context()
        context.run(_deadline.set, _tighter(deadline, clock))
        done = threading.Event()
        results: list[R] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(context.run(fn, *args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=run, name=f"recovery-{self.name}", daemon=True)
        worker.start()
        if not _wait_event(done, deadline - clock.now(), clock):
            raise self._timed_out("thread", "the worker thread keeps running")

        if errors:
            raise errors[0]
        return results[0]

    async def _await_on_loop_clock(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        try:
            async with asyncio.timeout(self.seconds) as scope:
                return await fn(*args, **kwargs)
        except TimeoutError as exc:
            if self._expired(scope, exc):
                raise self._timed_out("cancelled", "the call was cancelled") from None
            raise

    async def _await_on_other_clock(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        # Any other clock (a fake one in tests) cannot drive the loop's
        # timer, so a watchdog task polls it and expires the scope. Polling,
        # not sleeping on the clock: a fake clock's sleep would move time
        # itself, and time must move only when the test moves it.
        loop = asyncio.get_running_loop()
        clock = self._clock
        deadline = clock.now() + self.seconds

        async def watchdog(scope: asyncio.Timeout) -> None:
            while clock.now() < deadline:  # noqa: ASYNC110 - polls a clock, not a flag
                await asyncio.sleep(_POLL)
            scope.reschedule(loop.time())

        try:
            async with asyncio.timeout(None) as scope:
                dog = asyncio.ensure_future(watchdog(scope))
                try:
                    return await fn(*args, **kwargs)
                finally:
                    dog.cancel()
        except TimeoutError as exc:
            if self._expired(scope, exc):
                raise self._timed_out("cancelled", "the call was cancelled") from None
            raise

    @staticmethod
    def _expired(scope: asyncio.Timeout, exc: TimeoutError) -> bool:
        # The scope turns only its own cancellation into TimeoutError (with
        # the CancelledError as cause); a TimeoutError raised by the call
        # itself is the call's outcome and passes through unchanged.
        return scope.expired() and isinstance(exc.__cause__, asyncio.CancelledError)

    def _timed_out(self, mode: str, what: str) -> CallTimeoutError:
        if self._emitter.wants(CallTimedOut):
            self._emitter.emit(
                CallTimedOut(source=self.name, timeout=self.seconds, mode=mode)
            )
        return CallTimeoutError(
            f"{self.name}: call exceeded its {self.seconds:g} s limit; {what}",
            timeout=self.seconds,
        )

    def __repr__(self) -> str:
        return f"Timeout({self.seconds!r}, mode={self._mode!r}, name={self.name!r})"
