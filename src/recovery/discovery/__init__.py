"""
Service discovery: a registry of services and endpoints, with health.

Active checks (`HttpCheck`, `TcpCheck`, `CallableCheck`, run by a
`HealthChecker`) and passive outlier detection (`OutlierDetection`) decide
which endpoints are healthy; a balancer picks one; a service with none
fails over to its fallback services. `RedisServiceRegistry` shares the same
registry between processes and hosts through Redis.
"""

from .balancing import (
    Balancer,
    PowerOfTwoChoices,
    RoundRobin,
    WeightedRandom,
    balancer_named,
)
from .checker import HealthChecker
from .checks import (
    CallableCheck,
    CheckFailedError,
    CheckResult,
    HealthCheck,
    HttpCheck,
    TcpCheck,
)
from .config import load_registry, load_services
from .endpoint import Endpoint, EndpointStatus
from .errors import NoHealthyEndpointError, UnknownServiceError
from .events import (
    AllEndpointsDown,
    EjectionSkipped,
    EndpointEjected,
    EndpointExpired,
    EndpointHealthy,
    EndpointRegistered,
    EndpointRemoved,
    EndpointRestored,
    EndpointUnhealthy,
    ServiceFailedOver,
    ServiceRecovered,
    SharedStateRestored,
    SharedStateUnavailable,
)
from .health import HealthState
from .outlier import OutlierDetection, OutlierState
from .redis_registry import KeepAlive, RedisServiceRegistry
from .registry import EndpointLease, ServiceRegistry

__all__ = [
    "AllEndpointsDown",
    "Balancer",
    "CallableCheck",
    "CheckFailedError",
    "CheckResult",
    "EjectionSkipped",
    "Endpoint",
    "EndpointEjected",
    "EndpointExpired",
    "EndpointHealthy",
    "EndpointLease",
    "EndpointRegistered",
    "EndpointRemoved",
    "EndpointRestored",
    "EndpointStatus",
    "EndpointUnhealthy",
    "HealthCheck",
    "HealthChecker",
    "HealthState",
    "HttpCheck",
    "KeepAlive",
    "NoHealthyEndpointError",
    "OutlierDetection",
    "OutlierState",
    "PowerOfTwoChoices",
    "RedisServiceRegistry",
    "RoundRobin",
    "ServiceFailedOver",
    "ServiceRecovered",
    "ServiceRegistry",
    "SharedStateRestored",
    "SharedStateUnavailable",
    "TcpCheck",
    "UnknownServiceError",
    "WeightedRandom",
    "balancer_named",
    "load_registry",
    "load_services",
]
