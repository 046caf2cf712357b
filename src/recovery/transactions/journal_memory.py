"""
A saga journal in this process's memory: nothing to set up, nothing survives.

It keeps the full journal contract (fencing, claims, corruption checks on
read), so a saga behaves the same here as on disk; only a crash of the
process loses it. Safe to share between threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Sequence

from ..clock import SYSTEM_CLOCK, Clock
from .errors import SagaExistsError, SagaNotFoundError, SagaOwnershipLostError
from .journal import IN_PROGRESS_STATUSES, Claim, SagaHistory
from .ownership import check_seizable
from .records import JournalRecord, SagaHeader, SagaStatus

__all__ = ["MemoryJournal"]


class MemoryJournal:
    """
    A journal held in a dict, with one lock around each transition.

    Leases are measured on `clock.time()`.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._headers: dict[str, SagaHeader] = {}
        self._records: dict[str, list[JournalRecord]] = {}

    @property
    def where(self) -> str:
        """
        The journal's name in messages.
        """
        return "memory"

    @property
    def blocking(self) -> bool:
        """
        False: every call returns at once.
        """
        return False

    def __repr__(self) -> str:
        return f"MemoryJournal(sagas={len(self._headers)})"

    def create(
        self,
        record: JournalRecord,
        *,
        saga_type: str,
        definition_hash: str,
        lease: float,
    ) -> None:
        """
        Store a new saga and its first record.
        """
        now = self._clock.time()
        with self._lock:
            if record.saga_id in self._headers:
                raise SagaExistsError(f"saga {record.saga_id!r} already exists")
            self._headers[record.saga_id] = SagaHeader(
                saga_id=record.saga_id,
                saga_type=saga_type,
                definition_hash=definition_hash,
                status=SagaStatus.RUNNING,
                owner=record.owner,
                fence=record.fence,
                lease_until=now + lease,
                last_seq=record.seq,
                created_at=now,
                updated_at=now,
            )
            self._records[record.saga_id] = [record]

    def append(
        self,
        saga_id: str,
        fence: int,
        records: Sequence[JournalRecord],
        *,
        status: SagaStatus,
        lease: float,
    ) -> None:
        """
        Append records and set the status, if *fence* still owns the saga.
        """
        now = self._clock.time()
        with self._lock:
            header = self._owned_locked(saga_id, fence)
            self._records[saga_id].extend(records)
            self._headers[saga_id] = _replace(
                header,
                status=status,
                lease_until=now + lease if lease > 0 else 0.0,
                last_seq=header.last_seq + len(records),
                updated_at=now,
            )

    def release(self, saga_id: str, fence: int) -> None:
        """
        Drop the lease if *fence* still holds it.
        """
        with self._lock:
            header = self._headers.get(saga_id)
            if header is not None and header.fence == fence:
                self._headers[saga_id] = _replace(header, lease_until=0.0)

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        """
        Extend the lease if *fence* still holds it.
        """
        now = self._clock.time()
        with self._lock:
            header = self._headers.get(saga_id)
            if header is None or header.fence != fence or header.lease_until <= 0:
                return False
            self._headers[saga_id] = _replace(header, lease_until=now + lease)
            return True

    def load(self, saga_id: str) -> SagaHistory:
        """
        Return the saga's header and records.
        """
        with self._lock:
            header = self._headers.get(saga_id)
            if header is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
            return SagaHistory(header, tuple(self._records[saga_id]))

    def sagas(
        self, statuses: Collection[SagaStatus] | None = None, *, limit: int = 1000
    ) -> list[SagaHeader]:
        """
        Return headers, most recently updated first.
        """
        with self._lock:
            headers = [
                h
                for h in self._headers.values()
                if statuses is None or h.status in statuses
            ]
        headers.sort(key=lambda h: (h.updated_at, h.saga_id), reverse=True)
        return headers[:limit]

    def claim(
        self,
        owner: str,
        *,
        lease: float,
        limit: int,
        is_dead: Callable[[str], bool],
    ) -> list[Claim]:
        """
        Claim in-progress sagas whose lease expired or whose owner is dead.
        """
        now = self._clock.time()
        claims: list[Claim] = []
        with self._lock:
            for header in sorted(self._headers.values(), key=lambda h: h.updated_at):
                if len(claims) >= limit:
                    break
                if header.status not in IN_PROGRESS_STATUSES:
                    continue
                expired = header.lease_until <= now
                if not (
                    expired or (header.owner is not None and is_dead(header.owner))
                ):
                    continue
                claims.append(self._take_locked(header, owner, now + lease))

        return claims

    def seize(
        self,
        saga_id: str,
        owner: str,
        *,
        lease: float,
        statuses: Collection[SagaStatus],
    ) -> Claim:
        """
        Claim one saga for an operator, whatever its lease.
        """
        now = self._clock.time()
        with self._lock:
            header = self._headers.get(saga_id)
            if header is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
            check_seizable(saga_id, header.status, statuses)
            return self._take_locked(header, owner, now + lease)

    def close(self) -> None:
        """
        Nothing to release.
        """

    def _owned_locked(self, saga_id: str, fence: int) -> SagaHeader:
        header = self._headers.get(saga_id)
        if header is None:
            raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
        if header.fence != fence:
            raise SagaOwnershipLostError(
                f"saga {saga_id!r} was claimed by {header.owner!r} "
                f"(fence {header.fence}, ours {fence})"
            )
        return header

    def _take_locked(self, header: SagaHeader, owner: str, lease_until: float) -> Claim:
        fence = header.fence + 1
        self._headers[header.saga_id] = _replace(
            header, owner=owner, fence=fence, lease_until=lease_until
        )
        return Claim(header.saga_id, header.saga_type, owner, fence)


def _replace(header: SagaHeader, **changes: object) -> SagaHeader:
    return dataclasses.replace(header, **changes)  # type: ignore[arg-type]
