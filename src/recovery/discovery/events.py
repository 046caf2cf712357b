"""
The events a service registry emits.

Per-call facts (a fail-over, an ejection refused by the cap) are DEBUG;
recoveries (an endpoint restored, a service healthy again, membership
changes) are INFO; a loss of capacity (an endpoint ejected or failing its
checks, every endpoint down) is a WARNING, emitted once per change.
`source` is the registry's name.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

from ..events import Event

__all__ = [
    "AllEndpointsDown",
    "EjectionSkipped",
    "EndpointEjected",
    "EndpointExpired",
    "EndpointHealthy",
    "EndpointRegistered",
    "EndpointRemoved",
    "EndpointRestored",
    "EndpointUnhealthy",
    "ServiceFailedOver",
    "ServiceRecovered",
    "SharedStateRestored",
    "SharedStateUnavailable",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _EndpointEvent(Event):
    service: str
    address: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRegistered(_EndpointEvent):
    """
    An endpoint joined a service.
    """

    kind: ClassVar[str] = "endpoint_registered"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: endpoint %s registered in service %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "address", "service")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRemoved(_EndpointEvent):
    """
    An endpoint left a service because it was deregistered.
    """

    kind: ClassVar[str] = "endpoint_removed"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: endpoint %s removed from service %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "address", "service")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointExpired(_EndpointEvent):
    """
    An endpoint left a shared service because its heartbeats stopped.
    """

    kind: ClassVar[str] = "endpoint_expired"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = (
        "registry %s: endpoint %s of service %s stopped sending heartbeats "
        "and was removed"
    )
    message_fields: ClassVar[tuple[str, ...]] = ("source", "address", "service")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointUnhealthy(_EndpointEvent):
    """
    An endpoint was taken out by its active checks (or its heartbeats stopped).

    `reason` says which, e.g. "3 failed checks in a row".
    """

    reason: str

    kind: ClassVar[str] = "endpoint_unhealthy"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "registry %s: endpoint %s of service %s is unhealthy: %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "address",
        "service",
        "reason",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointHealthy(_EndpointEvent):
    """
    An unhealthy endpoint passed its active checks again (or resumed heartbeats).

    `reason` says which, e.g. "2 passed checks in a row".
    """

    reason: str

    kind: ClassVar[str] = "endpoint_healthy"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: endpoint %s of service %s is healthy: %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "address",
        "service",
        "reason",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointEjected(_EndpointEvent):
    """
    Calls through an endpoint failed in a row, so it is ejected for a while.
    """

    failures: int
    duration: float
    ejections: int

    kind: ClassVar[str] = "endpoint_ejected"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = (
        "registry %s: endpoint %s of service %s ejected for %.3f s after %d "
        "consecutive failed calls (ejection %d)"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "address",
        "service",
        "duration",
        "failures",
        "ejections",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EjectionSkipped(_EndpointEvent):
    """
    An endpoint earned an ejection, but the cap on ejected endpoints refused it.
    """

    ejected: int
    total: int

    kind: ClassVar[str] = "ejection_skipped"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = (
        "registry %s: endpoint %s of service %s kept in service: %d of %d "
        "endpoints are already ejected"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "address",
        "service",
        "ejected",
        "total",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRestored(_EndpointEvent):
    """
    An ejected endpoint served its ejection time and takes calls again.
    """

    kind: ClassVar[str] = "endpoint_restored"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: endpoint %s of service %s restored"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "address", "service")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllEndpointsDown(Event):
    """
    No endpoint of a service is healthy any more; emitted once per outage.
    """

    service: str
    endpoints: int
    panic: bool

    kind: ClassVar[str] = "all_endpoints_down"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = (
        "registry %s: all %d endpoints of service %s are down (panic mode: %s)"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "endpoints",
        "service",
        "panic",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecovered(Event):
    """
    A service that had no healthy endpoint has one again.
    """

    service: str
    healthy: int

    kind: ClassVar[str] = "service_recovered"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: service %s has %d healthy endpoints again"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "service", "healthy")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFailedOver(Event):
    """
    A lookup found no healthy endpoint in a service and used a fallback service.
    """

    service: str
    fallback: str

    kind: ClassVar[str] = "service_failed_over"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "registry %s: service %s failed over to %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "service", "fallback")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SharedStateUnavailable(Event):
    """
    A shared registry could not reach its store; the last copy is served.
    """

    error: str

    kind: ClassVar[str] = "shared_state_unavailable"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = (
        "registry %s: shared store unreachable (%s); serving the last known "
        "endpoints and deciding ejections locally"
    )
    message_fields: ClassVar[tuple[str, ...]] = ("source", "error")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SharedStateRestored(Event):
    """
    A shared registry reaches its store again.
    """

    kind: ClassVar[str] = "shared_state_restored"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "registry %s: shared store reachable again"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)
