"""
The `breaker_store` fixture: one contract, three stores.

Each store runs on a `FakeClock` (Redis takes its time from it too), so the
contract tests move time without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recovery.stores.base import BreakerStore
from recovery.stores.memory import MemoryStore
from recovery.testing import FakeClock


@dataclass
class StoreCase:
    """A store under test and the clock it reads."""

    kind: str
    store: BreakerStore
    clock: FakeClock


def redis_cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def breaker_store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[StoreCase]:
    clock = FakeClock()
    kind = request.param
    if kind == "memory":
        yield StoreCase(kind, MemoryStore(clock=clock), clock)
        return
    if kind == "sqlite":
        from recovery.stores.sqlite import SqliteStore

        sqlite_store = SqliteStore(tmp_path / "state.db", clock=clock)
        yield StoreCase(kind, sqlite_store, clock)
        sqlite_store.close()
        return

    url: str = request.getfixturevalue("redis_url")
    from recovery.stores.redis import RedisStore

    redis_store = RedisStore(url, prefix=unique_name, clock=clock)
    try:
        yield StoreCase(kind, redis_store, clock)
    finally:
        redis_store.close()
        redis_cleanup(url, unique_name)
