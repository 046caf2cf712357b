"""
Finishing sagas whose process died, and the operator's actions on stuck ones.

`recover_sagas` claims every in-progress saga that nobody owns any more (its
lease expired, or its owner's process on this host is gone), replays its
journal and finishes it with the registered definition: a compensation
journalled as done is never run again, and an in-doubt step is invoked again
with its idempotency key or compensated, as the step declares. Each claim
moves the saga's fencing token on, so two workers never finish the same
saga, and a second run finds nothing left to do.

A saga that cannot be resumed as it stands (a record that does not read
back, a changed definition) is found before it is claimed and is not
claimed at all: claiming it would move its owner and fence on at every run
for nothing. It is reported, and stays exactly as it was.

`retry_saga` and `abort_saga` are what an operator does with a stuck saga;
both are journalled as `operator_action` records, so the history stays
complete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from .._validation import require_int, require_positive
from .errors import JournalCorruptError, SagaDefinitionError, SagaOwnershipLostError
from .journal import Claim, ClaimCheck, Journal, SagaHistory
from .ownership import is_dead_locally, new_worker_id
from .records import JournalRecord, RecordKind, SagaStatus
from .saga import Saga
from .saga_events import SagaRecovered

__all__ = [
    "RecoveryReport",
    "abort_saga",
    "arecover_sagas",
    "recover_sagas",
    "retry_saga",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class RecoveryReport:
    """
    What one recovery run did.

    `finished` maps each saga it took over to the status it ended in.
    `errors` maps each saga it could not finish to the reason: a changed or
    missing definition, a damaged journal, a failing journal. Those sagas
    were left exactly as they were: the unreadable ones and those of a
    changed definition were never claimed (owner, fence and lease are
    unchanged); the others were released for a later run. `lost` lists
    sagas another worker claimed while this one still held them (its lease
    ran out before their turn came); that worker finishes them.
    """

    finished: dict[str, SagaStatus] = dataclasses.field(default_factory=dict)
    errors: dict[str, Exception] = dataclasses.field(default_factory=dict)
    lost: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """
        Whether every claimed saga was finished.
        """
        return not self.errors


def _registry(definitions: Mapping[str, Saga] | Iterable[Saga]) -> dict[str, Saga]:
    if isinstance(definitions, Mapping):
        sagas = list(definitions.values())
    else:
        sagas = list(definitions)
    registry: dict[str, Saga] = {}
    for saga in sagas:
        if not isinstance(saga, Saga):
            raise SagaDefinitionError(f"definitions must be Saga objects, got {saga!r}")
        if saga.name in registry and registry[saga.name] is not saga:
            raise SagaDefinitionError(f"two definitions are named {saga.name!r}")
        registry[saga.name] = saga
    return registry


def _never_dead(owner: str) -> bool:
    return False


def _unknown(claim: Claim, registry: Mapping[str, Saga]) -> SagaDefinitionError:
    known = ", ".join(sorted(registry)) or "none"
    return SagaDefinitionError(
        f"saga {claim.saga_id!r} is of type {claim.saga_type!r}, which has no "
        f"registered definition (registered: {known}); it was left as it was"
    )


def _log_error(saga_id: str, saga_type: str, exc: Exception) -> None:
    logger.error(
        "saga %s (%s) could not be recovered and was left as it was: %s",
        saga_id,
        saga_type,
        exc,
        extra={
            "recovery_event": "saga_recovery_failed",
            "recovery_saga_id": saga_id,
        },
    )


def _resumable_check(
    journal: Journal, registry: Mapping[str, Saga], report: RecoveryReport
) -> ClaimCheck:
    # Why check before claiming, rather than claim, fail and give the saga
    # back: a claim moves the fencing token on, and it must never move
    # back (a worker still holding the old token could then write again).
    # So a saga that no run can resume would have its owner and fence
    # changed by every run, though nothing is done to it. Refused here, it
    # is never taken: its owner, fence and lease stay as they were.
    def refuse(saga_id: str, saga_type: str, exc: Exception) -> bool:
        report.errors[saga_id] = exc
        _log_error(saga_id, saga_type, exc)
        return False

    def check(saga_id: str, history: SagaHistory | JournalCorruptError) -> bool:
        if isinstance(history, JournalCorruptError):
            return refuse(saga_id, "unreadable", history)
        saga_type = history.header.saga_type
        saga = registry.get(saga_type)
        try:
            if saga is not None:
                saga._check_resumable(journal, history)
        except Exception as exc:  # noqa: BLE001 - reported; the run goes on
            return refuse(saga_id, saga_type, exc)
        return True

    return check


def _announce(
    saga: Saga, claim: Claim, previous_owner: str | None, status: str
) -> None:
    saga.emitter.emit(
        SagaRecovered(
            source=saga.name,
            saga_id=claim.saga_id,
            previous_owner=previous_owner,
            status=status,
        )
    )


def recover_sagas(
    journal: Journal,
    definitions: Mapping[str, Saga] | Iterable[Saga],
    *,
    lease: float = 60.0,
    batch: int = 10,
    owner: str | None = None,
    detect_dead_owners: bool = True,
) -> RecoveryReport:
    """
    Finish every abandoned saga in *journal*; return what was done.

    *definitions* are the sagas that may be resumed (a dict or a list; each
    is known by its name); only sagas of those types are claimed, *batch*
    at a time. An owner whose process no longer exists on this host is
    taken as gone at once; pass ``detect_dead_owners=False`` where hosts
    share a host name but not their process ids (containers given the same
    host name), so that only expired leases count. Sagas the run cannot
    finish are reported in `errors`, logged at ERROR and released untouched.
    Async steps need `arecover_sagas`.
    """
    registry = _registry(definitions)
    lease = require_positive("lease", lease)
    batch = require_int("batch", batch, minimum=1)
    owner = new_worker_id() if owner is None else owner
    report = RecoveryReport()
    failed: list[Claim] = []
    check = _resumable_check(journal, registry, report)

    # A batch may be refused whole; the run ends when a batch claims and
    # refuses nothing. Refused sagas are not looked at again in this run.
    while True:
        refused = len(report.errors)
        claims = journal.claim(
            owner,
            lease=lease,
            limit=batch,
            is_dead=is_dead_locally if detect_dead_owners else _never_dead,
            saga_types=list(registry),
            check=check,
            exclude=set(report.errors),
        )
        if not claims and len(report.errors) == refused:
            break
        for claim in claims:
            try:
                status = _recover_one(journal, claim, registry)
            except SagaOwnershipLostError:
                report.lost.append(claim.saga_id)
            except Exception as exc:  # noqa: BLE001 - one bad saga must not stop the rest
                report.errors[claim.saga_id] = exc
                _log_error(claim.saga_id, claim.saga_type, exc)
                failed.append(claim)
            else:
                report.finished[claim.saga_id] = status

    # Released only now, so that this run does not claim them again.
    for claim in failed:
        journal.release(claim.saga_id, claim.fence)
    return report


def _recover_one(
    journal: Journal, claim: Claim, registry: Mapping[str, Saga]
) -> SagaStatus:
    saga = registry.get(claim.saga_type)
    if saga is None:
        raise _unknown(claim, registry)
    if saga.is_async:
        raise SagaDefinitionError(
            f"saga type {saga.name!r} has async steps; recover it with arecover_sagas"
        )

    history = journal.load(claim.saga_id)
    _announce(saga, claim, claim.previous_owner, history.header.status.value)
    return saga._resume(journal, claim, history)


async def arecover_sagas(
    journal: Journal,
    definitions: Mapping[str, Saga] | Iterable[Saga],
    *,
    lease: float = 60.0,
    batch: int = 10,
    owner: str | None = None,
    detect_dead_owners: bool = True,
) -> RecoveryReport:
    """
    Finish every abandoned saga in *journal* from the event loop; the async
    twin of `recover_sagas`, which also runs async steps.
    """
    registry = _registry(definitions)
    lease = require_positive("lease", lease)
    batch = require_int("batch", batch, minimum=1)
    owner = new_worker_id() if owner is None else owner
    report = RecoveryReport()
    failed: list[Claim] = []
    check = _resumable_check(journal, registry, report)

    while True:
        refused = len(report.errors)
        claims = await _aio(
            journal,
            journal.claim,
            owner,
            lease=lease,
            limit=batch,
            is_dead=is_dead_locally if detect_dead_owners else _never_dead,
            saga_types=list(registry),
            check=check,
            exclude=set(report.errors),
        )
        if not claims and len(report.errors) == refused:
            break
        for claim in claims:
            try:
                status = await _arecover_one(journal, claim, registry)
            except SagaOwnershipLostError:
                report.lost.append(claim.saga_id)
            except Exception as exc:  # noqa: BLE001 - one bad saga must not stop the rest
                report.errors[claim.saga_id] = exc
                _log_error(claim.saga_id, claim.saga_type, exc)
                failed.append(claim)
            else:
                report.finished[claim.saga_id] = status

    for claim in failed:
        await _aio(journal, journal.release, claim.saga_id, claim.fence)
    return report


async def _arecover_one(
    journal: Journal, claim: Claim, registry: Mapping[str, Saga]
) -> SagaStatus:
    saga = registry.get(claim.saga_type)
    if saga is None:
        raise _unknown(claim, registry)

    history = await _aio(journal, journal.load, claim.saga_id)
    _announce(saga, claim, claim.previous_owner, history.header.status.value)
    return await saga._aresume(journal, claim, history)


async def _aio(
    journal: Journal, fn: Callable[..., T], /, *args: object, **kwargs: object
) -> T:
    if journal.blocking:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


# -- operator actions ---------------------------------------------------------


def retry_saga(journal: Journal, saga_id: str, *, note: str = "") -> SagaStatus:
    """
    Send a stuck (or failed) saga back to recovery, with fresh retries.

    Compensations that gave up are tried again; a step stopped because its
    outcome was lost is invoked again (the operator has checked that this
    is safe). The saga is released at once, so the next `recover_sagas`
    finishes it. Returns the status it now has.
    """
    claim = journal.seize(
        saga_id,
        new_worker_id(),
        lease=60.0,
        statuses=(SagaStatus.STUCK, SagaStatus.FAILED),
    )
    history = journal.load(saga_id)
    compensating = any(r.kind is RecordKind.SAGA_COMPENSATING for r in history.records)
    status = SagaStatus.COMPENSATING if compensating else SagaStatus.RUNNING
    _operator_record(journal, claim, history.header.last_seq, "retry", note, status)
    return status


def abort_saga(
    journal: Journal, saga_id: str, *, note: str = "", force: bool = False
) -> None:
    """
    Give up on a saga: mark it failed without running anything more.

    Stuck sagas can always be aborted; one still in progress only with
    *force*, since its owner may be alive (it stops at its next journal
    write). Whatever was not compensated stays as it is.
    """
    statuses = [SagaStatus.STUCK]
    if force:
        statuses += [SagaStatus.RUNNING, SagaStatus.COMPENSATING]
    claim = journal.seize(saga_id, new_worker_id(), lease=60.0, statuses=statuses)
    history = journal.load(saga_id)
    _operator_record(
        journal, claim, history.header.last_seq, "abort", note, SagaStatus.FAILED
    )


def _operator_record(
    journal: Journal,
    claim: Claim,
    last_seq: int,
    action: str,
    note: str,
    status: SagaStatus,
) -> None:
    record = JournalRecord(
        saga_id=claim.saga_id,
        seq=last_seq + 1,
        kind=RecordKind.OPERATOR_ACTION,
        payload=json.dumps({"action": action, "note": note}),
        owner=claim.owner,
        fence=claim.fence,
        at=time.time(),
    )
    # A zero lease releases the saga, so recovery may take it at once.
    journal.append(claim.saga_id, claim.fence, [record], status=status, lease=0.0)
