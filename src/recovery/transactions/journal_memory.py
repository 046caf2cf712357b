"""
A saga journal in this process's memory: nothing to set up, nothing survives.

It keeps the full journal contract (fencing, claims, leases), so a saga
behaves the same here as on disk; only a crash of the process loses it.
Safe to share between threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Sequence

from ..clock import SYSTEM_CLOCK, Clock
from .errors import SagaExistsError, SagaNotFoundError, SagaOwnershipLostError
from .journal import IN_PROGRESS_STATUSES, Claim, ClaimCheck, SagaHistory, vet
from .ownership import check_seizable
from .records import JournalRecord, SagaHeader, SagaStatus

__all__ = ["MemoryJournal"]


@dataclasses.dataclass(slots=True)
class _Saga:
    # The mutable twin of SagaHeader, so that an append updates fields in
    # place instead of rebuilding a frozen header.
    saga_id: str
    saga_type: str
    definition_hash: str
    status: SagaStatus
    owner: str | None
    fence: int
    lease_until: float
    created_at: float
    updated_at: float
    records: list[JournalRecord]

    def header(self) -> SagaHeader:
        return SagaHeader(
            saga_id=self.saga_id,
            saga_type=self.saga_type,
            definition_hash=self.definition_hash,
            status=self.status,
            owner=self.owner,
            fence=self.fence,
            lease_until=self.lease_until,
            last_seq=len(self.records),
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def history(self) -> SagaHistory:
        return SagaHistory(self.header(), tuple(self.records))


class MemoryJournal:
    """
    A journal held in a dict, with one lock around each transition.

    Leases are measured on `clock.time()`.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sagas: dict[str, _Saga] = {}

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
        return f"MemoryJournal(sagas={len(self._sagas)})"

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
            if record.saga_id in self._sagas:
                raise SagaExistsError(f"saga {record.saga_id!r} already exists")
            self._sagas[record.saga_id] = _Saga(
                saga_id=record.saga_id,
                saga_type=saga_type,
                definition_hash=definition_hash,
                status=SagaStatus.RUNNING,
                owner=record.owner,
                fence=record.fence,
                lease_until=now + lease,
                created_at=now,
                updated_at=now,
                records=[record],
            )

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
            saga = self._owned_locked(saga_id, fence)
            saga.records.extend(records)
            saga.status = status
            saga.lease_until = now + lease if lease > 0 else 0.0
            saga.updated_at = now

    def release(self, saga_id: str, fence: int) -> None:
        """
        Drop the lease if *fence* still holds it.
        """
        with self._lock:
            saga = self._sagas.get(saga_id)
            if saga is not None and saga.fence == fence:
                saga.lease_until = 0.0

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        """
        Extend the lease if *fence* still holds it.
        """
        now = self._clock.time()
        with self._lock:
            saga = self._sagas.get(saga_id)
            if saga is None or saga.fence != fence or saga.lease_until <= 0:
                return False
            saga.lease_until = now + lease
            return True

    def load(self, saga_id: str) -> SagaHistory:
        """
        Return the saga's header and records.
        """
        with self._lock:
            saga = self._sagas.get(saga_id)
            if saga is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
            return saga.history()

    def sagas(
        self, statuses: Collection[SagaStatus] | None = None, *, limit: int = 1000
    ) -> list[SagaHeader]:
        """
        Return headers, most recently updated first.
        """
        with self._lock:
            headers = [
                saga.header()
                for saga in self._sagas.values()
                if statuses is None or saga.status in statuses
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
        saga_types: Collection[str] | None = None,
        check: ClaimCheck | None = None,
        exclude: Collection[str] = (),
    ) -> list[Claim]:
        """
        Claim in-progress sagas whose lease expired or whose owner is dead.
        """
        now = self._clock.time()
        claims: list[Claim] = []
        refused = 0
        with self._lock:
            for saga in sorted(self._sagas.values(), key=lambda s: s.updated_at):
                if len(claims) + refused >= limit:
                    break
                if saga.status not in IN_PROGRESS_STATUSES:
                    continue
                if saga_types is not None and saga.saga_type not in saga_types:
                    continue
                if saga.saga_id in exclude:
                    continue
                expired = saga.lease_until <= now
                if not expired and (saga.owner is None or not is_dead(saga.owner)):
                    continue
                if vet(check, saga.saga_id, saga.history):
                    claims.append(self._take_locked(saga, owner, now + lease))
                else:
                    refused += 1

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
            saga = self._sagas.get(saga_id)
            if saga is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
            check_seizable(saga_id, saga.status, statuses)
            return self._take_locked(saga, owner, now + lease)

    def close(self) -> None:
        """
        Nothing to release.
        """

    def _owned_locked(self, saga_id: str, fence: int) -> _Saga:
        saga = self._sagas.get(saga_id)
        if saga is None:
            raise SagaNotFoundError(f"no saga {saga_id!r} in the memory journal")
        if saga.fence != fence:
            raise SagaOwnershipLostError(
                f"saga {saga_id!r} was claimed by {saga.owner!r} "
                f"(fence {saga.fence}, ours {fence})"
            )
        return saga

    def _take_locked(self, saga: _Saga, owner: str, lease_until: float) -> Claim:
        previous, saga.owner = saga.owner, owner
        saga.fence += 1
        saga.lease_until = lease_until
        return Claim(saga.saga_id, saga.saga_type, owner, saga.fence, previous)
