"""
Keeping a saga's lease alive while its steps run.

A worker owns a saga for `lease` seconds after each journal write. A step
that runs longer than that would let another host take the saga over, so a
background thread renews the lease every third of it while the saga is
driven. If the process is paused or dies, the renewals stop and the lease
runs out, which is exactly when others should step in; the fencing token
then keeps the old owner from writing anything.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from .journal import Journal

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """
    A context manager renewing one saga's lease in a daemon thread.

    Journals that keep nothing across processes (`blocking` is false) need
    no renewal, and no thread is started for them.
    """

    def __init__(
        self, journal: Journal, saga_id: str, fence: int, lease: float
    ) -> None:
        self._journal = journal
        self._saga_id = saga_id
        self._fence = fence
        self._lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._journal.blocking:
            self._thread = threading.Thread(
                target=self._run, name=f"saga-lease-{self._saga_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                owned = self._journal.renew(self._saga_id, self._fence, self._lease)
            except Exception:
                # The next renewal may succeed; if none does, the lease runs
                # out and another worker takes over, fenced as usual.
                logger.warning(
                    "saga %s: could not renew its lease; will try again",
                    self._saga_id,
                    exc_info=True,
                )
                continue
            if not owned:
                return
