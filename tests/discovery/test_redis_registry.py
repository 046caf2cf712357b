"""
RedisServiceRegistry against the real redis-server, with several real processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from recovery.clock import SYSTEM_CLOCK
from recovery.discovery import (
    EndpointEjected,
    EndpointExpired,
    NoHealthyEndpointError,
    OutlierDetection,
    UnknownServiceError,
)
from recovery.discovery.events import SharedStateRestored, SharedStateUnavailable
from recovery.discovery.redis_registry import RedisServiceRegistry
from recovery.errors import ConfigurationError, StoreUnavailableError
from recovery.events import Event
from recovery.testing import FakeClock
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

EJECT = OutlierDetection(
    consecutive_failures=1,
    base_ejection_time=30,
    max_ejection_time=300,
    max_ejection_percent=50,
)


@pytest.fixture
def prefix(redis_url: str, unique_name: str) -> Iterator[str]:
    import redis

    yield f"rt-{unique_name}"
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"rt-{unique_name}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def make(redis_url: str, prefix: str) -> Iterator[Callable[..., RedisServiceRegistry]]:
    made: list[RedisServiceRegistry] = []

    def make(**kwargs: object) -> RedisServiceRegistry:
        kwargs.setdefault("clock", FakeClock())
        kwargs.setdefault("watch", False)
        registry = RedisServiceRegistry(redis_url, prefix=prefix, **kwargs)  # type: ignore[arg-type]
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


def addresses(registry: RedisServiceRegistry, service: str) -> list[str]:
    return sorted(ep.address for ep in registry.healthy_endpoints(service))


class TestMembership:
    def test_another_client_finds_the_service_by_name(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        a.register("orders", ["o1:80", "o2:80"])
        b = make()

        assert addresses(b, "orders") == ["o1:80", "o2:80"]
        assert b.revision("orders") == a.revision("orders") == 2

    def test_unknown_everywhere_is_unknown(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        with pytest.raises(UnknownServiceError):
            make().endpoint("nowhere")

    def test_braces_are_refused_in_service_names(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        with pytest.raises(ConfigurationError, match="braces"):
            make().register("a{b}", ["x:1"])

    def test_polling_sees_changes_after_the_refresh_interval(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        a.register("orders", ["o1:80", "o2:80"])
        clock = FakeClock()
        b = make(clock=clock, refresh_interval=2.0)
        assert addresses(b, "orders") == ["o1:80", "o2:80"]

        a.deregister("orders", "o1:80")
        clock.advance(1.9)
        before = addresses(b, "orders")
        clock.advance(0.1)
        after = addresses(b, "orders")

        assert before == ["o1:80", "o2:80"]
        assert after == ["o2:80"]

    def test_a_published_change_invalidates_at_once(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        a.register("orders", ["o1:80", "o2:80"])
        b = make(watch=True, refresh_interval=3600)
        assert addresses(b, "orders") == ["o1:80", "o2:80"]
        # Let the watcher subscribe (and re-list) before the change is made.
        assert b._subscribed.wait(5)
        addresses(b, "orders")
        revision = b.revision("orders")

        a.register("orders", ["o3:80"])

        # b's clock never moves, so only the notification can explain this.
        wait_until(lambda: addresses(b, "orders") == ["o1:80", "o2:80", "o3:80"])
        assert b.revision("orders") == revision + 1


class TestSharedHealth:
    def test_an_active_check_verdict_is_shared(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        first, _ = a.register("orders", ["o1:80", "o2:80"])
        clock = FakeClock()
        b = make(clock=clock)
        assert addresses(b, "orders") == ["o1:80", "o2:80"]

        a.report_check(first, False)
        clock.advance(1.0)

        assert addresses(b, "orders") == ["o2:80"]
        assert len(b.endpoints("orders")) == 2

    def test_ejections_are_shared_and_end_on_each_clock(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        eps = a.register("orders", ["o1:80", "o2:80", "o3:80", "o4:80"], outlier=EJECT)
        clock = FakeClock()
        b = make(clock=clock)
        b.register("orders", outlier=EJECT)

        a.record_failure(eps[0])
        clock.advance(1.0)
        seen = addresses(b, "orders")
        (mirror,) = [ep for ep in b.endpoints("orders") if ep.address == "o1:80"]
        left = mirror.ejected_until - clock.now()
        clock.advance(left)

        assert seen == ["o2:80", "o3:80", "o4:80"]
        # Thirty seconds of Redis time, less the few ms this test took.
        assert 29.0 < left <= 30.0
        assert addresses(b, "orders") == ["o1:80", "o2:80", "o3:80", "o4:80"]

    def test_the_cap_counts_ejections_made_by_other_clients(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a_events: list[Event] = []
        b_events: list[Event] = []
        a = make(listeners=[a_events.append])
        a_eps = a.register(
            "orders", ["o1:80", "o2:80", "o3:80", "o4:80"], outlier=EJECT
        )
        b = make(listeners=[b_events.append])
        b.register("orders", outlier=EJECT)
        b_eps = {ep.address: ep for ep in b.endpoints("orders")}

        a.record_failure(a_eps[0])
        a.record_failure(a_eps[1])
        b.record_failure(b_eps["o3:80"])

        ejected = [e for e in a_events + b_events if isinstance(e, EndpointEjected)]
        assert sorted(str(e.fields()["address"]) for e in ejected) == ["o1:80", "o2:80"]
        assert not b_eps["o3:80"].ejected

    def test_ejection_count_grows_across_clients(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        eps = a.register("orders", ["o1:80", "o2:80"], outlier=EJECT)
        clock = FakeClock()
        b = make(clock=clock)
        b.register("orders", outlier=EJECT)
        events: list[Event] = []
        b.add_listener(events.append)
        a.record_failure(eps[0])
        # End the shared ejection now on the Redis clock, and on b's own clock.
        seconds, micros = b._redis.time()
        b._redis.zadd(
            b._key("eject", "orders"), {"o1:80": seconds * 1000 + micros // 1000}
        )
        clock.advance(30)
        (mirror,) = [ep for ep in b.endpoints("orders") if ep.address == "o1:80"]

        b.record_failure(mirror)

        (event,) = [e for e in events if isinstance(e, EndpointEjected)]
        assert event.fields()["ejections"] == 2
        assert event.fields()["duration"] == 60.0

    def test_all_down_raises_no_healthy(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        (only,) = a.register("orders", ["o1:80"])
        a.report_check(only, False)
        b = make()

        with pytest.raises(NoHealthyEndpointError):
            b.endpoint("orders")


class TestHeartbeats:
    def test_heartbeat_reports_a_reaped_endpoint(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        a.register("orders", ["o1:80"], ttl=30)

        assert a.heartbeat("orders", "o1:80", ttl=30) is True
        assert a.heartbeat("orders", "gone:80", ttl=30) is False

    def test_keep_alive_announces_and_withdraws(
        self, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        a = make()
        keeper = a.keep_alive("orders", "k1:80", ttl=30)
        b = make()
        seen = addresses(b, "orders")

        keeper.stop(withdraw=True)
        b._invalidate_service("orders")

        assert seen == ["k1:80"]
        assert addresses(b, "orders") == []
        assert b.endpoints("orders") == ()

    @pytest.mark.slow
    def test_endpoints_of_killed_processes_are_removed(
        self, redis_url: str, prefix: str, make: Callable[..., RedisServiceRegistry]
    ) -> None:
        """Three real processes heartbeat; a killed one drops out after its grace."""
        script = (
            "import sys, threading\n"
            "from recovery.discovery.redis_registry import RedisServiceRegistry\n"
            f"r = RedisServiceRegistry({redis_url!r}, prefix={prefix!r}, watch=False)\n"
            "r.keep_alive('orders', sys.argv[1], ttl=0.3)\n"
            "print('ready', flush=True)\n"
            "threading.Event().wait()\n"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, f"p{i}:80"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            events: list[Event] = []
            client = make(
                clock=SYSTEM_CLOCK,
                refresh_interval=0.02,
                grace=0.5,
                listeners=[events.append],
            )
            wait_until(
                lambda: addresses(client, "orders") == ["p0:80", "p1:80", "p2:80"]
            )

            procs[1].kill()
            procs[1].wait()
            # Its TTL runs out: still listed, but no longer healthy ...
            wait_until(lambda: addresses(client, "orders") == ["p0:80", "p2:80"])
            listed = sorted(ep.address for ep in client.endpoints("orders"))
            # ... until the grace period ends and it is removed.
            wait_until(lambda: len(client.endpoints("orders")) == 2)
            time.sleep(0.5)  # two more TTLs: the living processes keep their place

            assert addresses(client, "orders") == ["p0:80", "p2:80"]
            assert listed == ["p0:80", "p1:80", "p2:80"]
            gone = [
                e.fields()["address"] for e in events if isinstance(e, EndpointExpired)
            ]
            assert gone == ["p1:80"]
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()


class TestStoreFailure:
    @pytest.mark.slow
    def test_keep_alive_survives_a_restart_and_announces_again(
        self, private_redis: object, prefix: str
    ) -> None:
        """The restarted Redis lost everything; the heartbeating process restores it."""
        server = private_redis
        url = server.url  # type: ignore[attr-defined]
        owner = RedisServiceRegistry(url, prefix=prefix, watch=False)
        events: list[Event] = []
        owner.add_listener(events.append)
        owner.keep_alive("orders", "k1:80", ttl=0.3)

        server.stop()  # type: ignore[attr-defined]
        time.sleep(0.25)  # a few heartbeats fail against the stopped server
        server.start()  # type: ignore[attr-defined]
        reader = RedisServiceRegistry(
            url, prefix=prefix, clock=SYSTEM_CLOCK, refresh_interval=0.02, watch=False
        )
        wait_until(lambda: _known(reader, "orders"))

        assert addresses(reader, "orders") == ["k1:80"]
        assert any(isinstance(e, SharedStateUnavailable) for e in events)
        owner.close()
        reader.close()

    def test_serves_the_last_copy_then_gives_up(
        self, private_redis: object, prefix: str
    ) -> None:
        server = private_redis
        clock = FakeClock()
        events: list[Event] = []
        registry = RedisServiceRegistry(
            server.url,  # type: ignore[attr-defined]
            prefix=prefix,
            clock=clock,
            watch=False,
            max_stale=10,
            listeners=[events.append],
        )
        registry.register("orders", ["o1:80"])

        server.stop()  # type: ignore[attr-defined]
        clock.advance(5)
        served = registry.endpoint("orders").address
        clock.advance(6)
        for _ in range(2):
            with pytest.raises(StoreUnavailableError):
                registry.endpoint("orders")
        with pytest.raises(StoreUnavailableError):
            registry.register("orders", ["o2:80"])
        server.start()  # type: ignore[attr-defined]
        registry.register("orders", ["o1:80"])
        clock.advance(2)
        registry.endpoint("orders")
        registry.close()

        assert served == "o1:80"
        kinds = [
            type(e)
            for e in events
            if isinstance(e, SharedStateUnavailable | SharedStateRestored)
        ]
        assert kinds == [SharedStateUnavailable, SharedStateRestored]


def _known(registry: RedisServiceRegistry, service: str) -> bool:
    try:
        return bool(registry.endpoints(service))
    except UnknownServiceError:
        return False
