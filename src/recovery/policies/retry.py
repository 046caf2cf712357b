"""
Retry: call again after a failure, waiting a little longer each time.

A `Retry` is an immutable policy that many threads and tasks can share. Each
call through it gets a fresh `_Run`, the pure decision core: told that an
attempt failed and what time it is, it answers with the delay before the
next attempt, or with the decision to give up. The sync and async shells
only call, sleep and report; they differ by `await` alone.

Giving up re-raises the last attempt's own exception, traceback intact, with
a note saying how many attempts were made over how long.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from types import TracebackType
from typing import Any, Literal, Never, ParamSpec, Protocol, TypeVar, cast, overload

from .. import _testmode, events
from .._validation import (
    ExceptionSpec,
    exception_matcher,
    require_clock,
    require_int,
    require_non_negative,
    require_rng,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..events import EventEmitter, Listener
from .backoff import Backoff, exponential
from .hints import hint_seconds
from .retry_events import (
    AttemptFailed,
    GaveUp,
    Recovered,
    RetryOutcome,
    RetryScheduled,
    RetryStatistics,
)

__all__ = ["Attempt", "ResultPredicate", "Retry", "RetryBudgetLike", "retry"]

_logger = AttemptFailed.logger
# Read through module names: enum lookups on the class are slow in 3.11.
_PENDING = RetryOutcome.PENDING
_SUCCEEDED = RetryOutcome.SUCCEEDED
_GAVE_UP = RetryOutcome.GAVE_UP

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# A predicate on whatever the call returns. Never as the parameter type lets
# any one-argument predicate fit, whatever type it declares.
ResultPredicate = Callable[[Never], bool]

_DEFAULT_BACKOFF = exponential(initial=0.1, multiplier=2.0, cap=10.0, jitter="full")
_LONG_HINT_CHOICES = ("cap", "give_up")


class RetryBudgetLike(Protocol):
    """
    What `Retry` needs of a retry budget.
    """

    def record_success(self) -> None:
        """
        Note a successful call; successes earn the right to retry.
        """

    def try_withdraw(self) -> bool:
        """
        Spend one retry if the budget allows it; return whether it did.
        """
        ...


class Retry:
    """
    A retry policy: which failures to retry, how often, and how long to wait.

    Args:
        on: the exceptions to retry: a type, a tuple of types, or a predicate
            taking the exception. Only `Exception` subclasses can match.
        retry_if_result: a predicate on the returned value; true means the
            attempt failed and is retried. When retrying stops, the last
            result is returned.
        attempts: the most attempts in all, first included (None: no limit).
        deadline: seconds from the start of the first attempt after which
            no attempt starts. No sleep is begun that would end past it: the
            call gives up at once instead, unless `attempt_at_deadline` is
            set, which shortens that last sleep to end on the deadline.
        backoff: the delay schedule (see `recovery.policies.backoff`).
        max_hint: the longest `retry_after` hint honoured, in seconds; the
            backoff's cap by default. Longer hints are cut to it, or make
            the call give up at once with `on_long_hint="give_up"`.
        budget: a retry budget that every retry must draw from.
        clock, rng: the clock to read and sleep on, and the randomness for
            jitter; inject both in tests.
        name, listeners: the name events carry, and listeners for them.
    """

    __slots__ = (
        "_attempt_at_deadline",
        "_backoff",
        "_budget",
        "_catch",
        "_clock",
        "_emitter",
        "_give_up_on_long_hint",
        "_max_hint",
        "_predicate",
        "_retry_if_result",
        "_rng",
        "attempts",
        "deadline",
        "name",
    )

    def __init__(
        self,
        *,
        on: ExceptionSpec = Exception,
        retry_if_result: ResultPredicate | None = None,
        attempts: int | None = 3,
        deadline: float | None = None,
        backoff: Backoff = _DEFAULT_BACKOFF,
        max_hint: float | None = None,
        on_long_hint: Literal["cap", "give_up"] = "cap",
        attempt_at_deadline: bool = False,
        budget: RetryBudgetLike | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        name: str = "retry",
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._catch, self._predicate = exception_matcher("on", on)
        if retry_if_result is not None and not callable(retry_if_result):
            raise ConfigurationError(
                f"retry_if_result must be a callable, got {retry_if_result!r}"
            )
        if not isinstance(backoff, Backoff):
            raise ConfigurationError(
                f"backoff must be a Backoff (from constant, linear or exponential), "
                f"got {backoff!r}"
            )
        if on_long_hint not in _LONG_HINT_CHOICES:
            raise ConfigurationError(
                f"on_long_hint must be 'cap' or 'give_up', got {on_long_hint!r}"
            )

        self.attempts = (
            None if attempts is None else require_int("attempts", attempts, minimum=1)
        )
        self.deadline = (
            None if deadline is None else require_non_negative("deadline", deadline)
        )
        self._max_hint = (
            backoff.cap
            if max_hint is None
            else require_non_negative("max_hint", max_hint)
        )
        self._retry_if_result = cast("Callable[[object], bool] | None", retry_if_result)
        self._backoff = backoff
        self._give_up_on_long_hint = on_long_hint == "give_up"
        self._attempt_at_deadline = attempt_at_deadline
        self._budget = budget
        self._clock = require_clock("clock", clock)
        self._rng = random.Random() if rng is None else require_rng("rng", rng)
        self.name = name
        self._emitter = EventEmitter(listeners)

    def __repr__(self) -> str:
        return (
            f"Retry(name={self.name!r}, attempts={self.attempts!r}, "
            f"deadline={self.deadline!r}, backoff={self._backoff!r})"
        )

    @property
    def backoff(self) -> Backoff:
        """
        The delay schedule.
        """
        return self._backoff

    def add_listener(self, listener: Listener) -> None:
        """
        Send this policy's events to *listener* as well.
        """
        self._emitter.add(listener)

    def _is_retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, self._catch):
            return False

        return self._predicate is None or self._predicate(exc)

    # -- the sync shell ---------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* with the arguments, retrying as the policy says.
        """
        start = None if self.deadline is None else self._clock.now()
        try:
            result = fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            # Leave the except block before retrying, so that later errors
            # do not get this one chained as their __context__.
            failure = exc
        else:
            if self._retry_if_result is None or not self._retry_if_result(result):
                if self._budget is not None:
                    self._budget.record_success()
                return result
            return self._finish(_Run(self, start), fn, args, kwargs, None, result)

        return self._finish(_Run(self, start), fn, args, kwargs, failure, None)

    def call_with_statistics(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[R, RetryStatistics]:
        """
        Like `call`, and also return this call's own statistics record.
        """
        run = _Run(self, self._clock.now())
        failed, exc, result = self._attempt(fn, args, kwargs)
        if failed:
            return self._finish(run, fn, args, kwargs, exc, result), run

        run.succeeded(self._clock.now())
        return result, run  # type: ignore[return-value]

    def _attempt(
        self, fn: Callable[..., R], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> tuple[bool, Exception | None, R | None]:
        try:
            result = fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            return True, exc, None

        if self._retry_if_result is not None and self._retry_if_result(result):
            return True, None, result

        return False, None, result

    def _finish(
        self,
        run: _Run,
        fn: Callable[..., R],
        args: tuple[object, ...],
        kwargs: dict[str, object],
        exc: Exception | None,
        result: R | None,
    ) -> R:
        now = self._clock.now
        while True:
            delay = run.after_failure(exc, now())
            if delay is None:
                # Without an exception, the last result is a real R.
                return cast("R", run.give_up(exc, result))

            if delay > 0:
                self._clock.sleep(delay)
            run.attempts += 1
            try:
                result = fn(*args, **kwargs)
            except self._catch as caught:
                if self._predicate is not None and not self._predicate(caught):
                    raise
                exc = caught
                continue

            if self._retry_if_result is not None and self._retry_if_result(result):
                exc = None
                continue
            run.succeeded(now())
            return result

    # -- the async shell --------------------------------------------------

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* with the arguments, retrying as the policy says.
        """
        start = None if self.deadline is None else self._clock.now()
        try:
            result = await fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            failure = exc
        else:
            if self._retry_if_result is None or not self._retry_if_result(result):
                if self._budget is not None:
                    self._budget.record_success()
                return result
            run = _Run(self, start)
            return await self._afinish(run, fn, args, kwargs, None, result)

        return await self._afinish(_Run(self, start), fn, args, kwargs, failure, None)

    async def acall_with_statistics(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[R, RetryStatistics]:
        """
        Like `acall`, and also return this call's own statistics record.
        """
        run = _Run(self, self._clock.now())
        failed, exc, result = await self._aattempt(fn, args, kwargs)
        if failed:
            result = await self._afinish(run, fn, args, kwargs, exc, result)
            return result, run

        run.succeeded(self._clock.now())
        return result, run  # type: ignore[return-value]

    async def _aattempt(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> tuple[bool, Exception | None, R | None]:
        try:
            result = await fn(*args, **kwargs)
        except self._catch as exc:
            if self._predicate is not None and not self._predicate(exc):
                raise
            return True, exc, None

        if self._retry_if_result is not None and self._retry_if_result(result):
            return True, None, result

        return False, None, result

    async def _afinish(
        self,
        run: _Run,
        fn: Callable[..., Awaitable[R]],
        args: tuple[object, ...],
        kwargs: dict[str, object],
        exc: Exception | None,
        result: R | None,
    ) -> R:
        now = self._clock.now
        while True:
            delay = run.after_failure(exc, now())
            if delay is None:
                # Without an exception, the last result is a real R.
                return cast("R", run.give_up(exc, result))

            if delay > 0:
                await self._clock.asleep(delay)
            run.attempts += 1
            try:
                result = await fn(*args, **kwargs)
            except self._catch as caught:
                if self._predicate is not None and not self._predicate(caught):
                    raise
                exc = caught
                continue

            if self._retry_if_result is not None and self._retry_if_result(result):
                exc = None
                continue
            run.succeeded(now())
            return result

    # -- decorating -------------------------------------------------------

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate *fn* (a `def` or an `async def`) so every call is retried.
        """
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"cannot retry the generator function {fn.__qualname__!r}: a "
                "generator that failed part-way cannot be resumed; retry the "
                "function that consumes it, or use the block form"
            )
        if _is_async_callable(fn):
            return self._wrap_async(fn)  # type: ignore[arg-type, return-value]

        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        if self._predicate is not None or self._retry_if_result is not None:
            call = self.call

            @functools.wraps(fn)
            def general(*args: P.args, **kwargs: P.kwargs) -> R:
                return call(fn, *args, **kwargs)

            return general

        # The common case gets its own closure: the success path is then the
        # call itself plus, only when a deadline needs it, one clock reading.
        catch, finish, budget = self._catch, self._finish, self._budget
        if self.deadline is None and budget is None:

            @functools.wraps(fn)
            def fast(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return fn(*args, **kwargs)
                except catch as exc:
                    failure = exc
                return finish(_Run(self, None), fn, args, kwargs, failure, None)

            return fast

        now = self._clock.now

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                result = fn(*args, **kwargs)
            except catch as exc:
                failure = exc
            else:
                if budget is not None:
                    budget.record_success()
                return result

            return finish(_Run(self, start), fn, args, kwargs, failure, None)

        return wrapper

    def _wrap_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if self._predicate is not None or self._retry_if_result is not None:
            acall = self.acall

            @functools.wraps(fn)
            async def general(*args: P.args, **kwargs: P.kwargs) -> R:
                return await acall(fn, *args, **kwargs)

            return general

        catch, finish, budget = self._catch, self._afinish, self._budget
        if self.deadline is None and budget is None:

            @functools.wraps(fn)
            async def fast(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return await fn(*args, **kwargs)
                except catch as exc:
                    failure = exc
                return await finish(_Run(self, None), fn, args, kwargs, failure, None)

            return fast

        now = self._clock.now

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                result = await fn(*args, **kwargs)
            except catch as exc:
                failure = exc
            else:
                if budget is not None:
                    budget.record_success()
                return result

            return await finish(_Run(self, start), fn, args, kwargs, failure, None)

        return wrapper

    # -- the block form ---------------------------------------------------

    def __iter__(self) -> Iterator[Attempt]:
        """
        Iterate over attempts: ``for attempt in policy: with attempt: ...``.
        """
        run = _Run(self, self._clock.now())
        yield (attempt := Attempt(run, 1))
        while attempt.delay is not None:
            self._clock.sleep(attempt.delay)
            run.attempts += 1
            yield (attempt := Attempt(run, run.attempts))

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        """
        Iterate over attempts with ``async for``; waits are awaited.
        """
        run = _Run(self, self._clock.now())
        yield (attempt := Attempt(run, 1))
        while attempt.delay is not None:
            await self._clock.asleep(attempt.delay)
            run.attempts += 1
            yield (attempt := Attempt(run, run.attempts))


class Attempt:
    """
    One attempt of the block form; use it as ``with attempt:``.

    Leaving the block with a retryable exception swallows it and schedules
    the next attempt; leaving it normally ends the loop. When the policy
    gives up, the exception leaves the block with a note added.
    """

    __slots__ = ("_run", "delay", "number")

    def __init__(self, run: _Run, number: int) -> None:
        self._run = run
        self.number = number
        # The sleep before the next attempt, set when this one fails.
        self.delay: float | None = None

    @property
    def statistics(self) -> RetryStatistics:
        """
        The statistics of the whole retried block so far.
        """
        return self._run

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        run = self._run
        now = run.policy._clock.now()
        if exc is None:
            run.succeeded(now)
            return False
        if not run.policy._is_retryable(exc):
            return False

        assert isinstance(exc, Exception)
        self.delay = run.after_failure(exc, now)
        if self.delay is None:
            run.record_give_up(exc)
            return False

        return True


class _Run(RetryStatistics):
    """
    The decision core for one call: pure, reads time only as an argument.

    It is also the call's statistics record, so that a failing call builds
    one object rather than two.
    """

    __slots__ = (
        "hinted",
        "policy",
        "previous_delay",
        "reports_attempts",
        "reports_recovery",
        "reports_retries",
    )

    def __init__(self, policy: Retry, start: float | None) -> None:
        # The record's fields are set here rather than through its __init__:
        # one call fewer on every failing call.
        self.started = policy._clock.now() if start is None else start
        self.attempts = 1
        self.waited = 0.0
        self.delays = []
        self.outcome = _PENDING
        self.finished = None
        self.give_up_reason = None
        self.policy = policy
        self.previous_delay: float | None = None
        self.hinted = False
        # Decided once per call, not per failure: who would see these events.
        self.reports_attempts, self.reports_retries, self.reports_recovery = _audience(
            policy._emitter
        )

    def after_failure(self, exc: Exception | None, now: float) -> float | None:
        """
        Return the delay before the next attempt, or None to give up now.
        """
        if self.reports_attempts:
            self.policy._emitter.emit(
                AttemptFailed(
                    source=self.policy.name,
                    attempt=self.attempts,
                    error=_describe(exc),
                    elapsed=now - self.started,
                )
            )

        decision = self._decide(exc, now)
        if isinstance(decision, str):
            self.give_up_reason = decision
            self.finished = now
            return None

        self.delays.append(decision)
        self.waited += decision
        self.previous_delay = decision
        if self.reports_retries:
            self.policy._emitter.emit(
                RetryScheduled(
                    source=self.policy.name,
                    attempt=self.attempts,
                    delay=decision,
                    error=_describe(exc),
                    hinted=self.hinted,
                )
            )

        return decision

    def _decide(self, exc: Exception | None, now: float) -> float | str:
        """
        Return the delay before the next attempt, or the reason to give up.

        Sets `hinted` when the delay came from the error's `retry_after`.
        """
        policy = self.policy
        # Read the module attribute, not a function: this runs per failure.
        mode = _testmode._current

        limit = policy.attempts
        if mode is not None and mode.max_attempts is not None:
            limit = (
                mode.max_attempts if limit is None else min(limit, mode.max_attempts)
            )
        if limit is not None and self.attempts >= limit:
            return f"attempt limit of {limit} reached"

        delay = policy._backoff.delay(self.attempts, policy._rng, self.previous_delay)
        self.hinted = False
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            hint = hint_seconds(hint, policy._clock.time())
        if hint is not None:
            if hint > policy._max_hint and policy._give_up_on_long_hint:
                return f"server asked to wait {hint:.3f} s, over max_hint"
            delay, self.hinted = min(hint, policy._max_hint), True
        if mode is not None:
            delay = 0.0

        if policy.deadline is not None:
            remaining = self.started + policy.deadline - now
            if delay > remaining or remaining <= 0:
                if not policy._attempt_at_deadline or remaining <= 0:
                    return f"deadline of {policy.deadline:g} s would be exceeded"
                delay = remaining

        if policy._budget is not None and not policy._budget.try_withdraw():
            return "retry budget exhausted"

        return delay

    def succeeded(self, now: float) -> None:
        """
        Record success; report recovery if earlier attempts had failed.
        """
        self.outcome = _SUCCEEDED
        self.finished = now
        policy = self.policy
        if policy._budget is not None:
            policy._budget.record_success()
        if self.attempts > 1 and self.reports_recovery:
            policy._emitter.emit(
                Recovered(
                    source=policy.name,
                    attempts=self.attempts,
                    elapsed=now - self.started,
                    waited=self.waited,
                )
            )

    def record_give_up(self, exc: Exception | None) -> None:
        """
        Mark the call as given up, note it on *exc*, and report it.
        """
        self.outcome = _GAVE_UP
        if self.finished is None:
            self.finished = self.policy._clock.now()
        elapsed = self.finished - self.started
        reason = self.give_up_reason or "gave up"
        attempts = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"

        if exc is not None:
            exc.add_note(
                f"recovery: {self.policy.name!r} gave up after {attempts} "
                f"over {elapsed:.3f} s ({reason})"
            )
        emitter = self.policy._emitter
        if emitter.wants(GaveUp):
            emitter.emit(
                GaveUp(
                    source=self.policy.name,
                    attempts=self.attempts,
                    elapsed=elapsed,
                    waited=self.waited,
                    error=_describe(exc),
                    reason=reason,
                )
            )

    def give_up(self, exc: Exception | None, result: T) -> T:
        """
        Give up: raise the last exception, or return the last result.
        """
        self.record_give_up(exc)
        if exc is not None:
            raise exc

        return result


def _is_async_callable(fn: object) -> bool:
    # An object whose __call__ is a coroutine function is awaited like one.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(type(fn), "__call__", None)  # noqa: B004
    )


def _name_of(fn: Callable[..., object]) -> str:
    # Callable objects have no __qualname__ of their own; their class does.
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__


def _describe(exc: Exception | None) -> str:
    return "a result to retry" if exc is None else type(exc).__qualname__


def _audience(emitter: EventEmitter) -> tuple[bool, bool, bool]:
    """
    Return whether AttemptFailed, RetryScheduled and Recovered would reach
    anyone: `EventEmitter.wants` for all three at once (one logger).
    """
    if emitter._listeners or events._global_listeners:
        return True, True, True

    # Levels nest (DEBUG < INFO < WARNING): a logger quiet at WARNING is
    # quiet at the others too, so a silenced logger costs one check.
    if not _logger.isEnabledFor(RetryScheduled.level):
        return False, False, False
    if _logger.isEnabledFor(AttemptFailed.level):
        return True, True, True

    return False, True, _logger.isEnabledFor(Recovered.level)


@overload
def retry(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    *,
    on: ExceptionSpec = ...,
    retry_if_result: ResultPredicate | None = ...,
    attempts: int | None = ...,
    deadline: float | None = ...,
    backoff: Backoff = ...,
    max_hint: float | None = ...,
    on_long_hint: Literal["cap", "give_up"] = ...,
    attempt_at_deadline: bool = ...,
    budget: RetryBudgetLike | None = ...,
    clock: Clock = ...,
    rng: random.Random | None = ...,
    name: str | None = ...,
    listeners: Iterable[Listener] = ...,
) -> _Decorator: ...


def retry(
    fn: Callable[P, R] | None = None,
    /,
    *,
    on: ExceptionSpec = Exception,
    retry_if_result: ResultPredicate | None = None,
    attempts: int | None = 3,
    deadline: float | None = None,
    backoff: Backoff = _DEFAULT_BACKOFF,
    max_hint: float | None = None,
    on_long_hint: Literal["cap", "give_up"] = "cap",
    attempt_at_deadline: bool = False,
    budget: RetryBudgetLike | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rng: random.Random | None = None,
    name: str | None = None,
    listeners: Iterable[Listener] = (),
) -> Callable[P, R] | _Decorator:
    """
    Decorate a `def` or `async def` so that its calls are retried.

    Use it bare (``@retry``) or with the settings of `Retry`
    (``@retry(on=ConnectionError, attempts=5)``). The name in events is the
    function's qualified name unless *name* is given.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        policy = Retry(
            on=on,
            retry_if_result=retry_if_result,
            attempts=attempts,
            deadline=deadline,
            backoff=backoff,
            max_hint=max_hint,
            on_long_hint=on_long_hint,
            attempt_at_deadline=attempt_at_deadline,
            budget=budget,
            clock=clock,
            rng=rng,
            name=name if name is not None else _name_of(func),
            listeners=listeners,
        )
        return policy(func)

    if fn is not None:
        return decorate(fn)

    return _Decorator(decorate)


class _Decorator:
    """
    The decorator `retry(...)` returns; keeps sync and async signatures.
    """

    __slots__ = ("_decorate",)

    def __init__(self, decorate: Callable[[Callable[..., Any]], Any]) -> None:
        self._decorate = decorate

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        return cast("Callable[P, R]", self._decorate(fn))
