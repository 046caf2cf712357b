"""
Active checks against real local TCP and HTTP servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from recovery.discovery import (
    CallableCheck,
    Endpoint,
    HealthChecker,
    HttpCheck,
    ServiceRegistry,
    TcpCheck,
)
from recovery.errors import ConfigurationError
from recovery.testing import FakeClock
from tests.conftest import free_port
from tests.discovery.servers import Gate, HttpServer, http_servers


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with http_servers(1) as (server,):
        yield server


def registered(address: str) -> Endpoint:
    registry = ServiceRegistry()
    (endpoint,) = registry.register("svc", [address])
    return endpoint


class TestSettings:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"interval": 0}, "interval"),
            ({"timeout": -1}, "timeout"),
            ({"rise": 0}, "rise"),
            ({"fall": 1.5}, "fall"),
        ],
    )
    def test_rejects_bad_settings(self, kwargs: dict[str, float], name: str) -> None:
        with pytest.raises(ConfigurationError, match=name):
            TcpCheck(**kwargs)  # type: ignore[arg-type]

    def test_http_check_rejects_bad_paths_and_codes(self) -> None:
        with pytest.raises(ConfigurationError, match="path"):
            HttpCheck("health")
        with pytest.raises(ConfigurationError, match="expect"):
            HttpCheck("/health", expect=[99])

    def test_callable_check_needs_a_callable(self) -> None:
        with pytest.raises(ConfigurationError, match="callable"):
            CallableCheck("not a function")  # type: ignore[arg-type]


class TestTcpCheck:
    async def test_passes_when_the_port_listens(self, server: HttpServer) -> None:
        server.mode = "tcp"

        result = await TcpCheck().run(registered(server.address))

        assert result.passed
        assert result.error is None
        assert result.address == server.address

    async def test_fails_when_nothing_listens(self) -> None:
        result = await TcpCheck().run(registered(f"127.0.0.1:{free_port()}"))

        assert not result.passed
        assert result.error is not None
        assert "ConnectionRefusedError" in result.error

    async def test_fails_without_a_port(self) -> None:
        result = await TcpCheck().run(registered("localhost"))

        assert result.error == "CheckFailedError: address 'localhost' names no port"


class TestHttpCheck:
    async def test_passes_on_an_expected_status(self, server: HttpServer) -> None:
        result = await HttpCheck("/ready").run(registered(server.address))

        assert result.passed
        assert server.paths == ["/ready"]

    async def test_fails_on_an_unexpected_status(self, server: HttpServer) -> None:
        server.status = 503

        result = await HttpCheck("/health").run(registered(server.address))

        assert not result.passed
        assert result.error == "CheckFailedError: HTTP status 503"

    async def test_expect_is_configurable(self, server: HttpServer) -> None:
        server.status = 503

        result = await HttpCheck("/health", expect=[503]).run(
            registered(server.address)
        )

        assert result.passed

    async def test_fails_when_the_answer_is_not_http(self, server: HttpServer) -> None:
        server.mode = "garbage"

        result = await HttpCheck().run(registered(server.address))

        assert result.error is not None
        assert "not an HTTP response" in result.error

    async def test_times_out_on_a_stalled_server(self, server: HttpServer) -> None:
        server.mode = "stall"

        result = await HttpCheck(timeout=0.05).run(registered(server.address))

        assert result.error == "timed out after 0.05 s"

    async def test_url_addresses_are_probed_at_their_port(
        self, server: HttpServer
    ) -> None:
        result = await HttpCheck().run(
            registered(f"http://127.0.0.1:{server.port}/api")
        )

        assert result.passed


class TestCallableCheck:
    async def test_sync_function_false_fails(self) -> None:
        seen: list[str] = []

        def probe(endpoint: Endpoint) -> bool:
            seen.append(endpoint.address)
            return endpoint.address.endswith(":1")

        good = await CallableCheck(probe).run(registered("a:1"))
        bad = await CallableCheck(probe).run(registered("a:2"))

        assert (good.passed, bad.passed) == (True, False)
        assert seen == ["a:1", "a:2"]

    async def test_async_function_raising_fails(self) -> None:
        async def probe(endpoint: Endpoint) -> None:
            raise ConnectionResetError("peer went away")

        result = await CallableCheck(probe).run(registered("a:1"))

        assert result.error == "ConnectionResetError: peer went away"

    async def test_cancellation_propagates(self) -> None:
        started = asyncio.Event()

        async def probe(endpoint: Endpoint) -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(
            CallableCheck(probe, timeout=60).run(registered("a:1"))
        )
        await started.wait()
        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task


class TestConcurrency:
    @pytest.mark.integration
    async def test_five_hundred_checks_are_in_flight_at_once(self) -> None:
        """Each server holds every request until all 500 are in flight together."""
        registry = ServiceRegistry()
        gate = Gate(target=500)
        with http_servers(5) as servers:
            for server in servers:
                server.gate = gate
            for i in range(100):
                registry.register(
                    f"svc{i}",
                    [server.address for server in servers],
                    check=HttpCheck(timeout=20),
                )

            results = await HealthChecker(registry).check_once()

        assert len(results) == 500
        assert all(result.passed for result in results)
        assert gate.peak == 500

    async def test_max_concurrency_bounds_the_probes_in_flight(self) -> None:
        registry = ServiceRegistry()
        in_flight = 0
        peak = 0

        async def probe(endpoint: Endpoint) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            in_flight -= 1

        registry.register(
            "svc", [f"h:{1000 + i}" for i in range(40)], check=CallableCheck(probe)
        )

        await HealthChecker(registry, max_concurrency=7).check_once()

        assert peak == 7


class TestChecker:
    async def test_results_drive_endpoint_health(self) -> None:
        clock = FakeClock()
        registry = ServiceRegistry(clock=clock)
        with http_servers(2) as (up, broken):
            broken.status = 500
            registry.register(
                "orders",
                [up.address, broken.address],
                check=HttpCheck(interval=5, rise=1, fall=2),
            )
            checker = HealthChecker(registry)

            await checker.check_once()
            await checker.check_once()

        assert [ep.healthy for ep in registry.endpoints("orders")] == [True, False]
        assert registry.endpoints("orders")[1].last_check_error == (
            "CheckFailedError: HTTP status 500"
        )

    async def test_run_due_follows_each_check_interval(self) -> None:
        clock = FakeClock()
        registry = ServiceRegistry(clock=clock)
        probed: list[tuple[float, str]] = []

        async def probe(endpoint: Endpoint) -> None:
            probed.append((clock.now(), endpoint.address))

        registry.register("fast", ["f:1"], check=CallableCheck(probe, interval=2))
        registry.register("slow", ["s:1"], check=CallableCheck(probe, interval=5))
        checker = HealthChecker(registry)

        waits = []
        for _ in range(5):
            wait = await checker.run_due()
            waits.append(wait)
            clock.advance(wait)

        assert probed == [
            (0.0, "f:1"),
            (0.0, "s:1"),
            (2.0, "f:1"),
            (4.0, "f:1"),
            (5.0, "s:1"),
            (6.0, "f:1"),
        ]
        assert waits == [2.0, 2.0, 1.0, 1.0, 2.0]

    async def test_run_due_without_checks_waits_forever(self) -> None:
        registry = ServiceRegistry(clock=FakeClock())
        registry.register("plain", ["a:1"])

        assert await HealthChecker(registry).run_due() == float("inf")

    async def test_run_loops_on_the_clock(self) -> None:
        clock = FakeClock()
        registry = ServiceRegistry(clock=clock)
        times: list[float] = []
        done = asyncio.Event()

        async def probe(endpoint: Endpoint) -> None:
            times.append(clock.now())
            if len(times) == 4:
                done.set()

        registry.register("svc", ["a:1"], check=CallableCheck(probe, interval=3))
        task = asyncio.create_task(HealthChecker(registry).run())
        await done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert times == [0.0, 3.0, 6.0, 9.0]

    def test_thread_runner_checks_in_the_background(self, server: HttpServer) -> None:
        registry = ServiceRegistry()
        server.status = 503
        (endpoint,) = registry.register(
            "svc", [server.address], check=HttpCheck(interval=0.01, fall=1)
        )

        with HealthChecker(registry):
            for _ in range(500):
                if not endpoint.healthy:
                    break
                # Polling a real background thread against a real server.
                threading.Event().wait(0.01)

        assert not endpoint.healthy
        assert server.requests >= 1
