"""
The interface every breaker store implements.

A store keeps the state of named circuit breakers where several breaker
objects can reach it: in this process (`MemoryStore`), in processes on one
host (`SqliteStore`), or on many hosts (`RedisStore`). Each operation is one
whole, atomic transition of `recovery.policies.breaker_core.BreakerMachine`
(acquire a permit, record an outcome, force a state), never a read or write
of single fields, so that two processes can never interleave halfway through
a decision.

Stores take the time from their own clock (Redis from the server), never
from the caller, so that every process sharing a breaker agrees on when it
opened. Callers pass durations only.

A store that cannot be reached raises `StoreUnavailableError`; one that holds
data it cannot read raises `StoreError`. The breaker then falls back as its
`on_store_error` setting says.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..policies.breaker_core import (
    Admission,
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
)

__all__ = ["BreakerStore"]


@runtime_checkable
class BreakerStore(Protocol):
    """
    Where circuit breakers keep their state; every operation is atomic.

    *rejected* on `acquire` and `record` is the number of calls the caller
    rejected on its own (from a cached open state) since it last reported,
    added to the shared `rejected_calls` counter in the same transition.
    """

    def acquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Decide whether a call may run; *permit* names the trial it would hold.
        """
        ...

    def record(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Count an outcome of a call admitted at *generation*, and apply it.
        """
        ...

    def force(self, name: str, config: BreakerConfig, state: BreakerState) -> StateView:
        """
        Set an operator state: CLOSED (reset), FORCED_OPEN or DISABLED.
        """
        ...

    def metrics(
        self, name: str, config: BreakerConfig | None = None
    ) -> BreakerMetrics | None:
        """
        Return the breaker's state and counters, or None if it was never used.
        """
        ...

    def reset_metrics(self, name: str, config: BreakerConfig) -> None:
        """
        Set the breaker's counters to zero, keeping its state.
        """
        ...

    def names(self) -> list[str]:
        """
        Return the names of the breakers this store holds, sorted.
        """
        ...

    def describe(self) -> str:
        """
        Return a short description for logs, without credentials.
        """
        ...

    def close(self) -> None:
        """
        Release connections; the store must not be used afterwards.
        """
        ...

    async def aacquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Async twin of `acquire`.
        """
        ...

    async def arecord(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Async twin of `record`.
        """
        ...
