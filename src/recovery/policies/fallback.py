"""
Fallback chains: answer with something acceptable when the primary fails.

A `Fallback` tries, in order, and stops at the first tier that answers:

1. the **primary**: the function being called;
2. each **alternative**, in order: called as ``alternative(failure, *args,
   **kwargs)``, where *failure* is the exception of the tier before it (the
   primary's `CircuitOpenError`, a `CallTimeoutError`, ...);
3. the **last good value** (stale-if-error): the primary's most recent
   successful result for the same key, if it is at most `max_age` old;
4. the **default**: a fixed value, or ``default_factory(failure)``.

A tier fails when it raises an exception matched by `on` (all `Exception`s
by default), or returns a result that `on_result` rejects. An exception not
matched by `on` propagates at once, untouched. Cancellation,
`KeyboardInterrupt` and `SystemExit` are never caught. When every tier
fails, `FallbackExhaustedError` (an `ExceptionGroup`) holds every failure,
in order, each with its traceback.

Telling which tier answered:

- **explicit**: `call_result`/`acall_result` return a `FallbackResult`
  with the value, the tier, the staleness and the failures;
- **transparent**: `call`/`acall` return the bare value; afterwards
  `fallback_info()` returns the same facts (a `FallbackInfo`) if the last
  fallback call completed in the current context (thread or task) was
  degraded, None if its primary answered; a degraded answer also emits a
  `FallbackUsed` event.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import enum
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import ClassVar, Generic, ParamSpec, TypeVar, cast

from .._validation import (
    ExceptionSpec,
    exception_matcher,
    require_clock,
    require_int,
    require_positive,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError, RecoveryError
from ..events import Event, EventEmitter, Listener

__all__ = [
    "Fallback",
    "FallbackExhaustedError",
    "FallbackInfo",
    "FallbackResult",
    "FallbackTier",
    "FallbackUsed",
    "LastGood",
    "ResultRejectedError",
    "fallback_info",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger(__name__)


class FallbackTier(enum.Enum):
    """
    Which part of a fallback chain produced the answer.
    """

    PRIMARY = "primary"
    ALTERNATIVE = "alternative"
    LAST_GOOD = "last_good"
    DEFAULT = "default"


@dataclasses.dataclass(frozen=True, slots=True)
class FallbackInfo:
    """
    How a fallback call was answered.

    `alternative` is the 0-based index of the alternative that answered (None
    for other tiers); `staleness` the age in seconds of a last good value
    (0.0 for every other tier); `errors` the failures that came before the
    answer, in order.
    """

    source: str
    tier: FallbackTier
    alternative: int | None = None
    staleness: float = 0.0
    errors: tuple[Exception, ...] = ()

    @property
    def degraded(self) -> bool:
        """
        Whether anything but the primary answered.
        """
        return self.tier is not FallbackTier.PRIMARY


@dataclasses.dataclass(frozen=True, slots=True)
class FallbackResult(Generic[T]):
    """
    A value, and how the fallback chain obtained it (see `FallbackInfo`).
    """

    value: T
    info: FallbackInfo

    @property
    def tier(self) -> FallbackTier:
        """
        The tier that answered.
        """
        return self.info.tier

    @property
    def staleness(self) -> float:
        """
        Seconds since a last good value was stored; 0.0 for other tiers.
        """
        return self.info.staleness

    @property
    def errors(self) -> tuple[Exception, ...]:
        """
        The failures before the answer, in order.
        """
        return self.info.errors

    @property
    def degraded(self) -> bool:
        """
        Whether anything but the primary answered.
        """
        return self.info.degraded


_info: contextvars.ContextVar[FallbackInfo | None] = contextvars.ContextVar(
    "recovery_fallback_info", default=None
)


def fallback_info() -> FallbackInfo | None:
    """
    Return how the last fallback call in this context was degraded, if it was.

    None when that call was answered by its primary (the usual case, kept
    cheap), before any call, and after a call whose every tier failed. Each
    thread and each asyncio task has its own context: a task sees the calls
    it awaited itself, not those of tasks it spawned.
    """
    return _info.get()


def _remember(info: FallbackInfo) -> None:
    if info.tier is not FallbackTier.PRIMARY:
        _info.set(info)
    elif _info.get() is not None:
        _info.set(None)


class ResultRejectedError(RecoveryError):
    """
    A tier returned a result that the fallback's `on_result` rejected.

    The result is kept in `result`, for inspection only.
    """

    def __init__(self, result: object, *, source: str) -> None:
        super().__init__(f"{source}: result rejected by on_result")
        self.result = result


class FallbackExhaustedError(RecoveryError, ExceptionGroup):
    """
    Every tier of a fallback chain failed; `exceptions` holds each failure.

    The failures are in the order the tiers ran (primary first), each with
    its traceback. Also an `ExceptionGroup`, so ``except*`` can pick out one
    kind, for example ``except* CircuitOpenError``.
    """

    def derive(self, excs: list[Exception]) -> FallbackExhaustedError:  # type: ignore[override]
        """
        Return a group of the same kind and message holding *excs*.
        """
        return FallbackExhaustedError(self.message, excs)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FallbackUsed(Event):
    """
    A fallback chain answered with something other than its primary.
    """

    tier: str
    alternative: int | None
    staleness: float
    error: str

    kind: ClassVar[str] = "fallback_used"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: answered from %s after %s (staleness %.3f s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "tier", "error", "staleness")


class LastGood:
    """
    The primary's most recent good results, per key, for stale-if-error.

    Results are kept at most `max_age` seconds, and for at most `max_keys`
    keys: beyond that the least recently stored or served key is dropped.
    The key comes from the call's arguments through `key` (by default every
    call shares one key). Thread-safe.

    Args:
        max_age: the greatest staleness served, in seconds.
        max_keys: how many keys are remembered.
        key: a function of the call's arguments returning a hashable key.
    """

    __slots__ = ("_entries", "_key", "_lock", "max_age", "max_keys")

    def __init__(
        self,
        max_age: float,
        *,
        max_keys: int = 1024,
        key: Callable[..., Hashable] | None = None,
    ) -> None:
        self.max_age = require_positive("max_age", max_age, finite=False)
        self.max_keys = require_int("max_keys", max_keys, minimum=1)
        self._key = key
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[Hashable, tuple[object, float]] = (
            collections.OrderedDict()
        )

    def key_of(self, args: tuple[object, ...], kwargs: dict[str, object]) -> Hashable:
        """
        Return the key under which a call with these arguments is stored.
        """
        return None if self._key is None else self._key(*args, **kwargs)

    def store(self, key: Hashable, value: object, now: float) -> None:
        """
        Remember *value* as the latest good result for *key* at time *now*.
        """
        with self._lock:
            entries = self._entries
            entries[key] = (value, now)
            entries.move_to_end(key)
            if len(entries) > self.max_keys:
                entries.popitem(last=False)

    def lookup(self, key: Hashable, now: float) -> tuple[object, float] | None:
        """
        Return ``(value, age)`` for *key* if fresh enough, else None.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None

            value, stored_at = entry
            age = max(0.0, now - stored_at)
            if age > self.max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value, age

    def clear(self) -> None:
        """
        Forget every stored result.
        """
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"LastGood(max_age={self.max_age!r}, max_keys={self.max_keys!r})"


