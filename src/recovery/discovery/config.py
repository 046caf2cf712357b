"""
Loading a service registry from a TOML file.

The file names each service under ``[services.<name>]``::

    [services.orders]
    endpoints = ["10.0.0.1:8080", { address = "10.0.0.2:8080", weight = 2 }]
    balancer = "round_robin"          # or "weighted_random", "power_of_two"
    fallback_services = ["orders-dr"]
    panic = false

    [services.orders.check]           # optional active check
    type = "http"                     # "http" or "tcp"
    path = "/health"
    expect = [200, 204]
    interval = 10.0
    timeout = 2.0
    rise = 2
    fall = 3

    [services.orders.outlier]         # optional; `outlier = false` disables
    consecutive_failures = 5
    base_ejection_time = 30.0
    max_ejection_time = 300.0
    max_ejection_percent = 50.0

Unknown keys are errors, so a typo never silently drops a setting. Every
error raises `ConfigurationError` naming the service and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Literal

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from .balancing import balancer_named
from .checks import HealthCheck, HttpCheck, TcpCheck
from .endpoint import Endpoint
from .outlier import OutlierDetection
from .registry import ServiceRegistry

__all__ = ["load_registry", "load_services"]

_SERVICE_KEYS = {
    "endpoints",
    "balancer",
    "fallback_services",
    "panic",
    "check",
    "outlier",
}
_CHECK_KEYS = {"type", "path", "expect", "tls", "interval", "timeout", "rise", "fall"}
_ENDPOINT_KEYS = {"address", "weight", "metadata"}


def load_registry(
    path: str | PathLike[str],
    *,
    name: str = "registry",
    clock: Clock = SYSTEM_CLOCK,
) -> ServiceRegistry:
    """
    Return a new registry holding the services that the TOML file describes.
    """
    registry = ServiceRegistry(name=name, clock=clock)
    load_services(registry, path)

    return registry


def load_services(registry: ServiceRegistry, path: str | PathLike[str]) -> list[str]:
    """
    Register the services of a TOML file into *registry*; return their names.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc

    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ConfigurationError(f"{path}: no [services.<name>] table found")

    for service, table in services.items():
        _register(registry, f"{path}: services.{service}", service, table)

    return list(services)


def _register(
    registry: ServiceRegistry, where: str, service: str, table: object
) -> None:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    _reject_unknown(where, table, _SERVICE_KEYS)

    try:
        listed = table.get("endpoints", [])
        if not isinstance(listed, list):
            raise ConfigurationError(
                f"endpoints must be an array of addresses, got {listed!r}"
            )
        endpoints = [_endpoint(item) for item in listed]
        balancer = table.get("balancer")
        check = table.get("check")
        outlier = table.get("outlier")
        registry.register(
            service,
            endpoints,
            check=_check(check) if check is not None else None,
            balancer=balancer_named(balancer) if balancer is not None else None,
            fallback_services=table.get("fallback_services"),
            panic=table.get("panic"),
            outlier=_outlier(outlier) if outlier is not None else None,
        )
    except (ConfigurationError, TypeError) as exc:
        # TypeError: a value of the wrong TOML type, or an unknown setting.
        raise ConfigurationError(f"{where}: {exc}") from exc


def _endpoint(item: object) -> Endpoint:
    if isinstance(item, str):
        return Endpoint(item)
    if not isinstance(item, dict) or "address" not in item:
        raise ConfigurationError(
            "endpoints: an endpoint is an address or a table with one"
        )
    _reject_unknown("endpoints", item, _ENDPOINT_KEYS)

    metadata = item.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ConfigurationError("endpoints: metadata must be a table")

    return Endpoint(
        item["address"],
        weight=item.get("weight", 1.0),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def _check(table: object) -> HealthCheck:
    where = "check"
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    _reject_unknown(where, table, _CHECK_KEYS)

    kind = table.get("type", "tcp")
    timing = {
        k: table[k] for k in ("interval", "timeout", "rise", "fall") if k in table
    }
    if kind == "tcp":
        extra = set(table) - {"type", *timing}
        if extra:
            raise ConfigurationError(f"{where}: a tcp check takes no {sorted(extra)}")
        return TcpCheck(**timing)
    if kind == "http":
        return HttpCheck(
            table.get("path", "/health"),
            expect=table.get("expect", range(200, 300)),
            tls=bool(table.get("tls", False)),
            **timing,
        )

    raise ConfigurationError(f"{where}.type must be 'tcp' or 'http', got {kind!r}")


def _outlier(value: object) -> OutlierDetection | Literal[False]:
    if value is False:
        return False
    if not isinstance(value, dict):
        raise ConfigurationError("outlier must be a table or false")

    return OutlierDetection(**value)


def _reject_unknown(where: str, table: Mapping[str, object], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown keys {unknown}; accepted: {sorted(known)}"
        )
