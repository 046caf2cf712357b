"""
Loading services from TOML.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.discovery import (
    HttpCheck,
    OutlierDetection,
    PowerOfTwoChoices,
    ServiceRegistry,
    TcpCheck,
    load_registry,
)
from recovery.errors import ConfigurationError
from recovery.testing import FakeClock

FULL = """
[services.orders]
endpoints = [
    "10.0.0.1:8080",
    { address = "10.0.0.2:8080", weight = 3, metadata = { zone = "b" } },
]
balancer = "power_of_two"
fallback_services = ["orders-dr"]
panic = true

[services.orders.check]
type = "http"
path = "/ready"
expect = [200, 204]
interval = 5
timeout = 0.5
rise = 1
fall = 4

[services.orders.outlier]
consecutive_failures = 3
base_ejection_time = 10
max_ejection_time = 60
max_ejection_percent = 34

[services.orders-dr]
endpoints = ["10.1.0.1:8080"]
outlier = false

[services.orders-dr.check]
type = "tcp"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.toml"
    path.write_text(text)
    return path


class TestLoad:
    def test_reads_every_setting(self, tmp_path: Path) -> None:
        registry = load_registry(write(tmp_path, FULL), name="cfg", clock=FakeClock())

        orders = registry.endpoints("orders")
        check = registry.check_of("orders")
        assert registry.name == "cfg"
        assert registry.services() == ["orders", "orders-dr"]
        assert [(ep.address, ep.weight) for ep in orders] == [
            ("10.0.0.1:8080", 1.0),
            ("10.0.0.2:8080", 3.0),
        ]
        assert dict(orders[1].metadata) == {"zone": "b"}
        assert isinstance(check, HttpCheck)
        assert (check.path, check.expect) == ("/ready", frozenset({200, 204}))
        assert (check.interval, check.timeout, check.rise, check.fall) == (5, 0.5, 1, 4)
        assert isinstance(registry.check_of("orders-dr"), TcpCheck)
        svc = registry._services["orders"]
        assert isinstance(svc.balancer, PowerOfTwoChoices)
        assert svc.fallback == ("orders-dr",)
        assert svc.panic is True
        assert svc.outlier == OutlierDetection(
            consecutive_failures=3,
            base_ejection_time=10,
            max_ejection_time=60,
            max_ejection_percent=34,
        )
        assert registry._services["orders-dr"].outlier is None

    def test_from_toml_is_the_same_loader(self, tmp_path: Path) -> None:
        registry = ServiceRegistry.from_toml(write(tmp_path, FULL))

        assert registry.services() == ["orders", "orders-dr"]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("x = 1", "no \\[services"),
            ("[services.a]\nendpoint = ['h:1']", "unknown keys \\['endpoint'\\]"),
            ("[services.a]\nendpoints = ['h:0']", "port"),
            ("[services.a]\nendpoints = [{ weight = 2 }]", "an endpoint is an address"),
            ("[services.a]\nbalancer = 'fastest'", "balancer must be one of"),
            ("[services.a.check]\ntype = 'grpc'", "type must be 'tcp' or 'http'"),
            ("[services.a.check]\ntype = 'tcp'\npath = '/x'", "a tcp check takes no"),
            ("[services.a.check]\ninterval = 0", "interval"),
            (
                "[services.a.outlier]\nmax_ejection_percent = 200",
                "max_ejection_percent",
            ),
            ("[services.a.outlier]\nbase = 1", "unexpected keyword"),
            ("[services.a]\nfallback_services = 'b'", "fallback_services"),
            ("[services", "not valid TOML"),
        ],
    )
    def test_errors_name_the_place(
        self, tmp_path: Path, text: str, message: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=message) as info:
            load_registry(write(tmp_path, text))

        assert "services.toml" in str(info.value)
