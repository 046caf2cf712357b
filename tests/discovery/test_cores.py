"""
The pure cores: check verdicts, outlier ejection, address parsing, balancers.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.discovery import (
    Endpoint,
    HealthState,
    OutlierDetection,
    OutlierState,
    PowerOfTwoChoices,
    RoundRobin,
    WeightedRandom,
    balancer_named,
)
from recovery.errors import ConfigurationError


class TestHealthState:
    def test_falls_after_fall_failures_in_a_row(self) -> None:
        state = HealthState()

        verdicts = [state.record(False, rise=2, fall=3) for _ in range(3)]

        assert verdicts == [None, None, False]
        assert state.healthy is False

    def test_a_pass_breaks_a_run_of_failures(self) -> None:
        state = HealthState()

        for passed in (False, False, True, False, False):
            state.record(passed, rise=2, fall=3)

        assert state.healthy is True
        assert state.failures == 2

    def test_rises_after_rise_passes_in_a_row(self) -> None:
        state = HealthState(healthy=False)

        verdicts = [state.record(True, rise=2, fall=3) for _ in range(3)]

        assert verdicts == [None, True, None]
        assert state.healthy is True

    @given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
    def test_verdict_changes_only_at_the_thresholds(
        self, results: list[bool], rise: int, fall: int
    ) -> None:
        """The verdict flips only when the last `rise`/`fall` results agree."""
        state = HealthState()
        healthy = True
        for i, passed in enumerate(results):
            changed = state.record(passed, rise=rise, fall=fall)
            run = 0
            for earlier in reversed(results[: i + 1]):
                if earlier != passed:
                    break
                run += 1
            if healthy and not passed and run >= fall:
                healthy = False
                assert changed is False
            elif not healthy and passed and run >= rise:
                healthy = True
                assert changed is True
            else:
                assert changed is None
            assert state.healthy is healthy


class TestOutlierDetection:
    def test_rejects_settings_out_of_range(self) -> None:
        with pytest.raises(ConfigurationError, match="consecutive_failures"):
            OutlierDetection(consecutive_failures=0)
        with pytest.raises(ConfigurationError, match="max_ejection_percent"):
            OutlierDetection(max_ejection_percent=101)
        with pytest.raises(ConfigurationError, match="max_ejection_time"):
            OutlierDetection(base_ejection_time=10, max_ejection_time=5)

    def test_ejection_time_grows_linearly_and_is_capped(self) -> None:
        settings = OutlierDetection(base_ejection_time=30, max_ejection_time=100)

        times = [settings.ejection_time(n) for n in range(1, 6)]

        assert times == [30.0, 60.0, 90.0, 100.0, 100.0]

    @pytest.mark.parametrize(
        ("percent", "total", "allowed"),
        [(50, 3, 1), (50, 4, 2), (10, 5, 0), (10, 10, 1), (100, 3, 3), (0, 9, 0)],
    )
    def test_cap_is_checked_after_the_ejection(
        self, percent: float, total: int, allowed: int
    ) -> None:
        settings = OutlierDetection(max_ejection_percent=percent)

        ejected = 0
        while ejected < total and settings.may_eject(ejected, total):
            ejected += 1

        assert ejected == allowed

    @given(st.floats(0, 100), st.integers(1, 200), st.integers(0, 200))
    def test_cap_never_exceeded(self, percent: float, total: int, ejected: int) -> None:
        settings = OutlierDetection(max_ejection_percent=percent)

        if ejected < total and settings.may_eject(ejected, total):
            assert (ejected + 1) / total <= percent / 100 + 1e-12


class TestOutlierState:
    def test_ejects_after_consecutive_failures_only(self) -> None:
        settings = OutlierDetection(consecutive_failures=3)
        state = OutlierState()

        earned = [state.record_failure(settings) for _ in range(2)]
        state.record_success()
        earned += [state.record_failure(settings) for _ in range(3)]

        assert earned == [False, False, False, False, True]

    def test_failures_while_ejected_do_not_count(self) -> None:
        settings = OutlierDetection(consecutive_failures=1, base_ejection_time=10)
        state = OutlierState()
        state.eject(settings, now=0.0)

        assert state.record_failure(settings) is False
        assert state.failures == 0

    def test_repeated_ejections_last_longer(self) -> None:
        settings = OutlierDetection(base_ejection_time=10, max_ejection_time=25)
        state = OutlierState()

        first = state.eject(settings, now=0.0)
        assert state.restore_due(10.0)
        second = state.eject(settings, now=10.0)
        assert state.restore_due(30.0)
        third = state.eject(settings, now=30.0)

        assert (first, second, third) == (10.0, 20.0, 25.0)
        assert state.ejected_until == 55.0

    def test_ejection_count_decays_while_in_service(self) -> None:
        settings = OutlierDetection(base_ejection_time=10, max_ejection_time=100)
        state = OutlierState()
        state.eject(settings, now=0.0)
        state.restore_due(10.0)
        state.eject(settings, now=10.0)  # second: 20 s, until 30
        state.restore_due(30.0)

        # 25 s in service: two full base periods, so the count drops 2 -> 0.
        duration = state.eject(settings, now=55.0)

        assert duration == 10.0
        assert state.ejections == 1

    def test_restore_is_due_only_at_the_end(self) -> None:
        settings = OutlierDetection(base_ejection_time=10)
        state = OutlierState()
        state.eject(settings, now=5.0)

        assert state.restore_due(14.999) is False
        assert state.restore_due(15.0) is True
        assert state.restore_due(16.0) is False
        assert state.ejected is False


class TestEndpoint:
    @pytest.mark.parametrize(
        ("address", "host", "port"),
        [
            ("10.0.0.1:8080", "10.0.0.1", 8080),
            ("db.internal:5432", "db.internal", 5432),
            ("[::1]:9000", "::1", 9000),
            ("::1", "::1", None),
            ("localhost", "localhost", None),
            ("http://api.local/base", "api.local", 80),
            ("https://api.local:8443", "api.local", 8443),
        ],
    )
    def test_parses_host_and_port(
        self, address: str, host: str, port: int | None
    ) -> None:
        endpoint = Endpoint(address)

        assert (endpoint.host, endpoint.port) == (host, port)

    @pytest.mark.parametrize("address", ["", "host:0", "host:70000", "host:http"])
    def test_rejects_bad_addresses(self, address: str) -> None:
        with pytest.raises(ConfigurationError, match="address"):
            Endpoint(address)

    def test_rejects_a_weight_that_is_not_positive(self) -> None:
        with pytest.raises(ConfigurationError, match="weight"):
            Endpoint("a:1", weight=0)

    def test_metadata_is_read_only(self) -> None:
        endpoint = Endpoint("a:1", metadata={"zone": "eu-1"})

        with pytest.raises(TypeError):
            endpoint.metadata["zone"] = "us-1"  # type: ignore[index]
        assert dict(endpoint.metadata) == {"zone": "eu-1"}

    def test_a_new_endpoint_is_healthy_and_never_ejected(self) -> None:
        endpoint = Endpoint("a:1")

        assert endpoint.healthy is True
        assert endpoint.ejected_until == -math.inf
        assert endpoint.service is None


def _endpoints(*weights: float) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(f"h{i}:{1000 + i}", weight=w) for i, w in enumerate(weights))


class TestBalancers:
    def test_round_robin_cycles_in_order(self) -> None:
        candidates = _endpoints(1, 1, 1)
        balancer = RoundRobin()

        picks = [balancer.pick(candidates).address for _ in range(7)]

        assert picks == ["h0:1000", "h1:1001", "h2:1002"] * 2 + ["h0:1000"]

    def test_weighted_random_follows_the_weights(self) -> None:
        candidates = _endpoints(1, 3, 6)
        balancer = WeightedRandom(rng=random.Random(7))

        counts = Counter(balancer.pick(candidates).address for _ in range(20_000))

        # Expected shares 10 %, 30 %, 60 %; 20,000 draws keep each within 1.5 %.
        assert abs(counts["h0:1000"] / 20_000 - 0.1) < 0.015
        assert abs(counts["h1:1001"] / 20_000 - 0.3) < 0.015
        assert abs(counts["h2:1002"] / 20_000 - 0.6) < 0.015

    def test_weighted_random_notices_a_new_candidate_tuple(self) -> None:
        balancer = WeightedRandom(rng=random.Random(1))
        balancer.pick(_endpoints(1, 1))
        only = _endpoints(5)

        assert balancer.pick(only) is only[0]

    def test_power_of_two_prefers_fewer_outstanding_calls(self) -> None:
        candidates = _endpoints(1, 1)
        candidates[0].outstanding = 4
        balancer = PowerOfTwoChoices(rng=random.Random(3))

        picks = {balancer.pick(candidates).address for _ in range(50)}

        assert picks == {"h1:1001"}

    def test_power_of_two_weighs_load_by_weight(self) -> None:
        candidates = _endpoints(4, 1)
        candidates[0].outstanding = 3  # 0.75 per unit of weight
        candidates[1].outstanding = 1  # 1.0 per unit of weight
        balancer = PowerOfTwoChoices(rng=random.Random(3))

        assert balancer.pick(candidates) is candidates[0]

    def test_power_of_two_never_picks_the_same_pair_member_twice(self) -> None:
        candidates = _endpoints(1, 1, 1, 1)
        for endpoint in candidates[1:]:
            endpoint.outstanding = 1
        balancer = PowerOfTwoChoices(rng=random.Random(11))

        picks = Counter(balancer.pick(candidates).address for _ in range(4_000))

        # The idle endpoint wins whenever it is drawn: in 1/4 + 3/4 * 1/3 = 1/2.
        assert abs(picks["h0:1000"] / 4_000 - 0.5) < 0.03

    def test_balancer_named(self) -> None:
        assert isinstance(balancer_named("p2c"), PowerOfTwoChoices)
        assert isinstance(balancer_named("weighted_random"), WeightedRandom)
        with pytest.raises(ConfigurationError, match="balancer must be one of"):
            balancer_named("fastest")
