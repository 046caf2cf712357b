"""
Recovery strategies: retry, circuit breakers, graceful degradation, service
discovery, sagas and backups, in one typed API with sync and async twins.

Everything public is importable from here; each family also has its own
module (`recovery.policies`, `recovery.discovery`, `recovery.transactions`,
`recovery.backup`) with the rest of its names.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from .clock import (
    SYSTEM_CLOCK,
    Clock,
    SystemClock,
)
from .errors import (
    BulkheadFullError,
    CallTimeoutError,
    CircuitOpenError,
    ConfigurationError,
    RateLimitedError,
    RecoveryError,
    RejectedError,
    RetryBudgetExhaustedError,
    StoreError,
    StoreUnavailableError,
)
from .events import (
    Event,
    add_listener,
    remove_listener,
)
from .policies.backoff import (
    Backoff,
    Jitter,
    constant,
    exponential,
    linear,
)
from .policies.breaker import CircuitBreaker
from .policies.breaker_adaptive import AdaptiveThreshold
from .policies.breaker_core import (
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
)
from .policies.breaker_events import (
    BreakerClosed,
    BreakerDisabled,
    BreakerForcedOpen,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerReset,
    BreakerStateChanged,
    BreakerStoreRestored,
    BreakerStoreUnavailable,
    CallRejected,
)
from .policies.budget import RetryBudget
from .policies.bulkhead import Bulkhead, BulkheadRejected
from .policies.fallback import (
    Fallback,
    FallbackExhaustedError,
    FallbackInfo,
    FallbackResult,
    FallbackTier,
    FallbackUsed,
    LastGood,
    ResultRejectedError,
    fallback_info,
)
from .policies.hedging import HedgeStarted, Hedging
from .policies.pipeline import (
    Pipeline,
    RecoveryWarning,
    Strategy,
)
from .policies.ratelimit import (
    LimiterStoreFailed,
    LimiterStoreRecovered,
    RateLimitDecision,
    RateLimited,
    RateLimiter,
)
from .policies.ratelimit_stores import (
    MemoryLimiterStore,
    RedisLimiterStore,
    SqliteLimiterStore,
)
from .policies.retry import (
    Attempt,
    Retry,
    retry,
)
from .policies.retry_events import (
    AttemptFailed,
    GaveUp,
    Recovered,
    RetryOutcome,
    RetryScheduled,
    RetryStatistics,
)
from .policies.timeout import (
    CallTimedOut,
    Timeout,
    remaining,
)
from .policies.windows import CountWindow, TimeWindow
from .stores import (
    BreakerStore,
    MemoryStore,
    RedisStore,
    SqliteStore,
)

if _TYPE_CHECKING:
    from .backup import (
        BackupError,
        BackupRepository,
        BackupResult,
        BackupSummary,
        CorruptDataError,
        CorruptDataFound,
        KeptSnapshot,
        PruneReport,
        RepositoryError,
        RepositoryLockedError,
        RestoreError,
        RestoreResult,
        RetentionPlan,
        RetentionPolicy,
        Snapshot,
        SnapshotDiff,
        SnapshotNotFoundError,
        SnapshotWritten,
        VerifyReport,
    )
    from .discovery import (
        AllEndpointsDown,
        Balancer,
        CallableCheck,
        Endpoint,
        EndpointEjected,
        EndpointRestored,
        EndpointStatus,
        HealthCheck,
        HealthChecker,
        HttpCheck,
        NoHealthyEndpointError,
        OutlierDetection,
        PowerOfTwoChoices,
        RedisServiceRegistry,
        RoundRobin,
        ServiceRegistry,
        TcpCheck,
        UnknownServiceError,
        WeightedRandom,
    )

# Families that take long to import load on first use of one of their names.
_LAZY: dict[str, tuple[str, ...]] = {
    "recovery.backup": (
        "BackupError",
        "BackupRepository",
        "BackupResult",
        "BackupSummary",
        "CorruptDataError",
        "CorruptDataFound",
        "KeptSnapshot",
        "PruneReport",
        "RepositoryError",
        "RepositoryLockedError",
        "RestoreError",
        "RestoreResult",
        "RetentionPlan",
        "RetentionPolicy",
        "Snapshot",
        "SnapshotDiff",
        "SnapshotNotFoundError",
        "SnapshotWritten",
        "VerifyReport",
    ),
    "recovery.discovery": (
        "AllEndpointsDown",
        "Balancer",
        "CallableCheck",
        "Endpoint",
        "EndpointEjected",
        "EndpointRestored",
        "EndpointStatus",
        "HealthCheck",
        "HealthChecker",
        "HttpCheck",
        "NoHealthyEndpointError",
        "OutlierDetection",
        "PowerOfTwoChoices",
        "RedisServiceRegistry",
        "RoundRobin",
        "ServiceRegistry",
        "TcpCheck",
        "UnknownServiceError",
        "WeightedRandom",
    ),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "AdaptiveThreshold",
    "AllEndpointsDown",
    "Attempt",
    "AttemptFailed",
    "Backoff",
    "BackupError",
    "BackupRepository",
    "BackupResult",
    "BackupSummary",
    "Balancer",
    "BreakerClosed",
    "BreakerConfig",
    "BreakerDisabled",
    "BreakerForcedOpen",
    "BreakerHalfOpened",
    "BreakerMetrics",
    "BreakerOpened",
    "BreakerReset",
    "BreakerState",
    "BreakerStateChanged",
    "BreakerStore",
    "BreakerStoreRestored",
    "BreakerStoreUnavailable",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadRejected",
    "CallRejected",
    "CallTimedOut",
    "CallTimeoutError",
    "CallableCheck",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConfigurationError",
    "CorruptDataError",
    "CorruptDataFound",
    "CountWindow",
    "Endpoint",
    "EndpointEjected",
    "EndpointRestored",
    "EndpointStatus",
    "Event",
    "Fallback",
    "FallbackExhaustedError",
    "FallbackInfo",
    "FallbackResult",
    "FallbackTier",
    "FallbackUsed",
    "GaveUp",
    "HealthCheck",
    "HealthChecker",
    "HedgeStarted",
    "Hedging",
    "HttpCheck",
    "Jitter",
    "KeptSnapshot",
    "LastGood",
    "LimiterStoreFailed",
    "LimiterStoreRecovered",
    "MemoryLimiterStore",
    "MemoryStore",
    "NoHealthyEndpointError",
    "OutlierDetection",
    "Pipeline",
    "PowerOfTwoChoices",
    "PruneReport",
    "RateLimitDecision",
    "RateLimited",
    "RateLimitedError",
    "RateLimiter",
    "Recovered",
    "RecoveryError",
    "RecoveryWarning",
    "RedisLimiterStore",
    "RedisServiceRegistry",
    "RedisStore",
    "RejectedError",
    "RepositoryError",
    "RepositoryLockedError",
    "RestoreError",
    "RestoreResult",
    "ResultRejectedError",
    "RetentionPlan",
    "RetentionPolicy",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhaustedError",
    "RetryOutcome",
    "RetryScheduled",
    "RetryStatistics",
    "RoundRobin",
    "SYSTEM_CLOCK",
    "ServiceRegistry",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotNotFoundError",
    "SnapshotWritten",
    "SqliteLimiterStore",
    "SqliteStore",
    "StoreError",
    "StoreUnavailableError",
    "Strategy",
    "SystemClock",
    "TcpCheck",
    "TimeWindow",
    "Timeout",
    "UnknownServiceError",
    "VerifyReport",
    "WeightedRandom",
    "add_listener",
    "constant",
    "exponential",
    "fallback_info",
    "linear",
    "remaining",
    "remove_listener",
    "retry",
]


def __getattr__(name: str) -> object:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
