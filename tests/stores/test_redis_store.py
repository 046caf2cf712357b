"""
What is particular to the Redis store: key layout, TTLs, script reloading,
the server clock and its errors.
"""

from __future__ import annotations

from typing import Any

import pytest

from recovery.errors import ConfigurationError, StoreUnavailableError
from recovery.policies.breaker_core import BreakerConfig, BreakerState, Outcome

pytestmark = pytest.mark.integration

CONFIG = BreakerConfig(failure_threshold=1, reset_timeout=30)


@pytest.fixture
def client(private_redis: Any) -> Any:
    import redis

    connection = redis.Redis.from_url(private_redis.url)
    yield connection
    connection.close()


def test_keys_share_one_hash_tag_and_carry_a_ttl(
    private_redis: Any, client: Any
) -> None:
    from recovery.stores.redis import RedisStore

    store = RedisStore(private_redis.url, prefix="app", ttl=3600)
    store.record("pay", CONFIG, 0, None, Outcome.FAILURE, 0.0)
    keys = sorted(key.decode() for key in client.keys("*"))

    assert keys == ["app:v1:breaker:{pay}:state"]
    assert 3590_000 < client.pttl(keys[0]) <= 3600_000
    store.close()


def test_all_keys_of_a_breaker_hash_to_one_slot() -> None:
    from recovery.stores.redis import RedisStore

    keys = RedisStore(prefix="app").keys("pay")

    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert tags == {"pay"}
    assert [key.rsplit(":", 1)[1] for key in keys] == [
        "state",
        "ring",
        "buckets",
        "probes",
    ]


def test_a_flushed_script_is_loaded_again(private_redis: Any, client: Any) -> None:
    from recovery.stores.redis import RedisStore

    store = RedisStore(private_redis.url)
    store.record("pay", CONFIG, 0, None, Outcome.SUCCESS, 0.0)
    client.script_flush()

    view = store.record("pay", CONFIG, 0, None, Outcome.FAILURE, 0.0)

    assert view.state is BreakerState.OPEN
    store.close()


def test_open_time_comes_from_the_server_clock(private_redis: Any, client: Any) -> None:
    from recovery.stores.redis import RedisStore

    store = RedisStore(private_redis.url)
    seconds, micros = client.time()
    view = store.record("pay", CONFIG, 0, None, Outcome.FAILURE, 0.0)
    metrics = store.metrics("pay")

    assert view.retry_after == pytest.approx(30, abs=0.5)
    assert metrics is not None
    assert metrics.since == pytest.approx(seconds + micros / 1e6, abs=1.0)
    store.close()


def test_an_unreachable_server_is_reported_as_unavailable(private_redis: Any) -> None:
    from recovery.stores.redis import RedisStore

    store = RedisStore(private_redis.url)
    private_redis.stop()

    with pytest.raises(StoreUnavailableError):
        store.acquire("pay", CONFIG, "p")


def test_braces_are_refused_in_names_and_prefixes() -> None:
    from recovery.stores.redis import RedisStore

    with pytest.raises(ConfigurationError, match="prefix"):
        RedisStore(prefix="a{b}")
    with pytest.raises(ConfigurationError, match="braces"):
        RedisStore().keys("x}y")
