"""
Settings shared by every strategy are checked when the object is built.

A wrong clock, random generator, listener list or store fails at
construction with a `ConfigurationError` naming the parameter, rather than
with an AttributeError deep inside the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recovery import (
    BackupRepository,
    Bulkhead,
    CircuitBreaker,
    ConfigurationError,
    Fallback,
    Hedging,
    RateLimiter,
    Retry,
    RetryBudget,
    ServiceRegistry,
    TcpCheck,
    Timeout,
)

BUILDERS: dict[str, Callable[..., object]] = {
    "Retry": Retry,
    "CircuitBreaker": lambda **kw: CircuitBreaker("b", **kw),
    "Fallback": lambda **kw: Fallback(default=0, **kw),
    "Bulkhead": lambda **kw: Bulkhead(2, **kw),
    "RateLimiter": lambda **kw: RateLimiter(10, **kw),
    "Timeout": lambda **kw: Timeout(1.0, **kw),
    "Hedging": lambda **kw: Hedging(0.1, **kw),
    "ServiceRegistry": ServiceRegistry,
}


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_a_clock_without_a_clocks_methods_is_refused(
    builder: Callable[..., object],
) -> None:
    with pytest.raises(ConfigurationError, match="clock must be a Clock"):
        builder(clock=5)


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_listeners_must_be_callables(builder: Callable[..., object]) -> None:
    with pytest.raises(ConfigurationError, match="listeners must be an iterable"):
        builder(listeners=5)
    with pytest.raises(ConfigurationError, match="listeners must hold callables"):
        builder(listeners=["not callable"])


def test_the_budget_and_the_repository_check_their_clock(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="clock"):
        RetryBudget(clock=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clock"):
        BackupRepository(tmp_path / "repo", clock="now")  # type: ignore[arg-type]


def test_retry_checks_its_random_generator() -> None:
    with pytest.raises(ConfigurationError, match=r"rng must be a random\.Random"):
        Retry(rng="x")  # type: ignore[arg-type]


def test_an_empty_exception_tuple_would_retry_nothing() -> None:
    with pytest.raises(ConfigurationError, match="on must name at least one"):
        Retry(on=())


def test_a_breaker_store_must_be_a_store() -> None:
    with pytest.raises(ConfigurationError, match="store must be a BreakerStore"):
        CircuitBreaker("b", store="state.db")  # type: ignore[arg-type]


class TestRegistryAddresses:
    def test_a_lone_string_is_not_a_list_of_addresses(self) -> None:
        with pytest.raises(ConfigurationError, match="endpoints must be a list"):
            ServiceRegistry().register("orders", "10.0.0.1:80")

    def test_network_checks_need_a_port(self) -> None:
        registry = ServiceRegistry()

        with pytest.raises(ConfigurationError, match="'localhost' names no port"):
            registry.register("orders", ["localhost"], check=TcpCheck())

        registry.register("names", ["localhost"])
        assert registry.endpoint("names").address == "localhost"
