"""
`CircuitBreaker`: stop calling a dependency that keeps failing.

The breaker is a thin shell around `BreakerMachine` (the pure core in
`breaker_core`) and a store that keeps the machine's state (in memory by
default; `SqliteStore` or `RedisStore` to share it between processes). A
call through the breaker:

1. asks for admission: allowed (closed), a trial permit (half-open), or a
   `CircuitOpenError` raised at once (open, forced open, no permit free);
2. runs the protected function with no lock held;
3. reports the outcome with the generation it was admitted in, so that only
   outcomes admitted in the current state can move the state.

The sync and async shells differ by `await` only. On the default in-memory
store with a consecutive-failure rule, the closed-state success path takes no
lock: it advances an `itertools.count` (atomic under the GIL) and resets the
failure streak only when there is one.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import logging
import types
import uuid
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
)
from typing import ParamSpec, TypeVar, overload

from .._validation import (
    ExceptionSpec,
    exception_matcher,
    require_clock,
    require_positive,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import CircuitOpenError, ConfigurationError, StoreError
from ..events import EventEmitter, Listener
from ..stores.base import BreakerStore
from ..stores.memory import MemoryEntry, MemoryStore
from .breaker_adaptive import AdaptiveThreshold
from .breaker_core import (
    Admission,
    AdmissionKind,
    BreakerConfig,
    BreakerMachine,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
    Transition,
)
from .breaker_events import CallRejected, transition_event
from .breaker_shared import SharedLink, StoreErrorPolicy
from .windows import CountWindow, TimeWindow

__all__ = ["CircuitBreaker"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN


class _Ticket:
    """
    What an admitted call reports back with.
    """

    __slots__ = ("generation", "permit", "shared", "start")

    def __init__(
        self, generation: int, permit: str | None, shared: bool, start: float
    ) -> None:
        self.generation = generation
        self.permit = permit
        self.shared = shared
        self.start = start


# A ticket for calls the breaker lets through without judging them (disabled,
# or a failed store with on_store_error="allow").
_UNJUDGED = _Ticket(-1, None, False, 0.0)


_new_error = CircuitOpenError.__new__


class CircuitBreaker:
    """
    A circuit breaker named *name*: closed, open, half-open, and two operator
    states.

    Trip rules (any that holds opens the breaker):

    - `failure_threshold`: that many failures in a row (a success resets the
      streak). The default rule is 5 when no window is given.
    - `failure_rate` over `window` (a `CountWindow` or `TimeWindow`), once the
      window holds at least `min_calls` calls; 0.5 by default with a window.
    - `slow_call_rate` over the same window: the share of calls that took at
      least `slow_call` seconds (1.0 when only `slow_call` is given).
    - `adaptive`: an `AdaptiveThreshold` that replaces `failure_rate` with a
      threshold learned from the breaker's own past windows.

    Once open, calls fail fast with `CircuitOpenError` for `reset_timeout`
    seconds, times `reset_timeout_multiplier` for each re-open without a
    close, up to `reset_timeout_max`. Then `half_open_calls` trial calls may
    run at once; that many successes close the breaker, one failure re-opens
    it. A trial that never reports back gives its permit up after
    `half_open_timeout` seconds (default: `reset_timeout`).

    What counts: an exception matching `failure_on` (types or a predicate;
    default every `Exception`) is a failure unless it matches `ignore`; an
    ignored exception counts as nothing; any other exception counts as a
    success (the dependency answered). Cancellation, KeyboardInterrupt and
    SystemExit count as nothing. The exception always propagates unchanged,
    including from the call that trips the breaker.

    `store` shares the state (`SqliteStore`, `RedisStore`); breakers of one
    name in one store share one state. With a shared store, the closed state
    is cached for `sync_interval` seconds, so a call costs one store round
    trip (its outcome). If the store fails, `on_store_error` decides:
    ``"local"`` (default) judges calls in this process until the store
    answers again, ``"allow"`` lets every call through, ``"deny"`` rejects.
    The store is not asked again for `store_retry` seconds after a failure.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None = None,
        window: CountWindow | TimeWindow | None = None,
        failure_rate: float | None = None,
        min_calls: int = 10,
        slow_call: float | None = None,
        slow_call_rate: float | None = None,
        adaptive: AdaptiveThreshold | None = None,
        reset_timeout: float = 30.0,
        reset_timeout_multiplier: float = 1.0,
        reset_timeout_max: float | None = None,
        half_open_calls: int = 1,
        half_open_timeout: float | None = None,
        failure_on: ExceptionSpec | None = None,
        ignore: ExceptionSpec | None = None,
        store: BreakerStore | None = None,
        on_store_error: StoreErrorPolicy = "local",
        sync_interval: float = 0.25,
        store_retry: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        listeners: Iterable[Listener] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name must be a non-empty string, got {name!r}")
        if on_store_error not in ("local", "allow", "deny"):
            raise ConfigurationError(
                "on_store_error must be 'local', 'allow' or 'deny', "
                f"got {on_store_error!r}"
            )
        # A window alone trips on a failure rate of one half; a window with
        # only slow_call trips on the slow-call rate alone.
        only_slow = slow_call is not None and slow_call_rate is None
        if window is not None and failure_rate is None and adaptive is None:
            failure_rate = None if only_slow else 0.5
        if window is not None and slow_call is not None and slow_call_rate is None:
            slow_call_rate = 1.0
        if failure_threshold is None and window is None:
            failure_threshold = 5

        self.name = name
        self.config = BreakerConfig(
            failure_threshold=failure_threshold,
            window=window,
            failure_rate=failure_rate,
            min_calls=min_calls,
            slow_call=slow_call,
            slow_call_rate=slow_call_rate,
            adaptive=adaptive,
            reset_timeout=reset_timeout,
            reset_timeout_multiplier=reset_timeout_multiplier,
            reset_timeout_max=reset_timeout_max,
            half_open_calls=half_open_calls,
            half_open_timeout=half_open_timeout,
        )
        self._failure_types, self._failure_test = exception_matcher(
            "failure_on", failure_on
        )
        if failure_on is None:
            self._failure_types = (Exception,)
        self._ignore_types, self._ignore_test = exception_matcher("ignore", ignore)
        self._sync_interval = require_positive("sync_interval", sync_interval)
        self._store_retry = require_positive("store_retry", store_retry)
        self._on_store_error = on_store_error
        self._clock = require_clock("clock", clock)
        self._timed = slow_call is not None
        self._emitter = EventEmitter(listeners)
        self._last_failure: BaseException | None = None
        self._permits = itertools.count()
        self._tickets: contextvars.ContextVar[tuple[_Ticket, ...]] = (
            contextvars.ContextVar(f"recovery_breaker_{name}", default=())
        )
        window = self.config.window
        self._bucket_ms = (
            max(1, round(window.seconds * 1000 / window.buckets))
            if isinstance(window, TimeWindow)
            else 0
        )
        self._open_message = f"circuit {name!r} is open"
        self._retry_message: tuple[int, str] = (-1, "")
        if store is not None and not isinstance(store, BreakerStore):
            raise ConfigurationError(
                f"store must be a BreakerStore (MemoryStore, SqliteStore or "
                f"RedisStore), got {store!r}"
            )
        self._attach(store if store is not None else MemoryStore(clock=clock))

    def _attach(self, store: BreakerStore) -> None:
        self.store = store
        self._entry: MemoryEntry | None = None
        self._link: SharedLink | None = None
        if isinstance(store, MemoryStore):
            self._entry = store.entry(self.name, self.config)
            self._store_clock = store.clock
        else:
            self._link = SharedLink(
                store,
                name=self.name,
                config=self.config,
                clock=self._clock,
                sync_interval=self._sync_interval,
                store_retry=self._store_retry,
                policy=self._on_store_error,
                emitter=self._emitter,
            )
            self._store_clock = self._clock

        # The lock-free success path needs nothing but a streak to reset.
        fast = self._entry is not None and self.config.window is None
        self._fast: BreakerMachine | None = (
            self._entry.machine if fast and self._entry and not self._timed else None
        )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, store={self.store.describe()})"

    # -- calling ----------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call `fn(*args, **kwargs)` through the breaker and return its result.

        Raises `CircuitOpenError` without calling *fn* when the breaker
        refuses the call; any exception of *fn* propagates unchanged.
        """
        machine = self._fast
        if machine is not None and machine.state is _CLOSED:
            generation = machine.generation
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._settle_error(_Ticket(generation, None, False, 0.0), exc)
                raise
            next(machine.fast_successes)
            if machine.consecutive:
                self._end_streak(generation)
            return result

        entry = self._entry
        if entry is not None:
            machine = entry.machine
            if machine.state is _CLOSED:
                generation = machine.generation
                start = self._clock.now() if self._timed else 0.0
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    self._settle_error(_Ticket(generation, None, False, start), exc)
                    raise
                # A window that cannot trip on a success takes it lock-free
                # (see BreakerMachine: deferred successes).
                if (
                    machine.defer_ok
                    and machine.generation == generation
                    and not self._timed
                    and (not self._bucket_ms or self._same_bucket(machine))
                ):
                    next(machine.fast_successes)
                    return result
                self._succeed_local(entry, generation, start)
                return result
            # Raised here rather than deeper down: every frame an exception
            # unwinds through costs a traceback entry.
            now = self._store_clock.now()
            if machine.state is _OPEN and now < machine.open_until:
                raise self._reject_open(machine, now)

        ticket = self._admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_error(ticket, exc)
            raise
        self._settle(ticket, Outcome.SUCCESS)
        return result

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await `fn(*args, **kwargs)` through the breaker and return its result.

        The async twin of `call`; cancellation counts as nothing and gives
        back any trial permit.
        """
        machine = self._fast
        if machine is not None and machine.state is _CLOSED:
            generation = machine.generation
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._settle_error(_Ticket(generation, None, False, 0.0), exc)
                raise
            next(machine.fast_successes)
            if machine.consecutive:
                self._end_streak(generation)
            return result

        entry = self._entry
        if entry is not None:
            machine = entry.machine
            if machine.state is _CLOSED:
                generation = machine.generation
                start = self._clock.now() if self._timed else 0.0
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    self._settle_error(_Ticket(generation, None, False, start), exc)
                    raise
                if (
                    machine.defer_ok
                    and machine.generation == generation
                    and not self._timed
                    and (not self._bucket_ms or self._same_bucket(machine))
                ):
                    next(machine.fast_successes)
                    return result
                self._succeed_local(entry, generation, start)
                return result
            now = self._store_clock.now()
            if machine.state is _OPEN and now < machine.open_until:
                raise self._reject_open(machine, now)

        ticket = await self._aadmit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await self._asettle_error(ticket, exc)
            raise
        await self._asettle(ticket, Outcome.SUCCESS)
        return result

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[object, object, R]]
    ) -> Callable[P, Coroutine[object, object, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, object]) -> Callable[P, object]:
        """
        Decorate *fn* so every call goes through the breaker.

        Works on functions, methods, coroutine functions (the result is a
        coroutine function), generator and async generator functions (the
        whole iteration is one call; a consumer that stops early is not a
        failure).
        """
        if inspect.isasyncgenfunction(fn):
            wrapper: Callable[P, object] = self._wrap_async_generator(fn)
        elif inspect.isgeneratorfunction(fn):
            wrapper = self._wrap_generator(fn)
        elif inspect.iscoroutinefunction(fn):
            wrapper = self._wrap_coroutine(fn)
        elif callable(fn):
            wrapper = self._wrap_function(fn)
        else:
            raise TypeError(f"a circuit breaker decorates callables, got {fn!r}")

        functools.update_wrapper(wrapper, fn)
        return wrapper

    def _wrap_function(self, fn: Callable[P, R]) -> Callable[P, R]:
        call = self.call
        machine = self._fast
        if machine is None:

            def breaker_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                return call(fn, *args, **kwargs)

            return breaker_wrapper

        # The lock-free closed path of `call`, inlined: one frame less.
        settle_error = self._settle_error
        end_streak = self._end_streak
        successes = machine.fast_successes

        reject_open = self._reject_open
        store_now = self._store_clock.now

        def fast_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            state = machine.state
            if state is not _CLOSED:
                now = store_now()
                if state is _OPEN and now < machine.open_until:
                    raise reject_open(machine, now)
                return call(fn, *args, **kwargs)
            generation = machine.generation
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                settle_error(_Ticket(generation, None, False, 0.0), exc)
                raise
            next(successes)
            if machine.consecutive:
                end_streak(generation)
            return result

        return fast_wrapper

    def _wrap_coroutine(
        self, fn: Callable[P, Awaitable[R]]
    ) -> Callable[P, Coroutine[object, object, R]]:
        acall = self.acall
        machine = self._fast
        if machine is None:

            async def breaker_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                return await acall(fn, *args, **kwargs)

            return breaker_wrapper

        # The lock-free closed path of `acall`, inlined: one coroutine less.
        settle_error = self._settle_error
        end_streak = self._end_streak
        successes = machine.fast_successes

        async def fast_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if machine.state is not _CLOSED:
                return await acall(fn, *args, **kwargs)
            generation = machine.generation
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                settle_error(_Ticket(generation, None, False, 0.0), exc)
                raise
            next(successes)
            if machine.consecutive:
                end_streak(generation)
            return result

        return fast_wrapper

    def _wrap_generator(
        self, fn: Callable[P, Generator[R, object, object]]
    ) -> Callable[P, Generator[R, object, object]]:
        def breaker_wrapper(
            *args: P.args, **kwargs: P.kwargs
        ) -> Generator[R, object, object]:
            ticket = self._admit()
            try:
                result = yield from fn(*args, **kwargs)
            except GeneratorExit:
                # The consumer stopped early: the dependency did not fail.
                self._settle(ticket, Outcome.SUCCESS)
                raise
            except BaseException as exc:
                self._settle_error(ticket, exc)
                raise
            self._settle(ticket, Outcome.SUCCESS)
            return result

        return breaker_wrapper

    def _wrap_async_generator(
        self, fn: Callable[P, AsyncGenerator[R, object]]
    ) -> Callable[P, AsyncGenerator[R, object]]:
        async def breaker_wrapper(
            *args: P.args, **kwargs: P.kwargs
        ) -> AsyncGenerator[R, object]:
            ticket = await self._aadmit()
            inner = fn(*args, **kwargs)
            try:
                item = await inner.__anext__()
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        raise
                    except BaseException as exc:  # noqa: BLE001 - forwarded, as yield from does
                        item = await inner.athrow(exc)
                    else:
                        item = await inner.asend(sent)
            except StopAsyncIteration:
                await self._asettle(ticket, Outcome.SUCCESS)
            except GeneratorExit:
                # The consumer stopped early: the dependency did not fail.
                await inner.aclose()
                await self._asettle(ticket, Outcome.SUCCESS)
                raise
            except BaseException as exc:
                await self._asettle_error(ticket, exc)
                raise

        return breaker_wrapper

    # -- context managers -------------------------------------------------

    def __enter__(self) -> CircuitBreaker:
        ticket = self._admit()
        self._tickets.set((*self._tickets.get(), ticket))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        ticket = self._pop_ticket()
        if exc is None:
            self._settle(ticket, Outcome.SUCCESS)
        else:
            self._settle_error(ticket, exc)

    async def __aenter__(self) -> CircuitBreaker:
        ticket = await self._aadmit()
        self._tickets.set((*self._tickets.get(), ticket))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        ticket = self._pop_ticket()
        if exc is None:
            await self._asettle(ticket, Outcome.SUCCESS)
        else:
            await self._asettle_error(ticket, exc)

    def _pop_ticket(self) -> _Ticket:
        tickets = self._tickets.get()
        if not tickets:
            raise RuntimeError(
                f"circuit {self.name!r}: __exit__ without a matching __enter__ "
                "in this thread or task"
            )
        self._tickets.set(tickets[:-1])
        return tickets[-1]

    # -- admission --------------------------------------------------------

    def _admit(self) -> _Ticket:
        link = self._link
        if link is None:
            return self._admit_local(self._entry)  # type: ignore[arg-type]

        now = self._clock.now()
        start = now if self._timed else 0.0
        cached = link.cached(now)
        if cached is not None:
            return self._ticket_for(cached, shared=True, start=start)
        if not link.due(now):
            return self._admit_fallback(link, start)

        permit = uuid.uuid4().hex
        try:
            admission = link.store.acquire(
                self.name, self.config, permit, rejected=link.take_rejected()
            )
        except StoreError as exc:
            link.failed(exc)
            return self._admit_fallback(link, start)
        link.absorb(admission.state, admission.generation, admission.retry_after)
        return self._ticket_for(admission, shared=True, start=start)

    async def _aadmit(self) -> _Ticket:
        link = self._link
        if link is None:
            return self._admit_local(self._entry)  # type: ignore[arg-type]

        now = self._clock.now()
        start = now if self._timed else 0.0
        cached = link.cached(now)
        if cached is not None:
            return self._ticket_for(cached, shared=True, start=start)
        if not link.due(now):
            return self._admit_fallback(link, start)

        permit = uuid.uuid4().hex
        try:
            admission = await link.store.aacquire(
                self.name, self.config, permit, rejected=link.take_rejected()
            )
        except StoreError as exc:
            link.failed(exc)
            return self._admit_fallback(link, start)
        link.absorb(admission.state, admission.generation, admission.retry_after)
        return self._ticket_for(admission, shared=True, start=start)

    def _admit_fallback(self, link: SharedLink, start: float) -> _Ticket:
        admission = link.fallback_admission()
        if admission is not None:
            return self._ticket_for(admission, shared=False, start=start)
        fallback = link.fallback
        if fallback is None:
            # The store came back between the check and now.
            return _UNJUDGED
        return self._admit_local(fallback)

    def _admit_local(self, entry: MemoryEntry) -> _Ticket:
        machine = entry.machine
        start = self._clock.now() if self._timed else 0.0
        state = machine.state
        # Closed, and open before its time, are decided without the lock:
        # reading two attributes gives an answer that was true at that moment.
        if state is _CLOSED:
            return _Ticket(machine.generation, None, False, start)
        now = self._store_clock.now()
        if state is _OPEN and now < machine.open_until:
            next(machine.fast_rejections)
            raise self._rejection(state, machine.open_until - now)

        with entry.lock:
            admission = machine.acquire(now, str(next(self._permits)))
        return self._ticket_for(admission, shared=False, start=start)

    def _ticket_for(
        self, admission: Admission, *, shared: bool, start: float
    ) -> _Ticket:
        if admission.transition is not None:
            self._announce(admission.transition)
        kind = admission.kind
        if kind is AdmissionKind.REJECT:
            raise self._rejection(admission.state, admission.retry_after)
        if kind is AdmissionKind.BYPASS:
            return _UNJUDGED
        return _Ticket(admission.generation, admission.permit, shared, start)

    def _reject_open(self, machine: BreakerMachine, now: float) -> CircuitOpenError:
        next(machine.fast_rejections)
        return self._rejection(_OPEN, machine.open_until - now)

    def _rejection(
        self, state: BreakerState, retry_after: float | None
    ) -> CircuitOpenError:
        """
        Return the `CircuitOpenError` its constructor would build, for less.

        Rejecting is the hot path of an open breaker, and the constructor's
        chain of `__init__` calls costs more than raising and catching the
        error; so the error is made with `__new__` and its attributes set
        here. A test keeps this in step with the constructor (same type,
        message and attributes).
        """
        if self._emitter.wants(CallRejected):
            self._emitter.emit(
                CallRejected(source=self.name, state=state, retry_after=retry_after)
            )

        message = self._open_message
        if retry_after is not None:
            # Formatting a float costs more than the rest of a rejection, so
            # rejections within one millisecond share one message (the time
            # rounded half up to the millisecond). The pair is swapped whole:
            # threads never see a message of another millisecond.
            millis = int(retry_after * 1000 + 0.5)
            cached = self._retry_message
            if cached[0] != millis:
                text = "%s; next trial in %.3f s" % (message, millis / 1000)  # noqa: UP031 - the fastest formatting
                cached = self._retry_message = (millis, text)
            message = cached[1]
        error = _new_error(CircuitOpenError, message)
        error.retry_after = retry_after
        error.name = self.name
        error.last_failure = self._last_failure
        return error

    # -- settling ---------------------------------------------------------

    def _classify(self, exc: BaseException) -> Outcome:
        if not isinstance(exc, Exception):
            return Outcome.CANCELLED
        if isinstance(exc, self._ignore_types) and (
            self._ignore_test is None or self._ignore_test(exc)
        ):
            return Outcome.IGNORED
        if isinstance(exc, self._failure_types) and (
            self._failure_test is None or self._failure_test(exc)
        ):
            self._last_failure = exc
            return Outcome.FAILURE
        return Outcome.SUCCESS

    def _duration(self, ticket: _Ticket) -> float:
        return self._clock.now() - ticket.start if self._timed else 0.0

    def _settle(self, ticket: _Ticket, outcome: Outcome) -> None:
        if ticket is _UNJUDGED:
            return
        if ticket.shared:
            link = self._link
            assert link is not None
            try:
                view = link.store.record(
                    self.name,
                    self.config,
                    ticket.generation,
                    ticket.permit,
                    outcome,
                    self._duration(ticket),
                    rejected=link.take_rejected(),
                )
            except StoreError as exc:
                link.failed(exc)
                return
            self._absorb_view(link, view)
            return
        self._settle_local(ticket, outcome)

    async def _asettle(self, ticket: _Ticket, outcome: Outcome) -> None:
        if ticket is _UNJUDGED:
            return
        if ticket.shared:
            link = self._link
            assert link is not None
            try:
                view = await link.store.arecord(
                    self.name,
                    self.config,
                    ticket.generation,
                    ticket.permit,
                    outcome,
                    self._duration(ticket),
                    rejected=link.take_rejected(),
                )
            except StoreError as exc:
                link.failed(exc)
                return
            self._absorb_view(link, view)
            return
        self._settle_local(ticket, outcome)

    def _settle_error(self, ticket: _Ticket, exc: BaseException) -> None:
        self._settle(ticket, self._classify(exc))

    async def _asettle_error(self, ticket: _Ticket, exc: BaseException) -> None:
        await self._asettle(ticket, self._classify(exc))

    def _local_entry(self) -> MemoryEntry | None:
        if self._entry is not None:
            return self._entry
        link = self._link
        return None if link is None else link.fallback

    def _settle_local(self, ticket: _Ticket, outcome: Outcome) -> None:
        entry = self._local_entry()
        if entry is None:
            # The fallback this ticket came from was dropped when the store
            # came back; its outcome has nowhere to go.
            return
        duration = self._duration(ticket)
        with entry.lock:
            view = entry.machine.record(
                self._store_clock.now(),
                ticket.generation,
                ticket.permit,
                outcome,
                duration,
            )
        if view.transition is not None:
            self._announce(view.transition)

    def _same_bucket(self, machine: BreakerMachine) -> bool:
        # A TimeWindow defers successes only within the bucket it noted.
        now_ms = round(self._store_clock.now() * 1000)
        return now_ms // self._bucket_ms == machine.defer_bucket

    def _succeed_local(self, entry: MemoryEntry, generation: int, start: float) -> None:
        duration = self._clock.now() - start if self._timed else 0.0
        now = self._store_clock.now()
        lock = entry.lock
        lock.acquire()
        try:
            transition = entry.machine.record_success(now, generation, duration)
        finally:
            lock.release()
        if transition is not None:
            self._announce(transition)

    def _end_streak(self, generation: int) -> None:
        entry = self._entry
        assert entry is not None
        with entry.lock:
            machine = entry.machine
            if machine.generation == generation and machine.state is _CLOSED:
                machine.consecutive = 0

    def _absorb_view(self, link: SharedLink, view: StateView) -> None:
        link.absorb(view.state, view.generation, view.retry_after)
        if view.transition is not None:
            self._announce(view.transition)

    def _announce(self, transition: Transition) -> None:
        self._emitter.emit(transition_event(self.name, transition))

    # -- state, metrics and operator controls -----------------------------------

    def add_listener(self, listener: Listener) -> None:
        """
        Send this breaker's events (every state change, rejections) to *listener*.
        """
        self._emitter.add(listener)

    @property
    def state(self) -> BreakerState:
        """
        The current state; an open breaker whose time is up reads half-open.
        """
        entry = self._local_entry()
        if entry is not None and (self._link is None or self._link.down):
            with entry.lock:
                transition = entry.machine.refresh(self._store_clock.now())
                state = entry.machine.state
            if transition is not None:
                self._announce(transition)
            return state

        metrics = self.metrics()
        return metrics.state

    @property
    def last_failure(self) -> BaseException | None:
        """
        The exception that last counted as a failure in this process, if any.
        """
        return self._last_failure

    def metrics(self) -> BreakerMetrics:
        """
        Return the state and counters (shared ones, with a shared store).

        An open breaker whose time is up reads as half-open.
        """
        entry = self._local_entry()
        link = self._link
        if link is None or link.down:
            assert entry is not None
            with entry.lock:
                transition = entry.machine.refresh(self._store_clock.now())
                metrics = entry.machine.metrics(self.name, self._store_clock.now())
            if transition is not None:
                self._announce(transition)
            return metrics

        try:
            found = link.store.metrics(self.name, self.config)
        except StoreError as exc:
            link.failed(exc)
            return self.metrics()
        link.answered()
        if found is None:
            return BreakerMachine(self.config, 0.0).metrics(self.name, 0.0)
        return found

    def reset_metrics(self) -> None:
        """
        Set every counter to zero; the state is kept.
        """
        entry = self._local_entry()
        if entry is not None:
            with entry.lock:
                entry.machine.reset_metrics()
        if self._link is not None and not self._link.down:
            self._link.take_rejected()
            self.store.reset_metrics(self.name, self.config)

    def force_open(self) -> None:
        """
        Reject every call until `reset()`: an operator's kill switch.
        """
        self._force(BreakerState.FORCED_OPEN)

    def disable(self) -> None:
        """
        Let every call through and judge none, until `reset()`.
        """
        self._force(BreakerState.DISABLED)

    def reset(self) -> None:
        """
        Close the breaker with a fresh window, whatever its state.
        """
        self._force(BreakerState.CLOSED)

    def close(self) -> None:
        """
        Close the circuit: the same as `reset()`.
        """
        self.reset()

    def _force(self, state: BreakerState) -> None:
        link = self._link
        if link is not None:
            try:
                view = link.store.force(self.name, self.config, state)
            except StoreError as exc:
                link.failed(exc)
            else:
                self._absorb_view(link, view)
                return

        entry = self._local_entry()
        assert entry is not None
        with entry.lock:
            view = entry.machine.force(self._store_clock.now(), state)
        if view.transition is not None:
            self._announce(view.transition)
