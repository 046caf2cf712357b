"""
Fixtures: recovery instrumented into private Prometheus and OpenTelemetry
readers, uninstrumented after each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recovery.testing import FakeClock

from .readers import Otel, Prom


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prom() -> Iterator[Prom]:
    found = Prom().start()
    yield found
    assert found.link is not None
    found.link.uninstrument()


@pytest.fixture
def otel() -> Iterator[Otel]:
    found = Otel().start()
    yield found
    assert found.link is not None
    found.link.uninstrument()
    found.shutdown()


@pytest.fixture(params=["prometheus", "otel"])
def backend(request: pytest.FixtureRequest) -> Iterator[Prom | Otel]:
    """
    Each backend in turn: the same test must read the same values from both.
    """
    found: Prom | Otel = Prom() if request.param == "prometheus" else Otel()
    found.start()
    yield found
    assert found.link is not None
    found.link.uninstrument()
    if isinstance(found, Otel):
        found.shutdown()
