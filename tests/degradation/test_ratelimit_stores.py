"""
Shared limiter stores: SQLite (one host) and Redis (many hosts), checked
with threads, with real processes, and with a Redis server that goes away.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.errors import (
    ConfigurationError,
    RateLimitedError,
    StoreUnavailableError,
)
from recovery.events import Event
from recovery.policies.ratelimit import (
    LimiterStore,
    LimiterStoreFailed,
    LimiterStoreRecovered,
    RateLimiter,
)
from recovery.policies.ratelimit_stores import (
    MemoryLimiterStore,
    RedisLimiterStore,
    SqliteLimiterStore,
)
from recovery.testing import FakeClock
from tests.conftest import PrivateRedis

WORKER = Path(__file__).with_name("limiter_worker.py")


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]
)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[LimiterStore]:
    if request.param == "memory":
        yield MemoryLimiterStore()
    elif request.param == "sqlite":
        yield SqliteLimiterStore(tmp_path / "limits.db")
    else:
        redis_store = RedisLimiterStore(request.getfixturevalue("redis_url"))
        yield redis_store
        redis_store._client.delete(redis_store.key(unique_name))
        redis_store.close()


class TestContract:
    """Every store gives the same answers."""

    def test_exact_burst_from_idle(self, store: LimiterStore, unique_name: str) -> None:
        limiter = RateLimiter(0.5, capacity=7, store=store, name=unique_name)

        assert sum(limiter.try_acquire().allowed for _ in range(12)) == 7

    def test_retry_after_of_a_refused_request(
        self, store: LimiterStore, unique_name: str
    ) -> None:
        limiter = RateLimiter(1, 10, capacity=2, store=store, name=unique_name)
        limiter.try_acquire(2)

        refused = limiter.try_acquire()

        assert not refused.allowed
        # 10 s per request; a store with its own clock has moved on a little.
        assert refused.retry_after is not None
        assert 9.9 < refused.retry_after <= 10.0

    def test_cost_above_capacity(self, store: LimiterStore, unique_name: str) -> None:
        limiter = RateLimiter(1, capacity=2, store=store, name=unique_name)

        decision = limiter.try_acquire(3)

        assert not decision.allowed
        assert decision.retry_after is None

    async def test_async_checks(self, store: LimiterStore, unique_name: str) -> None:
        limiter = RateLimiter(0.5, capacity=3, store=store, name=unique_name)

        decisions = [await limiter.atry_acquire() for _ in range(5)]
        if isinstance(store, RedisLimiterStore):
            await store.aclose()

        assert [d.allowed for d in decisions] == [True, True, True, False, False]

    def test_threads_get_exactly_the_burst(
        self, store: LimiterStore, unique_name: str
    ) -> None:
        limiter = RateLimiter(
            0.1, capacity=40, store=store, name=unique_name, on_store_error="raise"
        )
        admitted: list[int] = []
        barrier = threading.Barrier(4)

        def worker() -> None:
            barrier.wait()
            admitted.append(sum(limiter.try_acquire().allowed for _ in range(25)))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sum(admitted) == 40


class TestSqlite:
    def test_state_is_shared_between_store_objects(self, tmp_path: Path) -> None:
        clock = FakeClock(100)
        path = tmp_path / "limits.db"
        first = RateLimiter(1, capacity=2, store=SqliteLimiterStore(path), clock=clock)
        second = RateLimiter(1, capacity=2, store=SqliteLimiterStore(path), clock=clock)

        assert first.try_acquire().allowed
        assert second.try_acquire().allowed
        assert not first.try_acquire().allowed
        clock.advance(1)
        assert second.try_acquire().allowed

    def test_rows_hold_the_tat_in_microseconds(self, tmp_path: Path) -> None:
        import sqlite3

        clock = FakeClock(5)
        path = tmp_path / "limits.db"
        limiter = RateLimiter(
            4, capacity=4, store=SqliteLimiterStore(path), name="api", clock=clock
        )
        limiter.try_acquire(3)

        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT key, tat_us FROM recovery_ratelimit")
            assert rows.fetchall() == [("api", 5_750_000)]

    def test_table_name_must_be_an_identifier(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="table"):
            SqliteLimiterStore(tmp_path / "limits.db", table="x; DROP TABLE y")

    def test_unusable_file_is_unavailable(self, tmp_path: Path) -> None:
        with pytest.raises(StoreUnavailableError):
            SqliteLimiterStore(tmp_path / "missing-dir" / "limits.db")


@pytest.mark.integration
class TestRedis:
    def test_key_layout_and_ttl(self, redis_url: str, unique_name: str) -> None:
        import redis

        store = RedisLimiterStore(redis_url, prefix="recoverytest")
        limiter = RateLimiter(2, capacity=4, store=store, name=unique_name)
        client = redis.Redis.from_url(redis_url)
        key = f"recoverytest:v1:limiter:{{{unique_name}}}"
        try:
            decision = limiter.try_acquire(3)

            assert store.key(unique_name) == key
            ttl_ms = client.pttl(key)
            assert 0 < ttl_ms <= math.ceil(decision.reset_after * 1000) + 1
            assert decision.reset_after == 1.5
        finally:
            client.delete(key)
            client.close()
            store.close()

    def test_store_failure_policies(
        self, private_redis: PrivateRedis, unique_name: str
    ) -> None:
        events: list[Event] = []
        store = RedisLimiterStore(private_redis.url, socket_timeout=0.2)
        allow = RateLimiter(
            1, capacity=1, store=store, name=unique_name, listeners=(events.append,)
        )
        deny = RateLimiter(1, capacity=1, store=store, on_store_error="deny")
        failing = RateLimiter(1, capacity=1, store=store, on_store_error="raise")
        assert allow.try_acquire().allowed

        private_redis.stop()
        assert allow.try_acquire().allowed
        assert allow.try_acquire().allowed
        with pytest.raises(RateLimitedError):
            deny.call(lambda: None)
        with pytest.raises(StoreUnavailableError):
            failing.try_acquire()

        private_redis.start()
        allow.try_acquire()

        kinds = [type(e) for e in events]
        assert kinds == [LimiterStoreFailed, LimiterStoreRecovered]
        assert isinstance(events[0], LimiterStoreFailed)
        assert events[0].policy == "allowed"

    def test_local_policy_limits_each_process_to_its_share(
        self, private_redis: PrivateRedis, unique_name: str
    ) -> None:
        clock = FakeClock()
        store = RedisLimiterStore(private_redis.url, socket_timeout=0.2)
        limiter = RateLimiter(
            10,
            capacity=4,
            store=store,
            name=unique_name,
            on_store_error="local",
            local_share=0.5,
            clock=clock,
        )
        private_redis.stop()

        decisions = [limiter.try_acquire() for _ in range(3)]

        assert [d.allowed for d in decisions] == [True, True, False]
        assert decisions[2].retry_after == pytest.approx(0.2)
        clock.advance(0.2)
        assert limiter.try_acquire().allowed
        store.close()

    async def test_a_flushed_script_cache_is_refilled(
        self, private_redis: PrivateRedis, unique_name: str
    ) -> None:
        import redis

        store = RedisLimiterStore(private_redis.url)
        limiter = RateLimiter(0.5, capacity=4, store=store, name=unique_name)
        admin = redis.Redis.from_url(private_redis.url)
        try:
            assert limiter.try_acquire().allowed
            admin.script_flush()
            assert limiter.try_acquire().allowed
            admin.script_flush()
            assert (await limiter.atry_acquire()).allowed
            assert (await limiter.atry_acquire()).allowed
            assert not limiter.try_acquire().allowed
        finally:
            admin.close()
            await store.aclose()
            store.close()

    async def test_async_client_per_loop(
        self, redis_url: str, unique_name: str
    ) -> None:
        store = RedisLimiterStore(redis_url)
        limiter = RateLimiter(0.5, capacity=2, store=store, name=unique_name)
        try:
            results = await asyncio.gather(*(limiter.atry_acquire() for _ in range(6)))
            assert sum(d.allowed for d in results) == 2
        finally:
            await store.aclose()
            store.close()


def run_workers(kind: str, target: str, name: str, processes: int) -> tuple[int, float]:
    """Start real processes on one limiter; return (admitted, elapsed span)."""
    rate, capacity, duration = 50, 5, 0.6
    args = [kind, target, name, str(rate), str(capacity)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    # Start them together once every interpreter is up and connected.
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    start_at = time.monotonic() + 0.1
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start_at} {duration}\n")
        worker.stdin.close()
    reports = []
    for worker in workers:
        assert worker.stdout is not None
        out = worker.stdout.read()
        worker.stdout.close()
        assert worker.wait(timeout=60) == 0
        reports.append(json.loads(out))

    assert all(report["checks"] >= 1 for report in reports)
    span = max(r["last"] for r in reports) - min(r["first"] for r in reports)
    return sum(r["admitted"] for r in reports), span


@pytest.mark.integration
@pytest.mark.slow
def test_sqlite_bound_holds_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "limits.db")
    SqliteLimiterStore(path).close()

    admitted, span = run_workers("sqlite", path, "shared", processes=4)

    # capacity + one per 20 ms over the span in which checks were made.
    assert admitted <= 5 + math.floor(span / 0.02) + 1
    assert admitted >= 5  # at least the burst; starved processes may admit less


@pytest.mark.integration
@pytest.mark.slow
def test_redis_bound_holds_across_processes(redis_url: str, unique_name: str) -> None:
    import redis

    try:
        admitted, span = run_workers("redis", redis_url, unique_name, processes=4)
    finally:
        client = redis.Redis.from_url(redis_url)
        client.delete(f"recovery:v1:limiter:{{{unique_name}}}")
        client.close()

    assert admitted <= 5 + math.floor(span / 0.02) + 1
    assert admitted >= 5  # at least the burst; starved processes may admit less
