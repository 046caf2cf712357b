"""
Pipelines: several strategies around one call, outermost first.

``Pipeline(fallback, retry, breaker, timeout)`` runs a call as
``fallback(retry(breaker(timeout(fn))))``: the fallback sees what is left
after retrying, each retry goes through the breaker, and each attempt has
its own time limit. Any object with `name`, `call` and `acall` (the
`Strategy` protocol) can be a stage, including another pipeline.

The chain of stages is composed once per function (once at decoration),
so the success path costs one call per stage and nothing more. Every
event a stage emits during the call carries the pipeline's name (and, as
always, the stage's own name as `source`).

Some orders are almost always a mistake; the pipeline says so with a
`RecoveryWarning` that names the fix (``check_order=False`` silences it):

- a `Retry` inside a `CircuitBreaker`: the breaker counts one outcome per
  whole retry sequence, and retries keep hitting a dependency that the
  breaker should protect;
- a `Timeout` outside a `Retry` with none inside it: it limits all
  attempts together, which is rarely what a per-attempt timeout meant;
- a `RateLimiter` outside a `Retry`: the retries bypass the limit;
- a `Fallback` that is not outermost: failures of the stages outside it
  are not covered, and those stages never see the failures it absorbs;
- the same strategy object twice.
"""

from __future__ import annotations

import functools
import inspect
import types
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import ParamSpec, Protocol, TypeVar, runtime_checkable

from ..errors import ConfigurationError
from ..events import EventEmitter, _pipeline
from .breaker import CircuitBreaker
from .fallback import Fallback
from .retry import Retry