_MISSING = object()


class Fallback:
    """
    A fallback chain: primary, alternatives, last good value, default.

    Usable as `call`/`acall` (bare value), `call_result`/`acall_result`
    (value plus how it was obtained), as a decorator on sync and async
    functions, and as a pipeline stage (normally the outermost).

    Args:
        alternatives: callables tried in order after the primary, each as
            ``alternative(failure, *args, **kwargs)``; in `acall` they may be
            async.
        on: the failures that move to the next tier: exception types, or a
            predicate on the exception. Others propagate untouched.
        on_result: a predicate on a returned value; True means the value is
            not acceptable and the next tier is tried.
        last_good: a `LastGood` cache of the primary's results.
        default: the value returned when everything else failed.
        default_factory: builds that value instead, from the last failure.
    """

    __slots__ = (
        "_alternatives",
        "_catch",
        "_clock",
        "_default",
        "_default_factory",
        "_emitter",
        "_last_good",
        "_on_result",
        "_predicate",
        "_primary_info",
        "name",
    )

    def __init__(
        self,
        *alternatives: Callable[..., object],
        on: ExceptionSpec = Exception,
        on_result: Callable[[object], bool] | None = None,
        last_good: LastGood | None = None,
        default: object = _MISSING,
        default_factory: Callable[[Exception], object] | None = None,
        name: str = "fallback",
        clock: Clock = SYSTEM_CLOCK,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        for index, alternative in enumerate(alternatives):
            if not callable(alternative):
                raise ConfigurationError(
                    f"alternatives[{index}] must be callable, got {alternative!r}"
                )
        if default is not _MISSING and default_factory is not None:
            raise ConfigurationError("give either default or default_factory, not both")
        self._catch, self._predicate = exception_matcher("on", on)
        self._alternatives = alternatives
        self._on_result = on_result
        self._last_good = last_good
        self._default = default
        self._default_factory = default_factory
        self._clock = require_clock("clock", clock)
        self._emitter = EventEmitter(listeners)
        self.name = name
        self._primary_info = FallbackInfo(name, FallbackTier.PRIMARY)

    @property
    def last_good(self) -> LastGood | None:
        """
        The cache of the primary's good results, if any.
        """
        return self._last_good

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn*, falling back along the chain; return the first answer.
        """
        # The primary's success path is inlined here: it is the common case.
        value: R
        info: FallbackInfo
        try:
            result = fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            value, info = self._recover(exc, args, kwargs)
        else:
            if self._on_result is None and self._last_good is None:
                # Reading is cheap, setting is not: clear only what is set.
                if _info.get() is not None:
                    _info.set(None)
                return result
            if self._on_result is not None and self._on_result(result):
                value, info = self._recover(self._rejected(result), args, kwargs)
            else:
                value, info = self._kept(result, args, kwargs)

        _remember(info)
        return value

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn*, falling back along the chain; return the first answer.
        """
        value: R
        info: FallbackInfo
        try:
            result = await fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            value, info = await self._arecover(exc, args, kwargs)
        else:
            if self._on_result is None and self._last_good is None:
                if _info.get() is not None:
                    _info.set(None)
                return result
            if self._on_result is not None and self._on_result(result):
                value, info = await self._arecover(self._rejected(result), args, kwargs)
            else:
                value, info = self._kept(result, args, kwargs)

        _remember(info)
        return value

    def call_result(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> FallbackResult[R]:
        """
        Like `call`, but return the value with the tier that produced it.
        """
        value, info = self._run(fn, args, kwargs)
        return FallbackResult(value, info)

    async def acall_result(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> FallbackResult[R]:
        """
        Like `acall`, but return the value with the tier that produced it.
        """
        value, info = await self._arun(fn, args, kwargs)
        return FallbackResult(value, info)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate a sync or async function with this fallback chain.
        """
        simple = (
            self._on_result is None
            and self._last_good is None
            and self._predicate is None
        )
        if inspect.iscoroutinefunction(fn):
            if simple:
                return self._wrap_simple_async(fn)  # type: ignore[return-value]
            acall = self.acall

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
                return await acall(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        if simple:
            return self._wrap_simple(fn)
        call = self.call

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return call(fn, *args, **kwargs)

        return wrapper

    def _wrap_simple(self, fn: Callable[P, R]) -> Callable[P, R]:
        # Failures chosen by type alone, no result check, no last good value:
        # the success path is then the call and one context-variable read.
        catch, recover = self._catch, self._recover

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = fn(*args, **kwargs)
            except catch as exc:
                recovered: tuple[R, FallbackInfo] = recover(exc, args, kwargs)
                _remember(recovered[1])
                return recovered[0]
            if _info.get() is not None:
                _info.set(None)
            return result

        return wrapper

    def _wrap_simple_async(
        self, fn: Callable[P, Awaitable[R]]
    ) -> Callable[P, Awaitable[R]]:
        catch, arecover = self._catch, self._arecover

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = await fn(*args, **kwargs)
            except catch as exc:
                recovered: tuple[R, FallbackInfo] = await arecover(exc, args, kwargs)
                _remember(recovered[1])
                return recovered[0]
            if _info.get() is not None:
                _info.set(None)
            return result

        return wrapper

    def _run(
        self, fn: Callable[..., R], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> tuple[R, FallbackInfo]:
        try:
            result = fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            return self._recover(exc, args, kwargs)

        if self._on_result is not None and self._on_result(result):
            return self._recover(self._rejected(result), args, kwargs)
        return self._kept(result, args, kwargs)

    def _kept(
        self, result: R, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> tuple[R, FallbackInfo]:
        """
        Remember the primary's accepted result as the last good value.
        """
        if self._last_good is not None:
            key = self._last_good.key_of(args, kwargs)
            self._last_good.store(key, result, self._clock.now())
        return result, self._primary_info

    async def _arun(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> tuple[R, FallbackInfo]:
        try:
            result = await fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            return await self._arecover(exc, args, kwargs)

        if self._on_result is not None and self._on_result(result):
            return await self._arecover(self._rejected(result), args, kwargs)
        return self._kept(result, args, kwargs)

    def _recover(
        self, failure: Exception, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> tuple[R, FallbackInfo]:
        errors = [failure]
        for index, alternative in enumerate(self._alternatives):
            try:
                value = alternative(errors[-1], *args, **kwargs)
            except self._catch as exc:
                self._check_handled(exc)
                errors.append(exc)
                continue
            self._refuse_awaitable(value, f"alternatives[{index}]")
            if self._accepts(value, errors):
                return self._answered(
                    value, FallbackTier.ALTERNATIVE, index, 0.0, errors
                )

        served: tuple[R, FallbackInfo] | None = self._stale_or_default(
            errors, args, kwargs
        )
        if served is not None:
            return served
        factory = self._default_factory
        if factory is None:
            # Every failure is inside the group; chaining would repeat one.
            raise self._exhausted(errors) from None

        try:
            value = factory(errors[-1])
        except self._catch as exc:
            self._check_handled(exc)
            errors.append(exc)
            raise self._exhausted(errors) from None
        self._refuse_awaitable(value, "default_factory")
        return self._answered(value, FallbackTier.DEFAULT, None, 0.0, errors)

    async def _arecover(
        self, failure: Exception, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> tuple[R, FallbackInfo]:
        errors = [failure]
        for index, alternative in enumerate(self._alternatives):
            try:
                value = alternative(errors[-1], *args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except self._catch as exc:
                self._check_handled(exc)
                errors.append(exc)
                continue
            if self._accepts(value, errors):
                return self._answered(
                    value, FallbackTier.ALTERNATIVE, index, 0.0, errors
                )

        served: tuple[R, FallbackInfo] | None = self._stale_or_default(
            errors, args, kwargs
        )
        if served is not None:
            return served
        factory = self._default_factory
        if factory is None:
            # Every failure is inside the group; chaining would repeat one.
            raise self._exhausted(errors) from None

        try:
            value = factory(errors[-1])
            if inspect.isawaitable(value):
                value = await value
        except self._catch as exc:
            self._check_handled(exc)
            errors.append(exc)
            raise self._exhausted(errors) from None
        return self._answered(value, FallbackTier.DEFAULT, None, 0.0, errors)

    def _stale_or_default(
        self,
        errors: list[Exception],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> tuple[R, FallbackInfo] | None:
        """
        Serve the last good value, else a fixed default, else return None.
        """
        if self._last_good is not None:
            key = self._last_good.key_of(args, kwargs)
            hit = self._last_good.lookup(key, self._clock.now())
            if hit is not None:
                value, age = hit
                return self._answered(value, FallbackTier.LAST_GOOD, None, age, errors)

        if self._default is not _MISSING:
            return self._answered(
                self._default, FallbackTier.DEFAULT, None, 0.0, errors
            )
        return None

    def _refuse_awaitable(self, value: object, what: str) -> None:
        if inspect.isawaitable(value):
            _discard(value)
            raise TypeError(f"{self.name}: {what} is async; use acall() instead")

    def _check_handled(self, exc: Exception) -> None:
        # A failure outside `on` is a bug or a decision of the callee, not a
        # reason to degrade: it propagates as it is.
        if self._predicate is not None and not self._predicate(exc):
            raise exc

    def _accepts(self, value: object, errors: list[Exception]) -> bool:
        if self._on_result is None or not self._on_result(value):
            return True

        errors.append(self._rejected(value))
        return False

    def _rejected(self, value: object) -> ResultRejectedError:
        # Raised and caught so that it carries a traceback like the others.
        try:
            raise ResultRejectedError(value, source=self.name)
        except ResultRejectedError as exc:
            return exc

    def _answered(
        self,
        value: object,
        tier: FallbackTier,
        alternative: int | None,
        staleness: float,
        errors: list[Exception],
    ) -> tuple[R, FallbackInfo]:
        info = FallbackInfo(self.name, tier, alternative, staleness, tuple(errors))
        if self._emitter.wants(FallbackUsed):
            self._emitter.emit(
                FallbackUsed(
                    source=self.name,
                    tier=tier.value,
                    alternative=alternative,
                    staleness=staleness,
                    error=type(errors[0]).__qualname__,
                )
            )
        return cast(R, value), info

    def _exhausted(self, errors: list[Exception]) -> FallbackExhaustedError:
        _info.set(None)
        return FallbackExhaustedError(f"{self.name}: every tier failed", errors)

    def __repr__(self) -> str:
        return (
            f"Fallback(<{len(self._alternatives)} alternatives>, "
            f"last_good={self._last_good!r}, name={self.name!r})"
        )


def _discard(awaitable: object) -> None:
    # Close a coroutine we will not await, so Python does not warn about it.
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
