"""
A live view of what recovery keeps: breakers, limiters, services, sagas and
backups, read from their stores.

`Collector` reads every source into one `Snapshot`; `DashboardServer`
serves it as JSON and as a page that refreshes itself every second. The
command line offers both as ``recovery dashboard`` and
``recovery status --watch``.
"""

from .collect import (
    BackupsSection,
    BackupView,
    BreakersSection,
    BreakerView,
    Collector,
    EndpointView,
    LimitersSection,
    LimiterView,
    LockView,
    RedisLimiterReader,
    RedisRegistryReader,
    RegistrySection,
    SagasSection,
    SagaView,
    ServiceView,
    Snapshot,
    SqliteLimiterReader,
    open_collector,
)
from .server import DashboardServer

__all__ = [
    "BackupView",
    "BackupsSection",
    "BreakerView",
    "BreakersSection",
    "Collector",
    "DashboardServer",
    "EndpointView",
    "LimiterView",
    "LimitersSection",
    "LockView",
    "RedisLimiterReader",
    "RedisRegistryReader",
    "RegistrySection",
    "SagaView",
    "SagasSection",
    "ServiceView",
    "Snapshot",
    "SqliteLimiterReader",
    "open_collector",
]
