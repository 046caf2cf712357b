"""
Where rate limiters keep their state: memory, SQLite or Redis.

Each store applies one `Gcra` decision atomically per check:

- `MemoryLimiterStore`: one process; a dict of TATs under one lock.
- `SqliteLimiterStore`: the processes of one host; one ``BEGIN IMMEDIATE``
  transaction per check in a WAL-mode database file. Time comes from the
  caller's clock, which must be shared by every process: the default
  system clock (`time.monotonic`) is one clock for the whole host.
- `RedisLimiterStore`: many hosts; one Lua script per check, reading time
  from the Redis server (`TIME`) so that host clocks never disagree. The
  key is ``<prefix>:v1:limiter:{<name>}`` and expires once the limiter is
  idle again.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .._sqlite import connect
from .._validation import require_positive
from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from .ratelimit import Gcra, RateLimitDecision

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["MemoryLimiterStore", "RedisLimiterStore", "SqliteLimiterStore"]

_US = 1_000_000


class MemoryLimiterStore:
    """
    Limiter state for one process: a dict of TATs under one lock.

    One store may serve many limiters (keyed by name). Entries of idle
    limiters are dropped now and then, so the dict stays small.
    """

    __slots__ = ("_checks", "_lock", "_tats")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tats: dict[str, int] = {}
        self._checks = 0

    def check(self, name: str, gcra: Gcra, cost: int, now_us: int) -> RateLimitDecision:
        """
        Decide one request for limiter *name* under the store's lock.
        """
        with self._lock:
            decision, new_tat = gcra.decide(self._tats.get(name), now_us, cost)
            if new_tat is not None:
                self._tats[name] = new_tat
                self._checks += 1
                if self._checks % 4096 == 0:
                    self._sweep_locked(now_us)
            return decision

    async def acheck(
        self, name: str, gcra: Gcra, cost: int, now_us: int
    ) -> RateLimitDecision:
        """
        The async twin of `check`; the lock is held for microseconds only.
        """
        return self.check(name, gcra, cost, now_us)

    def _sweep_locked(self, now_us: int) -> None:
        # A TAT in the past means the same as no entry at all.
        for name in [name for name, tat in self._tats.items() if tat <= now_us]:
            del self._tats[name]


class SqliteLimiterStore:
    """
    Limiter state shared by the processes of one host, in a SQLite file.

    Each check is one ``BEGIN IMMEDIATE`` transaction, so checks from every
    process are serialized by SQLite's write lock. Soft state: the database
    runs in WAL mode with ``synchronous=NORMAL``; a power loss may forget the
    last few checks, which only makes the limiter briefly more permissive.
    Each thread gets its own connection.

    Args:
        path: the database file, created if missing.
        table: the table name (created if missing).
        busy_timeout: seconds to wait for the write lock before the check
            fails with `StoreUnavailableError`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        table: str = "recovery_ratelimit",
        busy_timeout: float = 5.0,
    ) -> None:
        if not table.replace("_", "").isalnum():
            raise ConfigurationError(
                f"table must be a plain identifier (letters, digits, _), got {table!r}"
            )
        self.path = str(path)
        self.table = table
        self._busy_timeout = require_positive("busy_timeout", busy_timeout)
        self._local = threading.local()
        self._rng = random.Random()
        self._connection().close()
        self._local.connection = None

    def check(self, name: str, gcra: Gcra, cost: int, now_us: int) -> RateLimitDecision:
        """
        Decide one request for limiter *name* in one write transaction.
        """
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                decision = self._decide(connection, name, gcra, cost, now_us)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(
                f"SQLite limiter store {self.path!r} failed: {exc}"
            ) from exc

        return decision

    async def acheck(
        self, name: str, gcra: Gcra, cost: int, now_us: int
    ) -> RateLimitDecision:
        """
        Run `check` in a worker thread: waiting for SQLite's lock blocks.
        """
        return await asyncio.to_thread(self.check, name, gcra, cost, now_us)

    def _decide(
        self,
        connection: sqlite3.Connection,
        name: str,
        gcra: Gcra,
        cost: int,
        now_us: int,
    ) -> RateLimitDecision:
        table = self.table
        row = connection.execute(
            f"SELECT tat_us FROM {table} WHERE key = ?",  # noqa: S608 - checked identifier
            (name,),
        ).fetchone()
        decision, new_tat = gcra.decide(None if row is None else row[0], now_us, cost)
        if new_tat is not None:
            connection.execute(
                f"INSERT OR REPLACE INTO {table} (key, tat_us) VALUES (?, ?)",  # noqa: S608 - checked identifier
                (name, new_tat),
            )

        # Rows whose TAT has passed mean the same as no row; sweep a few now
        # and then so that the table holds only busy limiters.
        if self._rng.random() < 0.01:
            connection.execute(
                f"DELETE FROM {table} WHERE key IN "  # noqa: S608 - checked identifier
                f"(SELECT key FROM {table} WHERE tat_us < ? LIMIT 100)",
                (now_us,),
            )
        return decision

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection

        try:
            connection = connect(
                self.path, busy_timeout=self._busy_timeout, synchronous="NORMAL"
            )
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(key TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite limiter store {self.path!r}: {exc}"
            ) from exc
        self._local.connection = connection
        return connection

    def close(self) -> None:
        """
        Close this thread's connection (others close when their thread ends).
        """
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def __repr__(self) -> str:
        return f"SqliteLimiterStore({self.path!r}, table={self.table!r})"


