"""
Transactions: sagas with compensations, a durable journal and recovery.

`Transaction` is the simplest form (in memory, nothing to set up). A `Saga`
journals every intent and result, so that `recover_sagas` can finish it
after its process dies. Journals: `MemoryJournal`, `SqliteJournal` (the
default on disk) and `PostgresJournal` (many hosts; psycopg, from the
postgres extra, is imported only when one is opened).
"""

from __future__ import annotations

from .codec import JSON_CODEC, Codec, JsonCodec
from .errors import (
    JournalCorruptError,
    JournalError,
    SagaDefinitionChangedError,
    SagaDefinitionError,
    SagaExistsError,
    SagaFailedError,
    SagaNotFoundError,
    SagaOwnershipLostError,
    SagaStateError,
)
from .journal import Claim, Journal, SagaHistory
from .journal_memory import MemoryJournal
from .journal_postgres import PostgresJournal
from .journal_sqlite import SqliteJournal
from .records import JournalRecord, RecordKind, SagaHeader, SagaStatus
from .recover import (
    RecoveryReport,
    abort_saga,
    arecover_sagas,
    recover_sagas,
    retry_saga,
)
from .saga import Saga, SagaOutcome
from .saga_events import (
    SagaCompensated,
    SagaCompensationFailed,
    SagaCompensationRan,
    SagaCompleted,
    SagaFailed,
    SagaRecovered,
    SagaStepCompleted,
    SagaStepFailed,
    SagaStepStarted,
    SagaStuck,
)
from .step import SagaContext, Step, idempotency_key
from .transaction import Transaction

__all__ = [
    "Claim",
    "Codec",
    "JSON_CODEC",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalRecord",
    "JsonCodec",
    "MemoryJournal",
    "PostgresJournal",
    "RecordKind",
    "RecoveryReport",
    "Saga",
    "SagaCompensated",
    "SagaCompensationFailed",
    "SagaCompensationRan",
    "SagaCompleted",
    "SagaContext",
    "SagaDefinitionChangedError",
    "SagaDefinitionError",
    "SagaExistsError",
    "SagaFailed",
    "SagaFailedError",
    "SagaHeader",
    "SagaHistory",
    "SagaNotFoundError",
    "SagaOutcome",
    "SagaOwnershipLostError",
    "SagaRecovered",
    "SagaStateError",
    "SagaStatus",
    "SagaStepCompleted",
    "SagaStepFailed",
    "SagaStepStarted",
    "SagaStuck",
    "SqliteJournal",
    "Step",
    "Transaction",
    "abort_saga",
    "arecover_sagas",
    "idempotency_key",
    "open_journal",
    "recover_sagas",
    "retry_saga",
]


def open_journal(target: str) -> Journal:
    """
    Open the journal *target* names: a ``postgresql://`` URL or an SQLite path.
    """
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresJournal(target)
    return SqliteJournal(target)
