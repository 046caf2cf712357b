"""
The exceptions that `recovery` raises itself.

When a strategy gives up, the caller sees the original exception of the last
attempt, with a note saying what was tried; the classes here are for the
cases where `recovery` decided something on its own. The whole tree, with
the families' own classes (defined beside their code) in brackets::

    RecoveryError
    ├── ConfigurationError (also ValueError)   a setting is out of range
    ├── RejectedError                          no call was made; retry later
    │   ├── CircuitOpenError                   a breaker is open
    │   ├── BulkheadFullError                  no concurrency slot was free
    │   ├── RateLimitedError                   a rate limit is exhausted
    │   └── [NoHealthyEndpointError]           no endpoint of a service is up
    ├── CallTimeoutError (also TimeoutError)   a call ran past its time limit
    ├── StoreError                             a state store failed or is damaged
    │   ├── StoreUnavailableError              the store could not be reached
    │   └── [JournalError]                     a saga journal failed
    │       ├── [JournalCorruptError]          ... holds damaged records
    │       ├── [SagaExistsError], [SagaNotFoundError (also KeyError)]
    │       └── [SagaOwnershipLostError]       another worker took the saga
    ├── [FallbackExhaustedError] (also ExceptionGroup)   every tier failed
    ├── [ResultRejectedError]                  a result failed its check
    ├── [UnknownServiceError] (also LookupError)
    ├── [SagaFailedError] (also ExceptionGroup)  a step failed for good
    ├── [SagaDefinitionError] (also ValueError), [SagaDefinitionChangedError]
    ├── [SagaStateError]                       an operator action does not fit
    └── [BackupError]                          a backup repository refused
        ├── [CorruptDataError]                 a chunk or manifest is damaged
        ├── [RepositoryError], [RepositoryLockedError], [RestoreError]
        └── [SnapshotNotFoundError] (also LookupError)
"""

from __future__ import annotations

__all__ = [
    "BulkheadFullError",
    "CallTimeoutError",
    "CircuitOpenError",
    "ConfigurationError",
    "RateLimitedError",
    "RecoveryError",
    "RejectedError",
    "StoreError",
    "StoreUnavailableError",
]


class RecoveryError(Exception):
    """
    The root of every exception that `recovery` raises on its own.
    """


class ConfigurationError(RecoveryError, ValueError):
    """
    A setting is outside its accepted range; raised when the object is built.
    """


class RejectedError(RecoveryError):
    """
    A call was refused before it ran.

    `retry_after` is the number of seconds after which trying again may
    succeed, or `None` when nobody can tell.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpenError(RejectedError):
    """
    A circuit breaker refused the call because it is open.

    Carries the breaker's `name`, `retry_after` (seconds until a trial call
    is allowed) and `last_failure`, the exception that last counted against
    the breaker, when this process saw it.
    """

    def __init__(
        self,
        name: str,
        *,
        retry_after: float | None,
        last_failure: BaseException | None = None,
        message: str | None = None,
    ) -> None:
        if message is None:
            when = "" if retry_after is None else f"; next trial in {retry_after:.3f} s"
            message = f"circuit {name!r} is open{when}"
        super().__init__(message, retry_after=retry_after)
        self.name = name
        self.last_failure = last_failure


class BulkheadFullError(RejectedError):
    """
    A bulkhead had no free slot and no room (or time) left in its queue.
    """


class RateLimitedError(RejectedError):
    """
    A rate limiter refused the call; `retry_after` says when one would pass.
    """


class CallTimeoutError(RecoveryError, TimeoutError):
    """
    A call did not finish within its time limit.

    `timeout` is the limit in seconds that was exceeded.
    """

    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


class StoreError(RecoveryError):
    """
    A state store failed, or holds data that cannot be trusted.
    """


class StoreUnavailableError(StoreError):
    """
    A state store could not be reached.
    """
