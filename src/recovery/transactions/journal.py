"""
The contract every saga journal keeps, and the checks they share.

A journal offers whole state transitions, never field-level reads and
writes: `create` a saga with its first record, `append` records while
holding the saga's claim, `claim` abandoned sagas for recovery, `seize` one
saga for an operator. Every write that follows a claim is guarded by the
claim's fencing token: once another worker has claimed the saga, the old
owner's writes fail with `SagaOwnershipLostError` and change nothing.

Three journals keep this contract: `MemoryJournal` (one process, nothing to
set up), `SqliteJournal` (processes on one host; the default on disk) and
`PostgresJournal` (many hosts).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from typing import Protocol, runtime_checkable

from .errors import JournalCorruptError
from .records import JournalRecord, RecordKind, SagaHeader, SagaStatus

__all__ = [
    "IN_PROGRESS_STATUSES",
    "Claim",
    "ClaimCheck",
    "Journal",
    "SagaHistory",
    "header_from_row",
    "history_from_rows",
    "record_from_row",
    "record_row",
    "vet",
]

IN_PROGRESS_STATUSES = (SagaStatus.RUNNING, SagaStatus.COMPENSATING)

ClaimCheck = Callable[[str, "SagaHistory | JournalCorruptError"], bool]
"""
Asked by `Journal.claim` about each abandoned saga, before claiming it: its
id and its history (or why that cannot be read). True claims it; False
leaves it exactly as it is. It runs inside the claim's transaction (and
lock), so it must be quick and must not use the journal.
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """
    A worker's ownership of one saga: valid while `fence` is the saga's.

    `previous_owner` is who owned the saga just before this claim took it
    (the worker that crashed, for a recovery), read in the same transaction
    as the claim; reading it back afterwards would only find `owner`.
    """

    saga_id: str
    saga_type: str
    owner: str
    fence: int
    previous_owner: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SagaHistory:
    """
    A saga's header and all its records, in order.
    """

    header: SagaHeader
    records: tuple[JournalRecord, ...]


@runtime_checkable
class Journal(Protocol):
    """
    Durable storage for sagas: one header and an append-only list of records.

    `where` names the journal in messages (a path, a URL without password).
    `blocking` says whether its methods do I/O, so that async code runs them
    in a worker thread.
    """

    @property
    def where(self) -> str:
        """
        A human-readable name for the journal (a path or a URL).
        """
        ...

    @property
    def blocking(self) -> bool:
        """
        Whether calls may block on I/O.
        """
        ...

    def create(
        self,
        record: JournalRecord,
        *,
        saga_type: str,
        definition_hash: str,
        lease: float,
    ) -> None:
        """
        Store a new saga owned by `record.owner` with fence `record.fence`,
        and its first record; raise `SagaExistsError` if the id is taken.
        """
        ...

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
        Append *records* and set the saga's status, in one transaction.

        The lease is renewed to *lease* seconds from now (zero releases it).
        Raises `SagaOwnershipLostError` unless *fence* is still the saga's.
        """
        ...

    def release(self, saga_id: str, fence: int) -> None:
        """
        Give up the lease at once if *fence* still holds it; else do nothing.
        """
        ...

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        """
        Extend the lease to *lease* seconds from now if *fence* still holds
        it; return whether it does.
        """
        ...

    def load(self, saga_id: str) -> SagaHistory:
        """
        Return the saga's header and records; raise `SagaNotFoundError` or
        `JournalCorruptError`.
        """
        ...

    def sagas(
        self, statuses: Collection[SagaStatus] | None = None, *, limit: int = 1000
    ) -> list[SagaHeader]:
        """
        Return saga headers, most recently updated first, optionally filtered.
        """
        ...

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
        Claim up to *limit* in-progress sagas that nobody owns any more.

        A saga is abandoned when its lease has expired or when `is_dead`
        says its owner is gone. With *saga_types*, only sagas of those types
        are claimed (others belong to other applications' workers); sagas
        named in *exclude* are passed over. With *check*, each candidate's
        history is read in the claim's transaction and the saga is claimed
        only if *check* accepts it; a refused saga keeps its owner, fence
        and lease, and counts against *limit*. Each claim moves the fencing
        token on, so two workers never hold the same saga.
        """
        ...

    def seize(
        self,
        saga_id: str,
        owner: str,
        *,
        lease: float,
        statuses: Collection[SagaStatus],
    ) -> Claim:
        """
        Claim one saga for an operator whatever its lease, if its status is
        one of *statuses*; raise `SagaStateError` otherwise.
        """
        ...

    def close(self) -> None:
        """
        Release connections and files.
        """
        ...


def _corrupt(
    where: str, saga_id: str | None, seq: int | None, what: str
) -> JournalCorruptError:
    place = f"saga {saga_id!r}" if seq is None else f"saga {saga_id!r} record {seq}"
    return JournalCorruptError(
        f"journal {where}: {place} is unreadable: {what}; it was left untouched",
        saga_id=saga_id,
        seq=seq,
        where=where,
    )


