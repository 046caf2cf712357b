"""
Rate limiting with GCRA: at most `rate` calls per `period`, bursts of `capacity`.

The generic cell rate algorithm keeps one number per limiter, the
theoretical arrival time (TAT): the moment the limiter would be idle again
if it had admitted every request so far at its steady rate. With emission
interval ``T = period / rate`` (integer microseconds), a request of cost
*c* arriving at *now* is admitted when::

    new_tat = max(tat, now) + T * c
    now >= new_tat - T * capacity

and then `new_tat` is stored. Two guarantees follow, and the tests pin both:

- from idle, exactly `capacity` unit requests are admitted at once;
- over any window of length *W*, at most ``capacity + floor(W / T)`` unit
  requests are admitted, whichever processes or hosts made them, as long
  as they share a store.

When a request is refused, ``retry_after = new_tat - T * capacity - now``
is exactly when the same request would pass. A cost above `capacity` can
never pass and is refused with `retry_after` None.

The decision is the pure function `Gcra.decide`; stores (memory, SQLite,
Redis, in `recovery.policies.ratelimit_stores`) apply it atomically, one
transaction or one Lua script per check.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from typing import ClassVar, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

from .._validation import (
    require_clock,
    require_fraction,
    require_int,
    require_non_negative,
    require_positive,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError, RateLimitedError, StoreUnavailableError
from ..events import Event, EventEmitter, Listener

__all__ = [
    "Gcra",
    "LimiterStore",
    "LimiterStoreFailed",
    "LimiterStoreRecovered",
    "RateLimitDecision",
    "RateLimited",
    "RateLimiter",
]

P = ParamSpec("P")
R = TypeVar("R")

_US = 1_000_000

# How far a stored TAT may run ahead of a caller's clock before it is
# taken for a clock that went back (see `Gcra.decide`).
_CLOCK_JUMP_US = 60 * _US


# Not frozen: a frozen dataclass costs a few hundred nanoseconds more to build,
# and one is built on every check. Treat it as read-only all the same.
@dataclasses.dataclass(slots=True)
class RateLimitDecision:
    """
    The answer to one check; true when the request was admitted.

    `remaining` is how many more unit requests would pass right now;
    `retry_after` (seconds) is when a refused request would pass, None when
    it never can (cost above capacity); `reset_after` is when the limiter
    is idle again. They map to the `RateLimit-*` and `Retry-After` headers.
    """

    allowed: bool
    remaining: int
    retry_after: float | None
    reset_after: float

    def __bool__(self) -> bool:
        return self.allowed


@dataclasses.dataclass(frozen=True, slots=True)
class Gcra:
    """
    The pure GCRA decision: emission interval and burst, in integer µs.
    """

    emission_us: int
    capacity: int

    def decide(
        self, tat_us: int | None, now_us: int, cost: int
    ) -> tuple[RateLimitDecision, int | None]:
        """
        Decide one request; return the decision and the TAT to store (or None).
        """
        emission, capacity = self.emission_us, self.capacity
        horizon = emission * capacity
        if cost > capacity:
            reset = max(0, (tat_us or now_us) - now_us)
            return RateLimitDecision(False, 0, None, reset / _US), None

        # A stored TAT never lies more than `horizon` ahead of the time it
        # was stored at, but a caller may read its clock a little before
        # another one stores (it then waited for the lock), so only a TAT
        # far beyond that means the clock went back: a reboot reset the
        # host's monotonic clock, or Redis failed over. Start from idle then,
        # rather than refuse every call for that long.
        if tat_us is None or tat_us > now_us + horizon + _CLOCK_JUMP_US:
            tat_us = now_us
        tat = max(tat_us, now_us)
        new_tat = tat + emission * cost
        allow_at = new_tat - horizon
        if now_us < allow_at:
            decision = RateLimitDecision(
                False, 0, (allow_at - now_us) / _US, (tat - now_us) / _US
            )
            return decision, None

        remaining = (now_us - allow_at) // emission
        return RateLimitDecision(
            True, remaining, 0.0, (new_tat - now_us) / _US
        ), new_tat


@runtime_checkable
class LimiterStore(Protocol):
    """
    Where limiter state lives; each check is one atomic read-decide-write.

    *now_us* is the caller's clock in microseconds; a store with a clock of
    its own (Redis) ignores it. Raise `StoreUnavailableError` when the store
    cannot be reached.
    """

    def check(self, name: str, gcra: Gcra, cost: int, now_us: int) -> RateLimitDecision:
        """
        Apply *gcra* to limiter *name* atomically and return the decision.
        """
        ...

    async def acheck(
        self, name: str, gcra: Gcra, cost: int, now_us: int
    ) -> RateLimitDecision:
        """
        The async twin of `check`.
        """
        ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RateLimited(Event):
    """
    A call was refused by a rate limiter.
    """

    retry_after: float | None

    kind: ClassVar[str] = "rate_limited"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: call rate limited (retry after %s s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "retry_after")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimiterStoreFailed(Event):
    """
    The limiter's store could not be reached; the store-error policy applies.
    """

    error: str
    policy: str

    kind: ClassVar[str] = "limiter_store_failed"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "%s: rate-limit store unreachable (%s); calls are %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "error", "policy")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimiterStoreRecovered(Event):
    """
    The limiter's store answers again after a failure.
    """

    kind: ClassVar[str] = "limiter_store_recovered"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "%s: rate-limit store reachable again"


StoreErrorPolicy = Literal["allow", "deny", "local", "raise"]

_POLICY_WORDS = {
    "allow": "allowed",
    "deny": "refused",
    "local": "limited in this process alone",
    "raise": "failing",
}


class RateLimiter:
    """
    At most `rate` calls per `period` seconds, with bursts up to `capacity`.

    `try_acquire()` answers at once with a `RateLimitDecision`;
    `acquire()` waits until admitted (or raises `RateLimitedError` when the
    wait would exceed its max_wait); `call`/`acall` and the decorator admit
    the call or raise `RateLimitedError` with `retry_after`, after waiting
    up to `max_wait` seconds if asked.

    Args:
        rate: requests per period, > 0.
        period: seconds, > 0.
        capacity: requests admitted at once from idle; defaults to the
            integer part of *rate* (at least 1).
        store: where the state lives: a `MemoryLimiterStore` of its own by
            default, or a shared SQLite or Redis store.
        max_wait: how long `call`/`acall` may wait for a slot, in seconds.
        on_store_error: when the store is unreachable, ``"allow"`` the call
            (fail open, the default), ``"deny"`` it, ``"raise"`` the
            `StoreUnavailableError`, or limit calls in this process alone
            (``"local"``) at `local_share` of the rate and burst.
        local_share: the fraction of the limit one process may use while
            its shared store is down under ``"local"``; about one over the
            number of processes sharing the limit.
    """

    __slots__ = (
        "_clock",
        "_emitter",
        "_gcra",
        "_local",
        "_local_gcra",
        "_on_store_error",
        "_state_lock",
        "_store",
        "_store_failed",
        "capacity",
        "max_wait",
        "name",
        "period",
        "rate",
    )

    def __init__(
        self,
        rate: float,
        period: float = 1.0,
        *,
        capacity: int | None = None,
        store: LimiterStore | None = None,
        max_wait: float = 0.0,
        on_store_error: StoreErrorPolicy = "allow",
        local_share: float = 1.0,
        name: str = "limiter",
        clock: Clock = SYSTEM_CLOCK,
        listeners: tuple[Listener, ...] = (),
    ) -> None:
        self.rate = require_positive("rate", rate)
        self.period = require_positive("period", period)
        self.capacity = require_int(
            "capacity",
            max(1, int(self.rate)) if capacity is None else capacity,
            minimum=1,
        )
        self.max_wait = require_non_negative("max_wait", max_wait, finite=False)
        if on_store_error not in _POLICY_WORDS:
            raise ConfigurationError(
                "on_store_error must be 'allow', 'deny', 'local' or 'raise', "
                f"got {on_store_error!r}"
            )
        self._gcra = Gcra(_emission_us(self.rate, self.period), self.capacity)
        if store is None:
            from .ratelimit_stores import MemoryLimiterStore

            store = MemoryLimiterStore()
        self._store = store
        self._on_store_error = on_store_error
        share = require_fraction("local_share", local_share)
        self._local_gcra = Gcra(
            _emission_us(self.rate * share, self.period),
            max(1, math.floor(self.capacity * share)),
        )
        self._local: LimiterStore | None = None
        self._store_failed = False
        self._state_lock = threading.Lock()
        self._clock = require_clock("clock", clock)
        self._emitter = EventEmitter(listeners)
        self.name = name

    @property
    def emission_interval(self) -> float:
        """
        Seconds between two requests at the steady rate (``period / rate``).
        """
        return self._gcra.emission_us / _US

    def try_acquire(self, cost: int = 1) -> RateLimitDecision:
        """
        Take *cost* units if they are available now; never waits.
        """
        now_us = round(self._clock.now() * _US)
        try:
            decision = self._store.check(self.name, self._gcra, cost, now_us)
        except StoreUnavailableError as exc:
            return self._store_down(exc, cost, now_us)

        if self._store_failed:
            self._store_back()
        return decision

    async def atry_acquire(self, cost: int = 1) -> RateLimitDecision:
        """
        The async twin of `try_acquire` (a shared store is awaited).
        """
        now_us = round(self._clock.now() * _US)
        try:
            decision = await self._store.acheck(self.name, self._gcra, cost, now_us)
        except StoreUnavailableError as exc:
            return self._store_down(exc, cost, now_us)

        if self._store_failed:
            self._store_back()
        return decision

    def acquire(self, cost: int = 1, *, max_wait: float | None = None) -> None:
        """
        Take *cost* units, sleeping until they are available.

        Raises `RateLimitedError` at once when the wait would pass *max_wait*
        seconds (None waits as long as needed) or can never end.
        """
        decision = self.try_acquire(cost)
        if not decision.allowed:
            self._wait_admitted(decision, cost, max_wait)

    async def aacquire(self, cost: int = 1, *, max_wait: float | None = None) -> None:
        """
        The async twin of `acquire`.
        """
        decision = await self.atry_acquire(cost)
        if not decision.allowed:
            await self._await_admitted(decision, cost, max_wait)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* if admitted (waiting up to `max_wait`); else raise.
        """
        decision = self.try_acquire()
        if not decision.allowed:
            self._wait_admitted(decision, 1, self.max_wait)
        return fn(*args, **kwargs)

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* if admitted (waiting up to `max_wait`); else raise.
        """
        decision = await self.atry_acquire()
        if not decision.allowed:
            await self._await_admitted(decision, 1, self.max_wait)
        return await fn(*args, **kwargs)

    def _wait_admitted(
        self, decision: RateLimitDecision, cost: int, max_wait: float | None
    ) -> None:
        # Sleep exactly until the refused request would pass, then ask
        # again: another caller may have taken the slot meanwhile.
        deadline = None if max_wait is None else self._clock.now() + max_wait
        while not decision.allowed:
            self._clock.sleep(self._wait_or_raise(decision, deadline))
            decision = self.try_acquire(cost)

    async def _await_admitted(
        self, decision: RateLimitDecision, cost: int, max_wait: float | None
    ) -> None:
        deadline = None if max_wait is None else self._clock.now() + max_wait
        while not decision.allowed:
            await self._clock.asleep(self._wait_or_raise(decision, deadline))
            decision = await self.atry_acquire(cost)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate a sync or async function so that each call is rate limited.
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

    def _wait_or_raise(
        self, decision: RateLimitDecision, deadline: float | None
    ) -> float:
        """
        Return how long to sleep before trying again, or raise if too long.
        """
        wait = decision.retry_after
        if wait is None or (
            deadline is not None and self._clock.now() + wait > deadline
        ):
            if self._emitter.wants(RateLimited):
                self._emitter.emit(RateLimited(source=self.name, retry_after=wait))
            raise RateLimitedError(
                f"rate limiter {self.name!r} refused the call "
                f"({self.rate:g} per {self.period:g} s, burst {self.capacity})",
                retry_after=wait,
            )

        return wait

    def _store_down(
        self, exc: StoreUnavailableError, cost: int, now_us: int
    ) -> RateLimitDecision:
        policy = self._on_store_error
        with self._state_lock:
            first, self._store_failed = not self._store_failed, True
        if first and self._emitter.wants(LimiterStoreFailed):
            self._emitter.emit(
                LimiterStoreFailed(
                    source=self.name,
                    error=f"{type(exc).__name__}: {exc}",
                    policy=_POLICY_WORDS[policy],
                )
            )
        if policy == "raise":
            raise exc
        if policy == "allow":
            return RateLimitDecision(True, 0, 0.0, 0.0)
        if policy == "local":
            return self._local_check(cost, now_us)

        return RateLimitDecision(False, 0, None, 0.0)

    def _local_check(self, cost: int, now_us: int) -> RateLimitDecision:
        if self._local is None:
            from .ratelimit_stores import MemoryLimiterStore

            self._local = MemoryLimiterStore()
        return self._local.check(self.name, self._local_gcra, cost, now_us)

    def _store_back(self) -> None:
        # Under the lock so that one change of state gives one event, even
        # when many threads see the store answer again at once.
        with self._state_lock:
            was_failed, self._store_failed = self._store_failed, False
        if was_failed and self._emitter.wants(LimiterStoreRecovered):
            self._emitter.emit(LimiterStoreRecovered(source=self.name))

    def __repr__(self) -> str:
        return (
            f"RateLimiter({self.rate:g}, {self.period:g}, capacity={self.capacity}, "
            f"name={self.name!r})"
        )


def _emission_us(rate: float, period: float) -> int:
    """
    Return the emission interval in whole µs, refusing rounding over 1 %.
    """
    exact = period * _US / rate
    emission = round(exact)
    if emission < 1 or abs(emission - exact) > exact / 100:
        raise ConfigurationError(
            f"rate {rate:g} per {period:g} s gives an emission interval of "
            f"{exact:.3f} µs, which whole microseconds cannot represent within "
            "1 %; lower the rate or lengthen the period"
        )

    return emission
