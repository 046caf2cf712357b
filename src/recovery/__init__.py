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

__all__ = [
    "SYSTEM_CLOCK",
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
