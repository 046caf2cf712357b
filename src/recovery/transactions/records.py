"""
What a saga journal stores: one header per saga and its append-only records.

The records are the source of truth. For each step the journal holds the
intent (`STEP_STARTED`) written before the action is invoked and the result
(`STEP_COMPLETED` or `STEP_FAILED`) written after it; compensations are
journalled the same way. The header (`SagaHeader`) is a cache of where the
saga stands, updated in the same transaction as the record it reflects, plus
the lease that says which worker owns the saga.

Payloads are text produced by the saga's codec (JSON by default); a journal
stores them verbatim and never interprets them.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = [
    "TERMINAL_STATUSES",
    "JournalRecord",
    "RecordKind",
    "SagaHeader",
    "SagaStatus",
]


class SagaStatus(enum.Enum):
    """
    Where a saga stands.

    `RUNNING` and `COMPENSATING` are in progress; the other four are
    terminal. `STUCK` waits for an operator (`retry` or `abort`); `FAILED`
    means compensation finished but some compensations gave up, or an
    operator aborted the saga.
    """

    RUNNING = "running"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"
    STUCK = "stuck"


TERMINAL_STATUSES = frozenset(
    {SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED, SagaStatus.STUCK}
)


class RecordKind(enum.Enum):
    """
    The kinds of journal record, in the order a saga usually writes them.
    """

    SAGA_STARTED = "saga_started"  # payload: the input
    SAGA_RESUMED = "saga_resumed"  # a recovery worker claimed the saga
    STEP_STARTED = "step_started"  # intent: the action is about to run
    STEP_COMPLETED = "step_completed"  # payload: the action's result
    STEP_FAILED = "step_failed"  # payload: the error of one attempt
    SAGA_COMPENSATING = "saga_compensating"  # payload: which step failed, why
    COMP_STARTED = "comp_started"  # intent: the compensation is about to run
    COMP_COMPLETED = "comp_completed"
    COMP_FAILED = "comp_failed"  # payload: the error of one attempt
    COMP_GAVE_UP = "comp_gave_up"  # retries exhausted; compensation goes on
    SAGA_COMPLETED = "saga_completed"
    SAGA_COMPENSATED = "saga_compensated"
    SAGA_FAILED = "saga_failed"
    SAGA_STUCK = "saga_stuck"  # payload: why an operator is needed
    OPERATOR_ACTION = "operator_action"  # payload: what the operator asked


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JournalRecord:
    """
    One append-only journal entry.

    `seq` counts from 1 within the saga. `step` is the step's position
    (0-based) and `step_name` its name, for step and compensation records.
    `attempt` counts invocations of that action or compensation (from 1).
    `key` is the idempotency key the invocation received. `owner` and
    `fence` identify the worker that wrote the record and its claim. `at`
    is wall-clock seconds since the epoch.
    """

    saga_id: str
    seq: int
    kind: RecordKind
    step: int | None = None
    step_name: str | None = None
    attempt: int = 0
    key: str | None = None
    payload: str | None = None
    owner: str
    fence: int
    at: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaHeader:
    """
    A saga's summary row: its type, definition hash, status and lease.

    `lease_until` is wall-clock seconds (the database's clock on
    PostgreSQL); `last_seq` is the seq of the latest record.
    """

    saga_id: str
    saga_type: str
    definition_hash: str
    status: SagaStatus
    owner: str | None
    fence: int
    lease_until: float
    last_seq: int
    created_at: float
    updated_at: float
