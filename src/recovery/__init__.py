"""
Recovery strategies: retry, circuit breakers, graceful degradation, service
discovery, sagas and backups, in one typed API with sync and async twins.
"""

from .clock import SYSTEM_CLOCK, Clock, SystemClock
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
from .events import Event, add_listener, remove_listener
from .policies.backoff import Backoff, Jitter, constant, exponential, linear
from .policies.retry import Attempt, Retry, retry
from .policies.retry_events import (
    AttemptFailed,
    GaveUp,
    Recovered,
    RetryOutcome,
    RetryScheduled,
    RetryStatistics,
)

__all__ = [
    "SYSTEM_CLOCK",
    "Attempt",
    "AttemptFailed",
    "GaveUp",
    "Recovered",
    "Retry",
    "RetryOutcome",
    "RetryScheduled",
    "RetryStatistics",
    "retry",
    "Backoff",
    "BulkheadFullError",
    "CallTimeoutError",
    "CircuitOpenError",
    "Clock",
    "ConfigurationError",
    "Event",
    "Jitter",
    "RateLimitedError",
    "RecoveryError",
    "RejectedError",
    "RetryBudgetExhaustedError",
    "StoreError",
    "StoreUnavailableError",
    "SystemClock",
    "add_listener",
    "constant",
    "exponential",
    "linear",
    "remove_listener",
]
