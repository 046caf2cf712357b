"""
Keeping a saga's lease alive while its steps run.

A worker owns a saga for `lease` seconds after each journal write. A step
that runs longer than that would let another host take the saga over, so
while a saga is driven its lease is renewed every third of it. If the
process is paused or dies, the renewals stop and the lease runs out, which
is exactly when others should step in; the fencing token then keeps the old
owner from writing anything.

One daemon thread per process renews every running saga's lease: starting a
thread for each saga would cost more than the saga's own journal writes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from types import TracebackType

from .journal import Journal

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False, slots=True)
class _Lease:
    journal: Journal
    saga_id: str
    fence: int
    lease: float
    due: float


class _Renewer:
    """
    The process's renewal thread and the leases it keeps alive.

    Renewals run outside the lock, so registering never waits for I/O.
    Timing uses the real monotonic clock: leases are measured by journals
    against real time, whatever clock the saga was given.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._leases: set[_Lease] = set()
        self._thread: threading.Thread | None = None

    def add(self, entry: _Lease) -> None:
        with self._cond:
            self._leases.add(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="recovery-saga-leases", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def discard(self, entry: _Lease) -> None:
        with self._cond:
            self._leases.discard(entry)

    def _run(self) -> None:
        while True:
            due = self._wait_for_due()
            for entry in due:
                self._renew(entry)

    def _wait_for_due(self) -> list[_Lease]:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [e for e in self._leases if e.due <= now]
                if due:
                    for entry in due:
                        entry.due = now + entry.lease / 3
                    return due
                wait = min((e.due for e in self._leases), default=now + 60.0) - now
                self._cond.wait(wait)

    def _renew(self, entry: _Lease) -> None:
        try:
            owned = entry.journal.renew(entry.saga_id, entry.fence, entry.lease)
        except Exception:
            # The next renewal may succeed; if none does, the lease runs out
            # and another worker takes over, fenced as usual.
            logger.warning(
                "saga %s: could not renew its lease; will try again",
                entry.saga_id,
                exc_info=True,
            )
            return
        if not owned:
            self.discard(entry)


_RENEWER = _Renewer()


class Heartbeat:
    """
    A context manager that keeps one saga's lease renewed while it is open.

    Journals that keep nothing across processes (`blocking` is false) need
    no renewal.
    """

    __slots__ = ("_entry", "_renewer")

    def __init__(
        self,
        journal: Journal,
        saga_id: str,
        fence: int,
        lease: float,
        *,
        renewer: _Renewer = _RENEWER,
    ) -> None:
        self._renewer = renewer
        self._entry = _Lease(journal, saga_id, fence, lease, due=0.0)

    def __enter__(self) -> Heartbeat:
        entry = self._entry
        if entry.journal.blocking:
            entry.due = time.monotonic() + entry.lease / 3
            self._renewer.add(entry)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._renewer.discard(self._entry)
