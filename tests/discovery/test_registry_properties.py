"""
Property test: whatever happens, the registry's invariants hold.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.discovery import (
    NoHealthyEndpointError,
    OutlierDetection,
    ServiceRegistry,
    TcpCheck,
)
from recovery.testing import FakeClock

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["fail", "succeed", "check", "advance", "lookup"]),
        st.integers(0, 5),
        st.booleans(),
        st.floats(0, 40),
    ),
    max_size=80,
)


@settings(max_examples=100, deadline=None)
@given(OPERATIONS, st.sampled_from([0, 20, 50, 100]))
def test_invariants_hold_under_any_sequence(
    operations: list[tuple[str, int, bool, float]], percent: int
) -> None:
    """Never more ejected than the cap; lookups return exactly the available ones."""
    clock = FakeClock()
    registry = ServiceRegistry(clock=clock)
    outlier = OutlierDetection(
        consecutive_failures=2,
        base_ejection_time=10,
        max_ejection_time=30,
        max_ejection_percent=percent,
    )
    eps = registry.register(
        "svc",
        [f"h{i}:80" for i in range(6)],
        check=TcpCheck(rise=2, fall=2),
        outlier=outlier,
    )

    for kind, index, passed, seconds in operations:
        if kind == "fail":
            registry.record_failure(eps[index])
        elif kind == "succeed":
            registry.record_success(eps[index])
        elif kind == "check":
            registry.report_check(eps[index], passed)
        elif kind == "advance":
            clock.advance(seconds)

        expected = {ep for ep in eps if ep.healthy}
        ejected = sum(ep.ejected for ep in eps)
        assert ejected * 100 <= percent * len(eps)
        assert all(ep.ejected_until - clock.now() <= 30 for ep in eps if ep.ejected)
        assert set(registry.healthy_endpoints("svc")) == expected
        if expected:
            picks = {registry.endpoint("svc") for _ in range(len(expected))}
            assert picks == expected
        else:
            try:
                registry.endpoint("svc")
            except NoHealthyEndpointError:
                pass
            else:
                raise AssertionError("a lookup with nothing healthy must raise")
