"""
The in-process breaker store: the default, shared by breakers of one name.

Each breaker name gets one `BreakerMachine` and one lock. The lock is held
for the transition only, never while a protected call runs. Breakers of the
same name that use the same `MemoryStore` share one state; the first one to
attach sets the settings used.
"""

from __future__ import annotations

import threading

from ..clock import SYSTEM_CLOCK, Clock
from ..policies.breaker_core import (
    Admission,
    BreakerConfig,
    BreakerMachine,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
)

__all__ = ["MemoryEntry", "MemoryStore"]


class MemoryEntry:
    """
    One breaker's machine and the lock that serialises its transitions.
    """

    __slots__ = ("lock", "machine")

    def __init__(self, machine: BreakerMachine) -> None:
        self.machine = machine
        self.lock = threading.Lock()


class MemoryStore:
    """
    Breaker state in this process, on *clock* (monotonic time by default).
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._entries: dict[str, MemoryEntry] = {}
        self._lock = threading.Lock()

    def entry(self, name: str, config: BreakerConfig) -> MemoryEntry:
        """
        Return the entry for *name*, creating it with *config* if new.
        """
        entry = self._entries.get(name)
        if entry is not None:
            return entry

        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                machine = BreakerMachine(config, self.clock.now())
                entry = self._entries[name] = MemoryEntry(machine)
        return entry

    def acquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Decide whether a call may run; see `BreakerStore.acquire`.
        """
        entry = self.entry(name, config)
        with entry.lock:
            entry.machine.rejected += rejected
            return entry.machine.acquire(self.clock.now(), permit)

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
        Count an outcome and apply it; see `BreakerStore.record`.
        """
        entry = self.entry(name, config)
        with entry.lock:
            entry.machine.rejected += rejected
            now = self.clock.now()
            return entry.machine.record(now, generation, permit, outcome, duration)

    def force(self, name: str, config: BreakerConfig, state: BreakerState) -> StateView:
        """
        Set an operator state; see `BreakerStore.force`.
        """
        entry = self.entry(name, config)
        with entry.lock:
            return entry.machine.force(self.clock.now(), state)

    def metrics(
        self, name: str, config: BreakerConfig | None = None
    ) -> BreakerMetrics | None:
        """
        Return the state and counters of *name*, or None if unknown.
        """
        entry = self._entries.get(name)
        if entry is None:
            return None
        with entry.lock:
            return entry.machine.metrics(name, self.clock.now())

    def reset_metrics(self, name: str, config: BreakerConfig) -> None:
        """
        Set the counters of *name* to zero.
        """
        entry = self.entry(name, config)
        with entry.lock:
            entry.machine.reset_metrics()

    def names(self) -> list[str]:
        """
        Return the names of the breakers held, sorted.
        """
        return sorted(self._entries)

    def describe(self) -> str:
        """
        Return "memory".
        """
        return "memory"

    def close(self) -> None:
        """
        Do nothing: memory needs no releasing.
        """

    async def aacquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Async twin of `acquire` (no I/O: it runs inline).
        """
        return self.acquire(name, config, permit, rejected=rejected)

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
        Async twin of `record` (no I/O: it runs inline).
        """
        return self.record(
            name, config, generation, permit, outcome, duration, rejected=rejected
        )