# KEYS[1] the limiter's key; ARGV: emission interval (µs), capacity, cost.
# Replies {allowed, remaining, retry_after µs or -1 for never, reset_after µs}.
# Time is the server's, in integer µs (exact in Lua's doubles until 2255).
# A TAT more than a minute past the horizon means the clock went back.
_GCRA_LUA = """
local emission = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local horizon = emission * capacity
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = tonumber(stored)
  if tat > now + horizon + 60000000 or tat < now then tat = now end
end
if cost > capacity then
  return {0, 0, -1, tat - now}
end
local new_tat = tat + emission * cost
local allow_at = new_tat - horizon
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / emission), 0, new_tat - now}
"""


class RedisLimiterStore:
    """
    Limiter state shared by many hosts, in Redis.

    One Lua script per check (sent once, then run by its digest), with the
    time read from the Redis server. The key expires when the limiter would
    be idle, so no cleanup is ever needed.

    Args:
        url: a Redis URL such as ``redis://127.0.0.1:6379/0``.
        prefix: the first part of every key, to separate applications.
        socket_timeout: seconds before a Redis call fails as unreachable.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "recovery",
        socket_timeout: float = 0.5,
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the test env has redis
            raise ImportError(
                "RedisLimiterStore needs the redis extra: pip install 'recovery[redis]'"
            ) from exc

        self.url = url
        self.prefix = prefix
        self._socket_timeout = socket_timeout
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._script = self._client.register_script(_GCRA_LUA)
        self._aclients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}

    def key(self, name: str) -> str:
        """
        Return the Redis key of limiter *name*.
        """
        return f"{self.prefix}:v1:limiter:{{{name}}}"

    def check(self, name: str, gcra: Gcra, cost: int, now_us: int) -> RateLimitDecision:
        """
        Decide one request for limiter *name* in one Lua script on the server.
        """
        import redis

        try:
            reply = self._script(
                keys=[self.key(name)], args=[gcra.emission_us, gcra.capacity, cost]
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(
                f"Redis limiter store unreachable: {exc}"
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis limiter store failed: {exc}") from exc

        return _decision(reply)

    async def acheck(
        self, name: str, gcra: Gcra, cost: int, now_us: int
    ) -> RateLimitDecision:
        """
        The async twin of `check`, on an asyncio client of the running loop.
        """
        import redis.exceptions

        client = self._aclient()
        try:
            reply = await client.evalsha(
                self._script.sha,
                1,
                self.key(name),
                gcra.emission_us,
                gcra.capacity,
                cost,
            )
        except redis.exceptions.NoScriptError:
            reply = await client.eval(
                _GCRA_LUA, 1, self.key(name), gcra.emission_us, gcra.capacity, cost
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(
                f"Redis limiter store unreachable: {exc}"
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis limiter store failed: {exc}") from exc

        return _decision(reply)

    def _aclient(self) -> redis.asyncio.Redis:
        # An asyncio client belongs to the loop it was made on.
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            for stale in [other for other in self._aclients if other.is_closed()]:
                del self._aclients[stale]
            client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._socket_timeout,
            )
            self._aclients[loop] = client
        return client

    def close(self) -> None:
        """
        Close the sync connection pool.
        """
        self._client.close()

    async def aclose(self) -> None:
        """
        Close the asyncio client of the running loop.
        """
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisLimiterStore({self.url!r}, prefix={self.prefix!r})"


def _decision(reply: list[int]) -> RateLimitDecision:
    allowed, remaining, retry_after, reset_after = (int(x) for x in reply)
    return RateLimitDecision(
        bool(allowed),
        remaining,
        None if retry_after < 0 else retry_after / _US,
        reset_after / _US,
    )