def _text(value: object, *, nullable: bool = False) -> bool:
    return isinstance(value, str) or (nullable and value is None)


def _integer(value: object, *, nullable: bool = False) -> bool:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return ok or (nullable and value is None)


def _seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def header_from_row(row: Sequence[object], where: str) -> SagaHeader:
    """
    Build a header from a stored row, checking every field's type.

    Columns: saga_id, saga_type, definition_hash, status, owner, fence,
    lease_until, last_seq, created_at, updated_at.
    """
    saga_id = row[0] if isinstance(row[0], str) else None
    shapes = (
        _text(row[0]) and _text(row[1]) and _text(row[2]) and _text(row[3]),
        _text(row[4], nullable=True) and _integer(row[5]) and _integer(row[7]),
        _seconds(row[6]) and _seconds(row[8]) and _seconds(row[9]),
    )
    if not all(shapes):
        raise _corrupt(where, saga_id, None, f"malformed header row {tuple(row)!r}")
    try:
        status = SagaStatus(row[3])
    except ValueError:
        raise _corrupt(where, saga_id, None, f"unknown status {row[3]!r}") from None

    return SagaHeader(
        saga_id=row[0],  # type: ignore[arg-type]
        saga_type=row[1],  # type: ignore[arg-type]
        definition_hash=row[2],  # type: ignore[arg-type]
        status=status,
        owner=row[4],  # type: ignore[arg-type]
        fence=row[5],  # type: ignore[arg-type]
        lease_until=float(row[6]),  # type: ignore[arg-type]
        last_seq=row[7],  # type: ignore[arg-type]
        created_at=float(row[8]),  # type: ignore[arg-type]
        updated_at=float(row[9]),  # type: ignore[arg-type]
    )


def record_from_row(
    saga_id: str, row: Sequence[object], expected_seq: int, where: str
) -> JournalRecord:
    """
    Build a record from a stored row, checking its types and its seq.

    Columns: seq, kind, step, step_name, attempt, key, payload, owner, fence,
    at.
    """
    seq = row[0] if isinstance(row[0], int) and _integer(row[0]) else None
    shapes = (
        _integer(row[0]) and _text(row[1]) and _integer(row[2], nullable=True),
        _text(row[3], nullable=True) and _integer(row[4]),
        _text(row[5], nullable=True) and _text(row[6], nullable=True),
        _text(row[7]) and _integer(row[8]) and _seconds(row[9]),
    )
    if not all(shapes):
        raise _corrupt(where, saga_id, seq, f"malformed record row {tuple(row)!r}")
    if seq != expected_seq:
        raise _corrupt(
            where, saga_id, expected_seq, f"record {expected_seq} is missing"
        )
    try:
        kind = RecordKind(row[1])
    except ValueError:
        raise _corrupt(where, saga_id, seq, f"unknown kind {row[1]!r}") from None

    return JournalRecord(
        saga_id=saga_id,
        seq=expected_seq,
        kind=kind,
        step=row[2],  # type: ignore[arg-type]
        step_name=row[3],  # type: ignore[arg-type]
        attempt=row[4],  # type: ignore[arg-type]
        key=row[5],  # type: ignore[arg-type]
        payload=row[6],  # type: ignore[arg-type]
        owner=row[7],  # type: ignore[arg-type]
        fence=row[8],  # type: ignore[arg-type]
        at=float(row[9]),  # type: ignore[arg-type]
    )


def history_from_rows(
    header_row: Sequence[object],
    record_rows: Sequence[Sequence[object]],
    where: str,
) -> SagaHistory:
    """
    Build and check a whole history: seqs run 1..n and n is the header's.
    """
    header = header_from_row(header_row, where)
    records = tuple(
        record_from_row(header.saga_id, row, index, where)
        for index, row in enumerate(record_rows, start=1)
    )
    if len(records) != header.last_seq:
        raise _corrupt(
            where,
            header.saga_id,
            None,
            f"the header counts {header.last_seq} records but {len(records)} exist",
        )

    return SagaHistory(header, records)


def vet(
    check: ClaimCheck | None, saga_id: str, read: Callable[[], SagaHistory]
) -> bool:
    """
    Return whether to claim *saga_id*: ask *check* about its history, as
    *read* returns it or as it fails to read.
    """
    if check is None:
        return True
    try:
        history = read()
    except JournalCorruptError as exc:
        return check(saga_id, exc)
    return check(saga_id, history)


def record_row(record: JournalRecord) -> tuple[object, ...]:
    """
    Return the columns to store for *record*, after saga_id.
    """
    return (
        record.seq,
        record.kind.value,
        record.step,
        record.step_name,
        record.attempt,
        record.key,
        record.payload,
        record.owner,
        record.fence,
        record.at,
    )
