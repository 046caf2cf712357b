"""
One endpoint of a service: an address, a weight, metadata and live health.

An `Endpoint` is built by the user (or from a string) and adopted by the
registry it is registered in. From then on it carries the registry's live
view of it: `healthy`, `ejected`, `status`, `outstanding` calls and the last
check's latency. A lookup in panic mode may hand out an endpoint whose
`healthy` is false; that flag is how the caller tells.
"""

from __future__ import annotations

import enum
import math
import types
import urllib.parse
from collections.abc import Mapping

from .._validation import require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from .health import HealthState
from .outlier import OutlierState

__all__ = ["Endpoint", "EndpointStatus"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class EndpointStatus(enum.Enum):
    """
    Why an endpoint takes calls or not.
    """

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # failing its active checks
    EJECTED = "ejected"  # failing calls; out until its ejection ends


class Endpoint:
    """
    An address of a service, with a weight for balancing and free metadata.

    *address* is ``"host:port"``, ``"[v6 address]:port"`` or a URL such as
    ``"http://host:port/base"``; `host` and `port` are parsed from it.
    """

    __slots__ = (
        "_check",
        "_clock",
        "_host",
        "_outlier",
        "_port",
        "_service",
        "address",
        "last_check_error",
        "last_check_latency",
        "metadata",
        "outstanding",
        "weight",
    )

    def __init__(
        self,
        address: str,
        *,
        weight: float = 1.0,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(address, str) or not address:
            raise ConfigurationError(
                f"address must be a non-empty string, got {address!r}"
            )
        self.address = address
        self.weight = require_positive("weight", weight)
        self.metadata: Mapping[str, str] = types.MappingProxyType(dict(metadata or {}))
        self._host, self._port = _split_address(address)

        self._service: str | None = None
        self._clock: Clock = SYSTEM_CLOCK
        self._check = HealthState()
        self._outlier = OutlierState()
        # Written only under the owning service's lock; read freely.
        self.outstanding = 0
        self.last_check_latency: float | None = None
        self.last_check_error: str | None = None

    @property
    def host(self) -> str:
        """
        The host name or IP address, without brackets.
        """
        return self._host

    @property
    def port(self) -> int | None:
        """
        The port, or None when the address names none (and no URL scheme does).
        """
        return self._port

    @property
    def service(self) -> str | None:
        """
        The service this endpoint is registered in, or None.
        """
        return self._service

    @property
    def ejected(self) -> bool:
        """
        Whether passive health has this endpoint out of service right now.
        """
        state = self._outlier
        return state.ejected and self._clock.now() < state.ejected_until

    @property
    def ejected_until(self) -> float:
        """
        The clock time its current ejection ends (-inf when never ejected).
        """
        return self._outlier.ejected_until if self._outlier.ejected else -math.inf

    @property
    def ejections(self) -> int:
        """
        How many recent ejections count towards the next one's length.
        """
        return self._outlier.ejections

    @property
    def status(self) -> EndpointStatus:
        """
        Healthy, failing its active checks, or ejected by passive health.
        """
        if not self._check.healthy:
            return EndpointStatus.UNHEALTHY
        if self.ejected:
            return EndpointStatus.EJECTED

        return EndpointStatus.HEALTHY

    @property
    def healthy(self) -> bool:
        """
        Whether the endpoint passes its checks and is not ejected.
        """
        return self._check.healthy and not self.ejected

    def __repr__(self) -> str:
        return (
            f"Endpoint({self.address!r}, service={self._service!r}, "
            f"weight={self.weight!r}, status={self.status.value})"
        )


def _split_address(address: str) -> tuple[str, int | None]:
    if "://" in address:
        parts = urllib.parse.urlsplit(address)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"address has a bad port: {address!r}") from exc
        return parts.hostname or "", port or _DEFAULT_PORTS.get(parts.scheme)

    host, sep, port_text = address.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        # No port, or a bare IPv6 address whose colons are not a port.
        return address.strip("[]"), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(
            f"address must end in a port between 1 and 65535, got {address!r}"
        )

    return host.strip("[]"), int(port_text)
