"""
Repository locks: shared for backup, restore and verify; exclusive for
forget and prune.

A lock is a small JSON file in ``<repo>/locks`` naming its kind, host and
process. To take a lock we first write ours, then look at the others: if
one conflicts we remove ours and refuse. Two processes racing can thus both
back off, but never both proceed.

A lock whose process is gone (same host, pid no longer running) is stale
and removed on sight. Locks from other hosts are never presumed stale:
only `break_locks` removes them, on purpose.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from ..events import EventEmitter
from ._fs import write_atomic
from .errors import RepositoryLockedError
from .events import StaleLockRemoved

__all__ = ["LockKind", "LockInfo", "RepositoryLock", "read_locks"]

logger = logging.getLogger(__name__)


class LockKind(enum.Enum):
    """
    Shared locks coexist; an exclusive lock excludes every other lock.
    """

    SHARED = "shared"
    EXCLUSIVE = "exclusive"


@dataclass(frozen=True, slots=True)
class LockInfo:
    """
    A lock file as read back: where it is, and who holds it for what.
    """

    path: str
    kind: LockKind
    host: str
    pid: int
    purpose: str

    def describe(self) -> str:
        """
        Return a one-line description for error messages.
        """
        kind, purpose = self.kind.value, self.purpose
        return f"{kind} lock for {purpose} by pid {self.pid} on {self.host}"

    def is_stale(self, host: str) -> bool:
        """
        Return whether the holder is known to be gone (same host, no pid).
        """
        if self.host != host:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False

        return False


def read_locks(directory: str) -> list[LockInfo]:
    """
    Return every lock in *directory*; unreadable files count as live locks.
    """
    found: list[LockInfo] = []
    with os.scandir(directory) as entries:
        paths = sorted(e.path for e in entries if e.name.endswith(".json"))
    for path in paths:
        try:
            with open(path, "rb") as file:
                raw = json.load(file)
            found.append(
                LockInfo(
                    path,
                    LockKind(raw["kind"]),
                    str(raw["host"]),
                    int(raw["pid"]),
                    str(raw.get("purpose", "?")),
                )
            )
        except FileNotFoundError:
            continue
        except (ValueError, KeyError, TypeError):
            # A half-written or foreign file: safer to treat it as a holder.
            found.append(LockInfo(path, LockKind.EXCLUSIVE, "?", -1, "unknown"))

    return found


class RepositoryLock:
    """
    One lock on a repository, taken by `acquire` and dropped by `release`.

    Use as a context manager: ``with RepositoryLock(...).held(): ...``.
    """

    def __init__(
        self,
        directory: str,
        kind: LockKind,
        *,
        purpose: str,
        source: str,
        emitter: EventEmitter,
    ) -> None:
        self.directory = directory
        self.kind = kind
        self.purpose = purpose
        self.host = socket.gethostname()
        self.path = os.path.join(
            directory, f"{self.host}-{os.getpid()}-{secrets.token_hex(4)}.json"
        )
        self._source = source
        self._emitter = emitter

    def acquire(self) -> None:
        """
        Take the lock, or raise `RepositoryLockedError` naming the holders.
        """
        body = {
            "kind": self.kind.value,
            "host": self.host,
            "pid": os.getpid(),
            "purpose": self.purpose,
        }
        write_atomic(self.path, json.dumps(body).encode())

        conflicts = [lock for lock in self._others() if self._conflicts(lock)]
        if conflicts:
            self.release()
            holders = [c.describe() for c in conflicts]
            raise RepositoryLockedError(
                f"the repository is locked: {'; '.join(holders)}", holders=holders
            )

    def release(self) -> None:
        """
        Drop the lock; releasing twice is harmless.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @contextlib.contextmanager
    def held(self) -> Iterator[RepositoryLock]:
        """
        Hold the lock for the duration of the block.
        """
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def _others(self) -> Iterator[LockInfo]:
        for lock in read_locks(self.directory):
            if lock.path == self.path:
                continue
            if lock.is_stale(self.host):
                self._remove_stale(lock)
                continue
            yield lock

    def _conflicts(self, other: LockInfo) -> bool:
        return LockKind.EXCLUSIVE in (self.kind, other.kind)

    def _remove_stale(self, lock: LockInfo) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock.path)
        if self._emitter.wants(StaleLockRemoved):
            self._emitter.emit(
                StaleLockRemoved(
                    source=self._source,
                    holder=lock.describe(),
                )
            )
