"""
How a `CircuitBreaker` talks to a shared store: a cache, a fallback, and a
small breaker on the store itself.

The cache keeps the store's last answer (state, generation, and when an open
breaker allows a trial), on the breaker's own clock:

- closed, disabled and forced-open answers are trusted for `sync_interval`
  seconds, so that a closed-state call costs one round trip (its report,
  whose answer refreshes the cache);
- an open answer is trusted until its trial time: rejections need no round
  trip, and are counted locally until the next store operation carries them;
- half-open is never cached: every trial must get its permit from the
  store, or trials could not be bounded across processes.

When the store fails, the link goes *down*: for `store_retry` seconds the
store is not asked at all, then one caller probes it. Meanwhile the breaker
falls back as `on_store_error` says; with ``"local"`` it judges calls with a
fresh in-process machine, dropped (not merged) when the store answers again.
One WARNING is logged per outage and one INFO on return.
"""

from __future__ import annotations

import threading
from typing import Literal

from ..clock import Clock
from ..errors import StoreError
from ..events import EventEmitter
from ..stores.base import BreakerStore
from ..stores.memory import MemoryEntry
from .breaker_core import (
    Admission,
    AdmissionKind,
    BreakerConfig,
    BreakerMachine,
    BreakerState,
)
from .breaker_events import BreakerStoreRestored, BreakerStoreUnavailable

__all__ = ["SharedLink", "StoreErrorPolicy"]

StoreErrorPolicy = Literal["local", "allow", "deny"]

_FALLBACKS: dict[str, str] = {
    "local": "a local breaker in this process",
    "allow": "no breaker (every call allowed)",
    "deny": "no breaker (every call rejected)",
}


class SharedLink:
    """
    One breaker's connection to a shared store; see the module docstring.

    Thread-safe: the cache is read without the lock (each read is an answer
    that was true a moment ago) and written under it.
    """

    __slots__ = (
        "_clock",
        "_config",
        "_emitter",
        "_lock",
        "_name",
        "_policy",
        "_store_retry",
        "_sync_interval",
        "down",
        "down_until",
        "fallback",
        "generation",
        "open_until",
        "rejected",
        "state",
        "store",
        "valid_until",
    )

    def __init__(
        self,
        store: BreakerStore,
        *,
        name: str,
        config: BreakerConfig,
        clock: Clock,
        sync_interval: float,
        store_retry: float,
        policy: StoreErrorPolicy,
        emitter: EventEmitter,
    ) -> None:
        self.store = store
        self._name = name
        self._config = config
        self._clock = clock
        self._sync_interval = sync_interval
        self._store_retry = store_retry
        self._policy = policy
        self._emitter = emitter
        self._lock = threading.Lock()
        self.state = BreakerState.CLOSED
        self.generation = 0
        self.valid_until = float("-inf")
        self.open_until = float("-inf")
        self.down = False
        self.down_until = float("-inf")
        self.fallback: MemoryEntry | None = None
        self.rejected = 0

    # -- the cache ----------------------------------------------------------

    def cached(self, now: float) -> Admission | None:
        """
        Return the admission the cache can decide now, or None to ask the store.
        """
        state = self.state
        if now < self.valid_until:
            if state is BreakerState.CLOSED:
                return Admission(AdmissionKind.ALLOW, state, self.generation)
            if state is BreakerState.DISABLED:
                return Admission(AdmissionKind.BYPASS, state, self.generation)
            if state is BreakerState.FORCED_OPEN:
                self._count_rejection()
                return Admission(AdmissionKind.REJECT, state, self.generation)
        if state is BreakerState.OPEN and now < self.open_until:
            self._count_rejection()
            retry_after = self.open_until - now
            return Admission(
                AdmissionKind.REJECT, state, self.generation, retry_after=retry_after
            )
        return None

    def _count_rejection(self) -> None:
        with self._lock:
            self.rejected += 1

    def take_rejected(self) -> int:
        """
        Return and clear the count of rejections not yet reported to the store.
        """
        with self._lock:
            rejected, self.rejected = self.rejected, 0
        return rejected

    def absorb(
        self, state: BreakerState, generation: int, retry_after: float | None
    ) -> None:
        """
        Cache a store's answer; a store that answers is up again.
        """
        self._answered()
        now = self._clock.now()
        with self._lock:
            self.state = state
            self.generation = generation
            half_open = state is BreakerState.HALF_OPEN
            self.valid_until = now if half_open else now + self._sync_interval
            self.open_until = now + retry_after if retry_after is not None else now

    # -- store health -------------------------------------------------------

    def due(self, now: float) -> bool:
        """
        Return whether the store may be asked now.
        """
        if not self.down:
            return True
        # One caller at a time probes a store that failed; the others keep
        # using the fallback until the probe answers.
        with self._lock:
            if now < self.down_until:
                return False
            self.down_until = now + self._store_retry
        return True

    def failed(self, exc: StoreError) -> None:
        """
        Note a store failure: stop asking it for a while, start the fallback.
        """
        now = self._clock.now()
        with self._lock:
            first = not self.down
            self.down = True
            self.down_until = now + self._store_retry
            self.valid_until = float("-inf")
            self.open_until = float("-inf")
            if first:
                self.fallback = MemoryEntry(BreakerMachine(self._config, now))
        if first:
            self._emitter.emit(
                BreakerStoreUnavailable(
                    source=self._name,
                    store=self.store.describe(),
                    error=f"{type(exc).__name__}: {exc}",
                    fallback=_FALLBACKS[self._policy],
                )
            )

    def _answered(self) -> None:
        if not self.down:
            return
        with self._lock:
            restored = self.down
            self.down = False
            self.fallback = None
        if restored:
            self._emitter.emit(
                BreakerStoreRestored(source=self._name, store=self.store.describe())
            )

    def answered(self) -> None:
        """
        Note that the store answered (for reads that change no cache).
        """
        self._answered()

    def fallback_admission(self) -> Admission | None:
        """
        Return the admission while the store is down, or None to judge the
        call on the local `fallback` machine.
        """
        if self._policy == "allow":
            return Admission(AdmissionKind.BYPASS, BreakerState.DISABLED, -1)
        if self._policy == "deny":
            retry_after = max(0.0, self.down_until - self._clock.now())
            return Admission(
                AdmissionKind.REJECT, BreakerState.OPEN, -1, retry_after=retry_after
            )
        if self.fallback is None:
            # The store came back between the check and now.
            return Admission(AdmissionKind.BYPASS, BreakerState.CLOSED, -1)
        return None
