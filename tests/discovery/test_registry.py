"""
ServiceRegistry: membership, lookup, fail-over, passive health and events.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from recovery.discovery import (
    AllEndpointsDown,
    Endpoint,
    EndpointEjected,
    EndpointHealthy,
    EndpointRestored,
    EndpointStatus,
    EndpointUnhealthy,
    NoHealthyEndpointError,
    OutlierDetection,
    ServiceFailedOver,
    ServiceRecovered,
    ServiceRegistry,
    TcpCheck,
    UnknownServiceError,
)
from recovery.errors import ConfigurationError, RecoveryError, RejectedError
from recovery.events import Event
from recovery.testing import FakeClock

FAST_EJECT = OutlierDetection(
    consecutive_failures=2,
    base_ejection_time=10,
    max_ejection_time=25,
    max_ejection_percent=100,
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(clock: FakeClock, recorder: Recorder) -> ServiceRegistry:
    return ServiceRegistry(name="test", clock=clock, listeners=[recorder])


def fail(registry: ServiceRegistry, endpoint: Endpoint, times: int) -> None:
    for _ in range(times):
        registry.record_failure(endpoint)


def mark_down(registry: ServiceRegistry, endpoint: Endpoint) -> None:
    # Without a check on the service, rise and fall are both 1.
    registry.report_check(endpoint, False)


class TestMembership:
    def test_register_creates_then_extends(self, registry: ServiceRegistry) -> None:
        registry.register("orders", ["a:1"])
        registry.register("orders", ["b:2", Endpoint("c:3", weight=2)])

        assert [ep.address for ep in registry.endpoints("orders")] == [
            "a:1",
            "b:2",
            "c:3",
        ]
        assert registry.services() == ["orders"]
        assert "orders" in registry

    def test_an_address_registered_twice_is_kept_once(
        self, registry: ServiceRegistry
    ) -> None:
        (first,) = registry.register("orders", ["a:1"])
        (again,) = registry.register("orders", ["a:1"])

        assert again is first
        assert len(registry.endpoints("orders")) == 1

    def test_an_endpoint_cannot_join_two_services(
        self, registry: ServiceRegistry
    ) -> None:
        endpoint = Endpoint("a:1")
        registry.register("orders", [endpoint])

        with pytest.raises(ConfigurationError, match="already registered"):
            registry.register("billing", [endpoint])

    def test_register_keeps_settings_not_given(self, registry: ServiceRegistry) -> None:
        check = TcpCheck()
        registry.register("orders", ["a:1"], check=check, fallback_services=["dr"])
        registry.register("orders", ["b:2"])

        assert registry.check_of("orders") is check
        assert [ep.address for ep, _ in registry.check_targets()] == ["a:1", "b:2"]

    @pytest.mark.parametrize("fallback", ["dr", ["orders"]], ids=["a string", "itself"])
    def test_rejects_bad_fallbacks(
        self, registry: ServiceRegistry, fallback: object
    ) -> None:
        with pytest.raises(ConfigurationError, match="fallback_services"):
            registry.register("orders", ["a:1"], fallback_services=fallback)  # type: ignore[arg-type]

    def test_deregister_one_endpoint(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"])

        registry.deregister("orders", "a:1")

        assert registry.endpoints("orders") == (b,)
        assert a.service is None
        assert {registry.endpoint("orders") for _ in range(3)} == {b}
        assert [e.kind for e in recorder.events][-1] == "endpoint_removed"

    def test_deregister_the_whole_service(self, registry: ServiceRegistry) -> None:
        registry.register("orders", ["a:1"])

        registry.deregister("orders")

        assert "orders" not in registry
        with pytest.raises(UnknownServiceError):
            registry.endpoint("orders")

    def test_deregister_unknown_endpoint_raises_key_error(
        self, registry: ServiceRegistry
    ) -> None:
        registry.register("orders", ["a:1"])

        with pytest.raises(KeyError):
            registry.deregister("orders", "z:9")


class TestLookup:
    def test_round_robin_by_default(self, registry: ServiceRegistry) -> None:
        registry.register("orders", ["a:1", "b:2"])

        picks = [registry.endpoint("orders").address for _ in range(4)]

        assert picks == ["a:1", "b:2", "a:1", "b:2"]

    def test_unknown_and_unhealthy_raise_different_errors(
        self, registry: ServiceRegistry
    ) -> None:
        (a,) = registry.register("orders", ["a:1"])
        mark_down(registry, a)

        with pytest.raises(UnknownServiceError) as unknown:
            registry.endpoint("nope")
        with pytest.raises(NoHealthyEndpointError) as none:
            registry.endpoint("orders")

        assert isinstance(unknown.value, RecoveryError)
        assert isinstance(unknown.value, LookupError)
        assert not isinstance(unknown.value, RejectedError)
        assert isinstance(none.value, RejectedError)
        assert none.value.service == "orders"
        assert none.value.retry_after is None

    def test_unhealthy_endpoints_stay_registered(
        self, registry: ServiceRegistry
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"])

        mark_down(registry, a)

        assert registry.endpoints("orders") == (a, b)
        assert registry.healthy_endpoints("orders") == (b,)
        assert a.status is EndpointStatus.UNHEALTHY

    def test_fails_over_to_the_next_service(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        (a,) = registry.register("orders", ["a:1"], fallback_services=["orders-dr"])
        (dr,) = registry.register("orders-dr", ["dr:1"])
        mark_down(registry, a)

        assert registry.endpoint("orders") is dr
        failover = recorder.of(ServiceFailedOver)
        assert len(failover) == 1
        assert failover[0].fields()["fallback"] == "orders-dr"

    def test_fallback_services_argument_overrides_the_service_list(
        self, registry: ServiceRegistry
    ) -> None:
        (a,) = registry.register("orders", ["a:1"])
        (dr,) = registry.register("orders-dr", ["dr:1"])
        mark_down(registry, a)

        with pytest.raises(NoHealthyEndpointError):
            registry.endpoint("orders")
        assert registry.endpoint("orders", fallback_services=["orders-dr"]) is dr

    def test_unknown_fallback_service_raises(self, registry: ServiceRegistry) -> None:
        (a,) = registry.register("orders", ["a:1"], fallback_services=["ghost"])
        mark_down(registry, a)

        with pytest.raises(UnknownServiceError, match="ghost"):
            registry.endpoint("orders")

    def test_no_healthy_anywhere_names_every_service_tried(
        self, registry: ServiceRegistry
    ) -> None:
        (a,) = registry.register("orders", ["a:1"], fallback_services=["dr"])
        (b,) = registry.register("dr", ["b:1"])
        mark_down(registry, a)
        mark_down(registry, b)

        with pytest.raises(NoHealthyEndpointError) as info:
            registry.endpoint("orders")

        assert info.value.tried == ("orders", "dr")

    def test_panic_mode_returns_unhealthy_endpoints_flagged(
        self, registry: ServiceRegistry
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], panic=True)
        mark_down(registry, a)
        mark_down(registry, b)

        picks = [registry.endpoint("orders") for _ in range(2)]

        assert picks == [a, b]
        assert not any(ep.healthy for ep in picks)

    def test_panic_prefers_a_healthy_fallback(self, registry: ServiceRegistry) -> None:
        (a,) = registry.register(
            "orders", ["a:1"], panic=True, fallback_services=["dr"]
        )
        (dr,) = registry.register("dr", ["dr:1"])
        mark_down(registry, a)

        assert registry.endpoint("orders") is dr

    def test_avoid_skips_the_endpoint_when_another_is_healthy(
        self, registry: ServiceRegistry
    ) -> None:
        a, b, c = registry.register("orders", ["a:1", "b:2", "c:3"])

        picks = {registry.endpoint("orders", avoid=b) for _ in range(6)}

        assert picks == {a, c}

    def test_avoid_is_a_preference_not_a_ban(self, registry: ServiceRegistry) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"])
        mark_down(registry, b)

        assert registry.endpoint("orders", avoid=a) is a


class TestAllDown:
    def test_event_fires_once_per_outage(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"])
        mark_down(registry, a)
        mark_down(registry, b)

        for _ in range(5):
            with pytest.raises(NoHealthyEndpointError):
                registry.endpoint("orders")

        down = recorder.of(AllEndpointsDown)
        assert len(down) == 1
        assert down[0].fields()["endpoints"] == 2
        assert down[0].level == logging.WARNING

    def test_recovery_is_reported_and_a_new_outage_fires_again(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        (a,) = registry.register("orders", ["a:1"])

        mark_down(registry, a)
        registry.report_check(a, True)
        mark_down(registry, a)

        assert len(recorder.of(AllEndpointsDown)) == 2
        assert len(recorder.of(ServiceRecovered)) == 1

    def test_an_empty_service_is_not_an_outage(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        registry.register("orders")

        with pytest.raises(NoHealthyEndpointError):
            registry.endpoint("orders")
        assert recorder.of(AllEndpointsDown) == []


class TestActiveHealth:
    def test_thresholds_come_from_the_service_check(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        (a,) = registry.register("orders", ["a:1"], check=TcpCheck(rise=2, fall=3))

        seen = []
        for passed in (False, False, False, True, True):
            registry.report_check(a, passed, latency=0.004)
            seen.append(a.healthy)

        assert seen == [True, True, False, False, True]
        assert a.last_check_latency == 0.004
        kinds = [
            e.kind
            for e in recorder.events
            if isinstance(e, EndpointHealthy | EndpointUnhealthy)
        ]
        assert kinds == ["endpoint_unhealthy", "endpoint_healthy"]

    def test_reports_for_foreign_endpoints_are_ignored(
        self, registry: ServiceRegistry
    ) -> None:
        stranger = Endpoint("a:1")

        registry.report_check(stranger, False)
        registry.record_failure(stranger)

        assert stranger.healthy


class TestOutliers:
    def test_consecutive_failures_eject_for_a_growing_time(
        self, registry: ServiceRegistry, clock: FakeClock, recorder: Recorder
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        fail(registry, a, 2)
        assert a.status is EndpointStatus.EJECTED
        assert {registry.endpoint("orders") for _ in range(4)} == {b}
        clock.advance(10)
        assert registry.endpoint("orders", avoid=b) is a
        fail(registry, a, 2)
        first_until = a.ejected_until

        clock.advance(19.999)
        assert {registry.endpoint("orders") for _ in range(4)} == {b}
        clock.advance(0.001)
        assert a in {registry.endpoint("orders") for _ in range(4)}

        durations = [e.fields()["duration"] for e in recorder.of(EndpointEjected)]
        assert durations == [10.0, 20.0]
        assert first_until == 30.0
        assert len(recorder.of(EndpointRestored)) == 2

    def test_ejection_time_is_capped(
        self, registry: ServiceRegistry, clock: FakeClock, recorder: Recorder
    ) -> None:
        a, _ = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        for _ in range(4):
            fail(registry, a, 2)
            clock.advance(a.ejected_until - clock.now())
            registry.endpoint("orders")

        durations = [e.fields()["duration"] for e in recorder.of(EndpointEjected)]
        assert durations == [10.0, 20.0, 25.0, 25.0]

    def test_never_ejects_more_than_the_cap(
        self, registry: ServiceRegistry, recorder: Recorder
    ) -> None:
        outlier = OutlierDetection(consecutive_failures=1, max_ejection_percent=50)
        eps = registry.register("orders", ["a:1", "b:2", "c:3", "d:4"], outlier=outlier)

        for ep in eps:
            fail(registry, ep, 3)

        assert [ep.ejected for ep in eps] == [True, True, False, False]
        assert len(recorder.of(EndpointEjected)) == 2

    def test_outlier_false_disables_ejection(self, registry: ServiceRegistry) -> None:
        (a,) = registry.register("orders", ["a:1"], outlier=False)

        fail(registry, a, 100)

        assert a.healthy

    def test_success_breaks_the_run(self, registry: ServiceRegistry) -> None:
        a, _ = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        registry.record_failure(a)
        registry.record_success(a)
        registry.record_failure(a)

        assert a.healthy

    def test_retry_after_says_when_an_ejection_ends(
        self, registry: ServiceRegistry, clock: FakeClock
    ) -> None:
        (a,) = registry.register("orders", ["a:1"], outlier=FAST_EJECT)
        fail(registry, a, 2)
        clock.advance(4)

        with pytest.raises(NoHealthyEndpointError) as info:
            registry.endpoint("orders")

        assert info.value.retry_after == 6.0

    def test_ejected_event_is_a_warning_and_restored_info(
        self, registry: ServiceRegistry, clock: FakeClock, recorder: Recorder
    ) -> None:
        a, _ = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)
        fail(registry, a, 2)
        clock.advance(10)
        registry.endpoint("orders")

        (ejected,) = recorder.of(EndpointEjected)
        (restored,) = recorder.of(EndpointRestored)
        assert ejected.level == logging.WARNING
        assert restored.level == logging.INFO
        assert ejected.fields()["address"] == "a:1"


class TestUse:
    def test_counts_outstanding_calls(self, registry: ServiceRegistry) -> None:
        (a,) = registry.register("orders", ["a:1"])

        with registry.use("orders") as first:
            with registry.use("orders") as second:
                assert a.outstanding == 2
            assert a.outstanding == 1

        assert first is second is a
        assert a.outstanding == 0

    def test_the_original_exception_escapes(self, registry: ServiceRegistry) -> None:
        (a,) = registry.register("orders", ["a:1"], outlier=FAST_EJECT)
        error = ConnectionError("reset")

        with pytest.raises(ConnectionError) as info, registry.use("orders"):
            raise error

        assert info.value is error
        assert a.outstanding == 0

    def test_a_retry_avoids_the_endpoint_that_just_failed(
        self, registry: ServiceRegistry
    ) -> None:
        registry.register("orders", ["a:1", "b:2", "c:3"], outlier=False)
        used = []

        for _ in range(3):
            try:
                with registry.use("orders") as ep:
                    used.append(ep.address)
                    raise TimeoutError
            except TimeoutError:
                pass

        # Turn 0 of (a, b, c) is a; turn 1 of (b, c) is c; turn 2 of (a, b) is a.
        assert used == ["a:1", "c:3", "a:1"]
        with registry.use("orders") as ep:
            pass
        with registry.use("orders") as after:
            pass
        # The first still avoids a (the last failure); its success clears that.
        assert (ep.address, after.address) == ("c:3", "b:2")

    def test_ejects_through_use(self, registry: ServiceRegistry) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        for _ in range(2):
            with (
                pytest.raises(OSError, match="refused"),
                registry.use("orders", avoid=b),
            ):
                raise OSError("refused")

        assert a.ejected

    def test_failure_on_limits_what_counts(self, clock: FakeClock) -> None:
        registry = ServiceRegistry(clock=clock, failure_on=ConnectionError)
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        for _ in range(3):
            with pytest.raises(KeyError), registry.use("orders", avoid=b):
                raise KeyError("not the endpoint's fault")

        assert a.healthy

    def test_cancellation_is_not_a_failure(self, registry: ServiceRegistry) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        for _ in range(3):
            with pytest.raises(KeyboardInterrupt), registry.use("orders", avoid=b):
                raise KeyboardInterrupt

        assert a.healthy
        assert a.outstanding == 0

    async def test_async_with(self, registry: ServiceRegistry) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)

        async with registry.use("orders") as ep:
            assert ep.outstanding == 1
        for _ in range(2):
            with pytest.raises(ConnectionError):
                async with registry.use("orders", avoid=b):
                    raise ConnectionError

        assert ep is a
        assert a.ejected

    async def test_async_cancellation_is_not_a_failure(
        self, registry: ServiceRegistry
    ) -> None:
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=FAST_EJECT)
        entered = asyncio.Event()

        async def call() -> None:
            async with registry.use("orders", avoid=b):
                entered.set()
                await asyncio.Event().wait()

        for _ in range(3):
            task = asyncio.create_task(call())
            await entered.wait()
            entered.clear()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        assert a.healthy
        assert a.outstanding == 0

    def test_outstanding_is_exact_under_threads(
        self, registry: ServiceRegistry
    ) -> None:
        eps = registry.register("orders", ["a:1", "b:2", "c:3"], outlier=False)
        barrier = threading.Barrier(8)
        peak: list[int] = []

        def worker() -> None:
            barrier.wait()
            for i in range(2_000):
                try:
                    with registry.use("orders"):
                        if i % 7 == 0:
                            peak.append(sum(ep.outstanding for ep in eps))
                            raise ValueError
                except ValueError:
                    pass

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert [ep.outstanding for ep in eps] == [0, 0, 0]
        assert max(peak) <= 8


class TestConcurrentHealth:
    def test_threads_reporting_failures_never_exceed_the_cap(
        self, registry: ServiceRegistry, clock: FakeClock, recorder: Recorder
    ) -> None:
        outlier = OutlierDetection(consecutive_failures=1, max_ejection_percent=30)
        eps = registry.register(
            "orders", [f"h{i}:{1000 + i}" for i in range(10)], outlier=outlier
        )
        barrier = threading.Barrier(10)

        def hammer(ep: Endpoint) -> None:
            barrier.wait()
            for _ in range(200):
                registry.record_failure(ep)
                registry.endpoint("orders")

        threads = [threading.Thread(target=hammer, args=(ep,)) for ep in eps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sum(ep.ejected for ep in eps) == 3
        assert len(recorder.of(EndpointEjected)) == 3
        assert len(registry.healthy_endpoints("orders")) == 7


class TestConcurrentRegistration:
    def test_threads_creating_one_service_lose_no_endpoint(
        self, registry: ServiceRegistry
    ) -> None:
        barrier = threading.Barrier(8)

        def add(worker: int) -> None:
            barrier.wait()
            for i in range(50):
                registry.register("orders", [f"w{worker}:{1000 + i}"])

        threads = [threading.Thread(target=add, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(registry.endpoints("orders")) == 400
        assert len(registry.healthy_endpoints("orders")) == 400

    def test_a_bad_setting_leaves_no_service_behind(
        self, registry: ServiceRegistry
    ) -> None:
        with pytest.raises(ConfigurationError, match="check"):
            registry.register("orders", ["a:1"], check="tcp")  # type: ignore[arg-type]

        assert "orders" not in registry


class TestLogging:
    def test_events_reach_the_discovery_logger(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        registry = ServiceRegistry(name="logs", clock=clock)
        (a,) = registry.register("orders", ["a:1"], outlier=FAST_EJECT)
        caplog.set_level(logging.DEBUG, logger="recovery.discovery")

        fail(registry, a, 2)

        records = [
            (r.name, r.levelno, getattr(r, "recovery_event", None), r.getMessage())
            for r in caplog.records
        ]
        assert records == [
            (
                "recovery.discovery.events",
                logging.WARNING,
                "endpoint_ejected",
                "registry logs: endpoint a:1 of service orders ejected for 10.000 s "
                "after 2 consecutive failed calls (ejection 1)",
            ),
            (
                "recovery.discovery.events",
                logging.WARNING,
                "all_endpoints_down",
                "registry logs: all 1 endpoints of service orders are down "
                "(panic mode: False)",
            ),
        ]


class TestCapWithExpiredEjections:
    def test_an_ejection_whose_time_is_up_leaves_room(
        self, registry: ServiceRegistry, clock: FakeClock
    ) -> None:
        outlier = OutlierDetection(
            consecutive_failures=1, base_ejection_time=10, max_ejection_percent=50
        )
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=outlier)
        registry.record_failure(a)
        clock.advance(10)

        # No lookup noticed a's return yet; b may still take its place.
        registry.record_failure(b)

        assert (a.ejected, b.ejected) == (False, True)


# Each step: the exception the block raises (None: it succeeds).
SCENARIO: list[type[BaseException] | None] = [
    None,
    ConnectionError,
    ConnectionError,
    None,
    TimeoutError,
    KeyError,
    ConnectionError,
    None,
]


def _run_sync(registry: ServiceRegistry) -> list[str]:
    used = []
    for raised in SCENARIO:
        try:
            with registry.use("orders") as ep:
                used.append(ep.address)
                if raised is not None:
                    raise raised
        except (ConnectionError, TimeoutError, KeyError):
            pass
    return used


async def _run_async(registry: ServiceRegistry) -> list[str]:
    used = []
    for raised in SCENARIO:
        try:
            async with registry.use("orders") as ep:
                used.append(ep.address)
                if raised is not None:
                    raise raised
        except (ConnectionError, TimeoutError, KeyError):
            pass
    return used


async def test_sync_and_async_use_agree() -> None:
    """One scenario through `with` and `async with`: same picks, same state."""
    outcomes = []
    for runner in ("sync", "async"):
        registry = ServiceRegistry(clock=FakeClock(), failure_on=OSError)
        eps = registry.register("orders", ["a:1", "b:2", "c:3"], outlier=FAST_EJECT)
        used = _run_sync(registry) if runner == "sync" else await _run_async(registry)
        state = [(ep.status, ep.outstanding, ep.ejections) for ep in eps]
        outcomes.append((used, state))

    assert outcomes[0] == outcomes[1]
    used, state = outcomes[0]
    # Round robin turn n over what is available and not avoided:
    # 0 a ok | 1 b fails | 2 of (a, c): a fails | 3 of (b, c): c ok, clears |
    # 4 b fails (TimeoutError is an OSError): b ejected | 5 of (a, c): c,
    # KeyError is no failure | 6 of (a, c): a fails: a ejected | 7 of (c): c.
    assert used == ["a:1", "b:2", "a:1", "c:3", "b:2", "c:3", "a:1", "c:3"]
    assert state == [
        (EndpointStatus.EJECTED, 0, 1),
        (EndpointStatus.EJECTED, 0, 1),
        (EndpointStatus.HEALTHY, 0, 0),
    ]