__all__ = ["Pipeline", "RecoveryWarning", "Strategy"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class RecoveryWarning(UserWarning):
    """
    A configuration that works but is very likely not what was meant.
    """


@runtime_checkable
class Strategy(Protocol):
    """
    What a pipeline stage must offer: a name and sync and async calls.
    """

    name: str

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* with the strategy applied.
        """
        ...

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* with the strategy applied.
        """
        ...


class Pipeline:
    """
    Strategies composed around a call, given outermost first.

    Usable as `call`/`acall`, as a decorator on sync and async functions,
    and as a stage of another pipeline.

    Args:
        strategies: the stages, outermost first; at least one.
        name: the name every event of the call carries as `pipeline`.
        check_order: warn (`RecoveryWarning`) about suspicious orders.
    """

    __slots__ = (
        "_acalls",
        "_alast",
        "_calls",
        "_last",
        "_per_call_scope",
        "name",
        "strategies",
    )

    def __init__(
        self, *strategies: Strategy, name: str = "pipeline", check_order: bool = True
    ) -> None:
        if not strategies:
            raise ConfigurationError("a Pipeline needs at least one strategy")
        for index, strategy in enumerate(strategies):
            if not isinstance(strategy, Strategy):
                raise ConfigurationError(
                    f"strategies[{index}] must have name, call and acall, "
                    f"got {strategy!r}"
                )
        self.strategies = strategies
        self.name = name
        self._calls = tuple(strategy.call for strategy in reversed(strategies))
        self._acalls = tuple(strategy.acall for strategy in reversed(strategies))
        # The chain most recently composed by `call`: one entry is enough
        # for the usual case of one function called over and over.
        self._last: tuple[object, object] = (None, None)
        self._alast: tuple[object, object] = (None, None)
        if check_order:
            for message in _order_problems(strategies):
                warnings.warn(message, RecoveryWarning, stacklevel=2)

        # Events name the pipeline through each strategy's emitter, bound
        # once here; only a strategy shared with another pipeline forces the
        # per-call context variable, which costs more than a stage.
        self._per_call_scope = not all(_bind(strategy, name) for strategy in strategies)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """
        Call *fn* through every stage, outermost first.
        """
        last_fn, chain = self._last
        if not _same(last_fn, fn):
            chain = self._compose(fn)
            self._last = (fn, chain)
        if not self._per_call_scope:
            return chain(*args, **kwargs)  # type: ignore[operator, no-any-return]

        token = _pipeline.set(self.name)
        try:
            return chain(*args, **kwargs)  # type: ignore[operator, no-any-return]
        finally:
            _pipeline.reset(token)

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Await *fn* through every stage, outermost first.
        """
        last_fn, achain = self._alast
        if not _same(last_fn, fn):
            achain = self._acompose(fn)
            self._alast = (fn, achain)
        if not self._per_call_scope:
            return await achain(*args, **kwargs)  # type: ignore[operator, no-any-return]

        token = _pipeline.set(self.name)
        try:
            return await achain(*args, **kwargs)  # type: ignore[operator, no-any-return]
        finally:
            _pipeline.reset(token)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        Decorate a sync or async function; its chain is composed once, here.
        """
        name = self.name
        if inspect.iscoroutinefunction(fn):
            achain = self._acompose(fn)
            if not self._per_call_scope:
                return functools.wraps(fn)(achain)  # type: ignore[return-value]

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
                token = _pipeline.set(name)
                try:
                    return await achain(*args, **kwargs)
                finally:
                    _pipeline.reset(token)

            return async_wrapper  # type: ignore[return-value]

        chain = self._compose(fn)
        if not self._per_call_scope:
            return functools.wraps(fn)(chain)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = _pipeline.set(name)
            try:
                return chain(*args, **kwargs)
            finally:
                _pipeline.reset(token)

        return wrapper

    def _compose(self, fn: Callable[P, R]) -> Callable[P, R]:
        chain: Callable[..., R] = fn
        for strategy, call in zip(reversed(self.strategies), self._calls, strict=True):
            chain = _stage(strategy, call, chain)
        return chain

    def _acompose(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        chain: Callable[..., Awaitable[R]] = fn
        for strategy, acall in zip(
            reversed(self.strategies), self._acalls, strict=True
        ):
            chain = _stage(strategy, acall, chain)
        return chain

    def __iter__(self) -> Iterator[Strategy]:
        return iter(self.strategies)

    def __len__(self) -> int:
        return len(self.strategies)

    def __repr__(self) -> str:
        stages = ", ".join(repr(strategy.name) for strategy in self.strategies)
        return f"Pipeline({stages}, name={self.name!r})"


# These strategies, as decorators, build a closure specialised to their
# settings, which is cheaper per call than their general `call`.
_DECORATING = (Retry, CircuitBreaker, Fallback)


def _stage(
    strategy: object, call: Callable[..., object], inner: Callable[..., T]
) -> Callable[..., T]:
    """
    Wrap *inner* in one stage: the strategy's decorator where it has a
    specialised one, else its `call`/`acall` bound to *inner*.
    """
    if isinstance(strategy, _DECORATING):
        return strategy(inner)

    return functools.partial(call, inner)  # type: ignore[return-value]


def _bind(strategy: object, name: str) -> bool:
    """
    Bind *strategy*'s events to pipeline *name*; False where it cannot be.
    """
    if isinstance(strategy, Pipeline):
        # A nested pipeline's stages already carry its own name.
        return True
    emitter = getattr(strategy, "_emitter", None)
    if not isinstance(emitter, EventEmitter):
        # A strategy of the user's own may read `current_pipeline()` to name
        # the pipeline in what it reports, so it gets the per-call scope.
        return False

    return emitter.bind_pipeline(name)


def _same(cached: object, fn: object) -> bool:
    """
    Return whether *fn* is the function whose chain is cached.

    `obj.method` builds a new bound method on every access, so those are
    compared by their object and function; anything else by identity.
    """
    if cached is fn:
        return True
    return type(fn) is types.MethodType and cached == fn


def _order_problems(strategies: tuple[Strategy, ...]) -> list[str]:
    """
    Return a message, with its fix, for each suspicious order of *strategies*.
    """
    kinds = [_kind(strategy) for strategy in strategies]
    problems: list[str] = []
    for inner, kind in enumerate(kinds):
        if kind != "retry":
            continue
        timeout_inside = "timeout" in kinds[inner + 1 :]
        for outer in range(inner):
            problem = _around_retry(
                strategies[outer], kinds[outer], strategies[inner], timeout_inside
            )
            if problem is not None:
                problems.append(problem)

    for index in (i for i, kind in enumerate(kinds) if kind == "fallback" and i > 0):
        outside = ", ".join(repr(s.name) for s in strategies[:index])
        problems.append(
            f"fallback {strategies[index].name!r} is not the outermost stage: "
            f"failures of {outside} are not covered by it, and those stages never "
            "see the failures it absorbs; put the Fallback first"
        )

    seen: set[int] = set()
    for strategy in strategies:
        if id(strategy) in seen:
            problems.append(
                f"strategy {strategy.name!r} appears twice in one pipeline, so each "
                "call passes through it twice; build two instances if that is meant"
            )
        seen.add(id(strategy))
    return problems


def _around_retry(
    outer: Strategy, kind: str | None, retry: Strategy, timeout_inside: bool
) -> str | None:
    """
    Return what is wrong with *outer* sitting outside *retry*, if anything.
    """
    if kind == "breaker":
        return (
            f"retry {retry.name!r} is inside circuit breaker {outer.name!r}: the "
            "breaker counts one outcome per whole retry sequence, and the retries "
            "keep calling while it should be open; put the Retry before (outside) "
            "the CircuitBreaker"
        )
    if kind == "timeout" and not timeout_inside:
        return (
            f"timeout {outer.name!r} is outside retry {retry.name!r}, so it limits "
            "all attempts together; for a per-attempt limit put the Timeout after "
            "(inside) the Retry, and for a total limit use Retry(deadline=...)"
        )
    if kind == "ratelimit":
        return (
            f"rate limiter {outer.name!r} is outside retry {retry.name!r}, so the "
            "retries bypass the limit; put the RateLimiter after (inside) the Retry"
        )
    return None


def _kind(strategy: Strategy) -> str | None:
    """
    Return the family of *strategy* for the order checks, or None if unknown.
    """
    from .bulkhead import Bulkhead
    from .fallback import Fallback
    from .hedging import Hedging
    from .ratelimit import RateLimiter
    from .retry import Retry
    from .timeout import Timeout

    known: list[tuple[type[object], str]] = [
        (Retry, "retry"),
        (Fallback, "fallback"),
        (Timeout, "timeout"),
        (RateLimiter, "ratelimit"),
        (Bulkhead, "bulkhead"),
        (Hedging, "hedging"),
    ]
    try:
        from .breaker import CircuitBreaker  # type: ignore[import-not-found, unused-ignore]

        known.append((CircuitBreaker, "breaker"))
    except ImportError:  # pragma: no cover - while breakers are not installed
        pass

    for cls, kind in known:
        if isinstance(strategy, cls):
            return kind
    return None
