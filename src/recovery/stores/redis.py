"""
Breaker state in Redis, shared by every process on every host that uses it.

Every transition is one Lua script run with EVALSHA (reloaded on NOSCRIPT),
so two hosts can never interleave inside a decision; the script is a port of
`BreakerMachine` (see `recovery.stores._breaker_lua`). Times come from the
Redis server's clock (TIME, in milliseconds), so hosts with skewed clocks
still agree on when a breaker opened.

Keys, all in one cluster slot thanks to the ``{name}`` hash tag::

    <prefix>:v1:breaker:{<name>}:state    hash: state, generation, counters
    <prefix>:v1:breaker:{<name>}:ring     list: a CountWindow's outcome codes
    <prefix>:v1:breaker:{<name>}:buckets  hash: a TimeWindow's bucket counters
    <prefix>:v1:breaker:{<name>}:probes   sorted set: trial permits by expiry

Every write refreshes a TTL (`ttl`, 7 days by default) on all four keys, so
an abandoned breaker does not stay in Redis forever. Run Redis with a
``noeviction`` or ``volatile-*`` policy: an evicted state reads as a fresh,
closed breaker. A failover can lose the last transitions (replication is
asynchronous); for state that heals itself that is accepted.

The client uses short timeouts (`socket_timeout`, 0.25 s by default) and no
retries of its own: a breaker must learn quickly that its store is gone.
Needs the redis extra: ``pip install 'recovery[redis]'``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._validation import require_positive
from ..clock import Clock
from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from ..policies.breaker_core import (
    Admission,
    AdmissionKind,
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
    Transition,
)
from ..policies.windows import CountWindow, TimeWindow
from ._breaker_lua import BREAKER_SCRIPT

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisStore"]

_PARTS = ("state", "ring", "buckets", "probes")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the test setup installs redis
        raise ImportError(
            "RedisStore needs the redis extra: pip install 'recovery[redis]'"
        ) from exc
    return redis


class RedisStore:
    """
    Breaker state in the Redis at *url*, under keys starting with *prefix*.

    *clock*, when given, replaces the server's clock: tests pin time with a
    `FakeClock`; production leaves it None.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "recovery",
        ttl: float = 7 * 24 * 3600,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"prefix must be non-empty and free of braces, got {prefix!r}"
            )
        self.url = url
        self.prefix = prefix
        self._ttl_ms = round(require_positive("ttl", ttl) * 1000)
        self._socket_timeout = require_positive("socket_timeout", socket_timeout)
        self._connect_timeout = require_positive("connect_timeout", connect_timeout)
        self._clock = clock
        self._redis = _import_redis()
        self._client: redis.Redis = self._redis.Redis.from_url(
            url, **self._client_options()
        )
        self._script = self._client.register_script(BREAKER_SCRIPT)
        self._async: tuple[asyncio.AbstractEventLoop, Any, Any] | None = None

    def _client_options(self) -> dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }

    def __repr__(self) -> str:
        return f"RedisStore({self.describe()!r}, prefix={self.prefix!r})"

    def describe(self) -> str:
        """
        Return the server's address and database, without credentials.
        """
        kwargs = self._client.connection_pool.connection_kwargs
        host = kwargs.get("host", kwargs.get("path", "?"))
        return f"redis://{host}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"

    def keys(self, name: str) -> list[str]:
        """
        Return the four keys of breaker *name*, in script order.
        """
        if "{" in name or "}" in name:
            raise ConfigurationError(
                f"a breaker stored in Redis needs a name without braces, got {name!r}"
            )
        return [f"{self.prefix}:v1:breaker:{{{name}}}:{part}" for part in _PARTS]

    # -- building and reading script calls -----------------------------------

    def _settings(self, config: BreakerConfig) -> list[object]:
        window = config.window
        if isinstance(window, CountWindow):
            kind, size, buckets, span = 1, window.size, 0, window.size
        elif isinstance(window, TimeWindow):
            width = max(1, round(window.seconds * 1000 / window.buckets))
            kind, size, buckets, span = (
                2,
                width,
                window.buckets,
                round(window.seconds * 1000),
            )
        else:
            kind, size, buckets, span = 0, 0, 0, 0
        adaptive = config.adaptive
        return [
            config.failure_threshold or 0,
            kind,
            size,
            buckets,
            span,
            _or_none(config.failure_rate),
            config.min_calls,
            _or_none(None if config.slow_call is None else config.slow_call * 1000),
            _or_none(config.slow_call_rate),
            *(
                (adaptive.factor, adaptive.floor, adaptive.ceiling, adaptive.smoothing)
                if adaptive is not None
                else (-1, -1, -1, -1)
            ),
            config.reset_timeout * 1000,
            config.reset_timeout_multiplier,
            config.open_cap * 1000,
            config.half_open_calls,
            config.lease * 1000,
        ]

    def _args(self, op: str, config: BreakerConfig, *extra: object) -> list[object]:
        now = -1 if self._clock is None else round(self._clock.time() * 1000)
        return [op, now, self._ttl_ms, *self._settings(config), *extra]

    @staticmethod
    def _admission(reply: list[Any], permit: str) -> Admission:
        kind = AdmissionKind(_text(reply[0]))
        state = BreakerState(_text(reply[1]))
        return Admission(
            kind,
            state,
            int(reply[2]),
            permit=permit if kind is AdmissionKind.TRIAL else None,
            retry_after=_seconds(reply[3]),
            transition=_transition(reply),
        )

    @staticmethod
    def _view(reply: list[Any]) -> StateView:
        return StateView(
            BreakerState(_text(reply[1])),
            int(reply[2]),
            _seconds(reply[3]),
            _transition(reply),
        )

    def _run(self, name: str, args: list[object]) -> list[Any]:
        try:
            reply: list[Any] = self._script(keys=self.keys(name), args=args)
        except self._redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc
        return reply

    async def _arun(self, name: str, args: list[object]) -> list[Any]:
        script = self._async_script()
        try:
            reply: list[Any] = await script(keys=self.keys(name), args=args)
        except self._redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc
        return reply

    def _error(self, exc: Exception) -> StoreError:
        errors = self._redis.exceptions
        if isinstance(exc, errors.ConnectionError | errors.TimeoutError):
            return StoreUnavailableError(f"{self.describe()}: {exc}")
        return StoreError(f"{self.describe()}: {exc}")

    def _async_script(self) -> Any:
        # redis.asyncio connections belong to the loop that opened them, so
        # each event loop gets its own client.
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = redis.asyncio.Redis.from_url(self.url, **self._client_options())
            self._async = (loop, client, client.register_script(BREAKER_SCRIPT))
        return self._async[2]

    # -- the breaker store operations ----------------------------------------

    def acquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Decide whether a call may run: one EVALSHA.
        """
        reply = self._run(name, self._args("acquire", config, permit, rejected))
        return self._admission(reply, permit)

    async def aacquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Async twin of `acquire`.
        """
        reply = await self._arun(name, self._args("acquire", config, permit, rejected))
        return self._admission(reply, permit)

    def _record_args(
        self,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        rejected: int,
    ) -> list[object]:
        return self._args(
            "record",
            config,
            generation,
            permit or "",
            outcome.value,
            duration * 1000,
            rejected,
        )

    def record(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Count an outcome and apply it: one EVALSHA.
        """
        args = self._record_args(
            config, generation, permit, outcome, duration, rejected
        )
        return self._view(self._run(name, args))

    async def arecord(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Async twin of `record`.
        """
        args = self._record_args(
            config, generation, permit, outcome, duration, rejected
        )
        return self._view(await self._arun(name, args))

    def force(self, name: str, config: BreakerConfig, state: BreakerState) -> StateView:
        """
        Set an operator state: CLOSED (reset), FORCED_OPEN or DISABLED.
        """
        if state not in (
            BreakerState.CLOSED,
            BreakerState.FORCED_OPEN,
            BreakerState.DISABLED,
        ):
            raise ValueError(
                f"an operator can set closed, forced_open or disabled, not {state}"
            )
        return self._view(self._run(name, self._args("force", config, state.value)))

    def reset_metrics(self, name: str, config: BreakerConfig) -> None:
        """
        Set the counters of *name* to zero.
        """
        self._run(name, self._args("reset_metrics", config))

    def metrics(
        self, name: str, config: BreakerConfig | None = None
    ) -> BreakerMetrics | None:
        """
        Return the state and counters of *name*, or None if unknown.

        Without *config*, the window totals read as zero.
        """
        reply = self._run(name, self._args("metrics", config or BreakerConfig()))
        if not reply:
            return None
        state = BreakerState(_text(reply[0]))
        now = float(reply[15]) / 1000
        open_until = float(reply[3]) / 1000
        retry_after: float | None = None
        if state is BreakerState.OPEN:
            if now >= open_until:
                state = BreakerState.HALF_OPEN
            else:
                retry_after = open_until - now
        successful, failed, ignored = int(reply[4]), int(reply[5]), int(reply[7])
        baseline = _text(reply[14])
        return BreakerMetrics(
            name=name,
            state=state,
            since=float(reply[2]) / 1000,
            retry_after=retry_after,
            total_calls=successful + failed + ignored,
            successful_calls=successful,
            failed_calls=failed,
            slow_calls=int(reply[6]),
            ignored_calls=ignored,
            rejected_calls=int(reply[8]),
            times_opened=int(reply[9]),
            consecutive_failures=int(reply[10]),
            window_calls=int(reply[11]),
            window_failures=int(reply[12]),
            window_slow_calls=int(reply[13]),
            baseline_failure_rate=float(baseline) if baseline else None,
            generation=int(reply[1]),
        )

    def names(self) -> list[str]:
        """
        Return the names of the breakers under this prefix, sorted (uses SCAN).
        """
        head = f"{self.prefix}:v1:breaker:{{"
        try:
            keys = list(self._client.scan_iter(match=f"{head}*}}:state", count=500))
        except self._redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc
        return sorted({_text(key)[len(head) : -len("}:state")] for key in keys})

    def delete(self, name: str) -> None:
        """
        Remove every key of breaker *name* (for tests and operators).
        """
        try:
            self._client.delete(*self.keys(name))
        except self._redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        """
        Close the connection pool of the sync client.
        """
        self._client.close()

    async def aclose(self) -> None:
        """
        Close the async client of the running loop, if one was opened.
        """
        if self._async is not None:
            await self._async[1].aclose()
            self._async = None


def _or_none(value: float | None) -> float:
    # The script reads a negative setting as "not set".
    return -1 if value is None else value


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _seconds(value: object) -> float | None:
    milliseconds = int(value)  # type: ignore[call-overload]
    return None if milliseconds < 0 else milliseconds / 1000


def _transition(reply: list[Any]) -> Transition | None:
    previous = _text(reply[4])
    if not previous:
        return None
    return Transition(
        BreakerState(previous),
        BreakerState(_text(reply[5])),
        int(reply[2]),
        _text(reply[6]),
        _seconds(reply[7]),
    )
