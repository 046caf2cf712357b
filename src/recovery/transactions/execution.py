"""
Carrying out a saga: the shell around the pure core in `replay`.

An `Execution` is one worker's pass over one saga. It asks the core what to
do next, invokes the user's action or compensation (through the step's
retry policy), and journals intents and results, fenced by its claim. Its
sync and async twins differ by `await` only. It stops when the core says the
saga is terminal, or at once when the journal fails or another worker has
claimed the saga.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from ..errors import CallTimeoutError, RecoveryError
from .codec import Codec
from .errors import SagaDefinitionError, SagaFailedError, SagaOwnershipLostError
from .heartbeat import Heartbeat
from .journal import Journal
from .records import JournalRecord, RecordKind, SagaStatus
from .replay import (
    BeginCompensation,
    Compensate,
    Done,
    Finish,
    RunStep,
    SagaState,
    Stop,
    describe_error,
)
from .saga_events import (
    SagaCompensated,
    SagaCompensationFailed,
    SagaCompensationRan,
    SagaCompleted,
    SagaFailed,
    SagaStepCompleted,
    SagaStepFailed,
    SagaStepStarted,
    SagaStuck,
)
from .step import SagaContext, Step, idempotency_key

if TYPE_CHECKING:
    from .saga import Saga

__all__ = ["Execution", "SagaOutcome", "aguarded", "encode", "guarded"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class SagaOutcome:
    """
    A saga that finished: its id, status and the results of its steps.
    """

    saga_id: str
    status: SagaStatus
    results: Mapping[str, object]


class _Abandon(BaseException):
    # Carries a journal failure out through a step's Retry. Retry retries
    # Exception subclasses only; a journal that cannot record an attempt (or
    # a worker that lost the saga to another) must stop at once instead of
    # invoking the step again as if the step itself had failed.
    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class Execution:
    """
    One worker's pass over one saga: invoke, journal, repeat until the core
    says the saga is terminal.
    """

    def __init__(
        self, saga: Saga, journal: Journal, saga_id: str, owner: str, fence: int
    ) -> None:
        self.saga = saga
        self.journal = journal
        self.saga_id = saga_id
        self.owner = owner
        self.fence = fence
        self.state = SagaState(saga_id, saga.steps, saga.codec, journal.where)
        self.first: JournalRecord | None = None
        self.step_error: Exception | None = None
        self.comp_errors: list[Exception] = []
        self.pending: list[JournalRecord] = []
        self.reports: list[Callable[[], None]] = []
        self.emitter = saga.emitter

    # -- journal writes (pure planning + the sync and async I/O) ------------

    def record(
        self,
        kind: RecordKind,
        *,
        step: int | None = None,
        attempt: int = 0,
        key: str | None = None,
        payload: str | None = None,
    ) -> JournalRecord:
        """
        Return the next record of this pass (not yet applied or written).
        """
        return JournalRecord(
            saga_id=self.saga_id,
            seq=self.state.last_seq + 1,
            kind=kind,
            step=step,
            step_name=None if step is None else self.saga.steps[step].name,
            attempt=attempt,
            key=key,
            payload=payload,
            owner=self.owner,
            fence=self.fence,
            at=self.saga.clock.time(),
        )

    def _stage(self, kind: RecordKind, **fields: object) -> tuple[JournalRecord, float]:
        record = self.record(kind, **fields)  # type: ignore[arg-type]
        self.state.apply(record)
        lease = 0.0 if self.state.terminal is not None else self.saga.lease
        return record, lease

    def create(self) -> None:
        """
        Store the saga and its first record.
        """
        assert self.first is not None
        self.journal.create(
            self.first,
            saga_type=self.saga.name,
            definition_hash=self.saga.definition_hash,
            lease=self.saga.lease,
        )

    def defer(
        self, kind: RecordKind, report: Callable[[], None], **fields: object
    ) -> None:
        """
        Stage a completion record to be committed with the next write.

        A result need not be durable before the next intent is: no step or
        compensation runs in between, and if the process dies first the
        completed invocation is merely in doubt and is invoked again with
        its key. Sharing the commit halves the cost of a step. *report*
        emits the completion's event once the record is durable.
        """
        record, _ = self._stage(kind, **fields)
        self.pending.append(record)
        self.reports.append(report)

    def _batch(
        self, kind: RecordKind, fields: dict[str, object]
    ) -> tuple[list[JournalRecord], float]:
        record, lease = self._stage(kind, **fields)
        records = [*self.pending, record]
        self.pending = []
        return records, lease

    def _reported(self) -> None:
        reports, self.reports = self.reports, []
        for report in reports:
            report()

    def write(self, kind: RecordKind, **fields: object) -> None:
        """
        Append one record, and any deferred ones, in one fenced commit.
        """
        records, lease = self._batch(kind, fields)
        self.journal.append(
            self.saga_id, self.fence, records, status=self.state.status, lease=lease
        )
        self._reported()

    async def awrite(self, kind: RecordKind, **fields: object) -> None:
        """
        Append one record, and any deferred ones, without blocking the loop.
        """
        records, lease = self._batch(kind, fields)
        await self.aio(
            self.journal.append,
            self.saga_id,
            self.fence,
            records,
            status=self.state.status,
            lease=lease,
        )
        self._reported()

    def flush(self) -> None:
        """
        Commit deferred records now (when the pass is interrupted).
        """
        if self.pending:
            records, self.pending = self.pending, []
            lease = 0.0 if self.state.terminal is not None else self.saga.lease
            self.journal.append(
                self.saga_id, self.fence, records, status=self.state.status, lease=lease
            )
            self._reported()

    async def aio(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """
        Run a journal call, in a worker thread if the journal blocks.
        """
        if self.journal.blocking:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    def heartbeat(self) -> Heartbeat:
        """
        Return a context manager that keeps this pass's lease alive.
        """
        return Heartbeat(self.journal, self.saga_id, self.fence, self.saga.lease)

    def release_quietly(self) -> None:
        """
        Give up the lease after an interruption, so recovery can start at once.
        """
        try:
            # Completions already staged are facts: keep them, so recovery
            # does not invoke those steps again.
            self.flush()
            self.journal.release(self.saga_id, self.fence)
        except Exception:
            logger.exception(
                "saga %s (%s): could not release its lease after an interruption; "
                "recovery will take it over when the lease expires",
                self.saga_id,
                self.saga.name,
            )

    # -- the pure parts of invoking -----------------------------------------

    def context(self, index: int, role: str, attempt: int) -> SagaContext:
        """
        Return the context for an invocation of step *index*'s *role*.
        """
        name = self.saga.steps[index].name
        return SagaContext(
            saga_id=self.saga_id,
            saga_type=self.saga.name,
            input=self.state.input,
            results=self.state.results(),
            step=name,
            idempotency_key=idempotency_key(self.saga_id, name, role),
            attempt=attempt,
        )

    def _step_started(self, index: int) -> dict[str, object]:
        attempt = self.state.steps[index].attempts + 1
        name = self.saga.steps[index].name
        key = idempotency_key(self.saga_id, name, "action")
        return {"step": index, "attempt": attempt, "key": key}

    def _report_started(self, index: int) -> None:
        if self.emitter.wants(SagaStepStarted):
            self.emitter.emit(
                SagaStepStarted(
                    source=self.saga.name,
                    saga_id=self.saga_id,
                    step=self.saga.steps[index].name,
                    attempt=self.state.steps[index].attempts,
                )
            )

    def _step_completed(self, index: int, result: object) -> dict[str, object]:
        step = self.saga.steps[index]
        payload = encode(self.saga.codec, result, f"step {step.name!r}: the result")
        attempt = self.state.steps[index].attempts
        return {"step": index, "attempt": attempt, "payload": payload}

    def _report_completed(self, index: int) -> None:
        if self.emitter.wants(SagaStepCompleted):
            self.emitter.emit(
                SagaStepCompleted(
                    source=self.saga.name,
                    saga_id=self.saga_id,
                    step=self.saga.steps[index].name,
                    attempt=self.state.steps[index].attempts,
                )
            )

    def _failed(self, index: int, exc: Exception, *, comp: bool) -> dict[str, object]:
        state = self.state.steps[index]
        return {
            "step": index,
            "attempt": state.comp_attempts if comp else state.attempts,
            "payload": json.dumps(describe_error(exc)),
        }

    def _gave_up(
        self, index: int, exc: Exception
    ) -> tuple[RecordKind, dict[str, object]]:
        """
        Plan the record written when step *index* fails for good.
        """
        step = self.saga.steps[index]
        self.step_error = exc
        self.emitter.emit(
            SagaStepFailed(
                source=self.saga.name,
                saga_id=self.saga_id,
                step=step.name,
                attempts=self.state.steps[index].attempts,
                error=type(exc).__qualname__,
            )
        )
        control = {
            "step": index,
            "compensate_step": step.compensate_on_failure
            and step.compensation is not None,
            "error": f"{type(exc).__qualname__}: {exc}",
        }
        return RecordKind.SAGA_COMPENSATING, {"payload": json.dumps(control)}

    def _comp_started(self, index: int) -> dict[str, object]:
        attempt = self.state.steps[index].comp_attempts + 1
        key = idempotency_key(self.saga_id, self.saga.steps[index].name, "compensation")
        return {"step": index, "attempt": attempt, "key": key}

    def _comp_completed(self, index: int) -> dict[str, object]:
        return {"step": index, "attempt": self.state.steps[index].comp_attempts}

    def _report_compensated(self, index: int) -> None:
        self.emitter.emit(
            SagaCompensationRan(
                source=self.saga.name,
                saga_id=self.saga_id,
                step=self.saga.steps[index].name,
                attempt=self.state.steps[index].comp_attempts,
            )
        )

    def _comp_gave_up(
        self, index: int, exc: Exception
    ) -> tuple[RecordKind, dict[str, object]]:
        stop = self.saga.stop_on_compensation_failure
        name = self.saga.steps[index].name
        self.comp_errors.append(exc)
        self.emitter.emit(
            SagaCompensationFailed(
                source=self.saga.name,
                saga_id=self.saga_id,
                step=name,
                attempts=self.state.steps[index].comp_attempts,
                error=type(exc).__qualname__,
                stopped=stop,
            )
        )
        if not stop:
            return RecordKind.COMP_GAVE_UP, {
                "step": index,
                "payload": json.dumps(describe_error(exc)),
            }
        reason = (
            f"compensation of step {name!r} gave up: {type(exc).__qualname__}: {exc}"
        )
        return RecordKind.SAGA_STUCK, {
            "payload": json.dumps({"step": index, "reason": reason})
        }

    def _settle(
        self, decision: BeginCompensation | Stop | Finish
    ) -> tuple[RecordKind, dict[str, object]]:
        """
        Plan the record that carries out a decision needing no invocation.
        """
        if isinstance(decision, BeginCompensation):
            step = self.saga.steps[decision.index]
            self.emitter.emit(
                SagaStepFailed(
                    source=self.saga.name,
                    saga_id=self.saga_id,
                    step=step.name,
                    attempts=self.state.steps[decision.index].attempts,
                    error="outcome lost in a crash",
                )
            )
            control = {
                "step": decision.index,
                "compensate_step": decision.compensate_step,
                "error": decision.error,
            }
            return RecordKind.SAGA_COMPENSATING, {"payload": json.dumps(control)}
        if isinstance(decision, Stop):
            control = {"step": decision.index, "reason": decision.reason}
            return RecordKind.SAGA_STUCK, {"payload": json.dumps(control)}

        kind = {
            SagaStatus.COMPLETED: RecordKind.SAGA_COMPLETED,
            SagaStatus.COMPENSATED: RecordKind.SAGA_COMPENSATED,
            SagaStatus.FAILED: RecordKind.SAGA_FAILED,
        }[decision.status]
        return kind, {"payload": json.dumps({"reason": decision.reason})}

    def report_end(self) -> None:
        """
        Emit the event of the terminal status just reached.
        """
        status = self.state.status
        source, saga_id = self.saga.name, self.saga_id
        pending = self.state.compensated()[1]
        if status is SagaStatus.COMPLETED:
            if self.emitter.wants(SagaCompleted):
                self.emitter.emit(SagaCompleted(source=source, saga_id=saga_id))
        elif status is SagaStatus.COMPENSATED:
            self.emitter.emit(
                SagaCompensated(
                    source=source,
                    saga_id=saga_id,
                    failed_step=self.state.failed_step or "",
                )
            )
        elif status is SagaStatus.STUCK:
            self.emitter.emit(
                SagaStuck(
                    source=source,
                    saga_id=saga_id,
                    step=self.state.stuck_step or "",
                    reason=self.state.stuck_reason or "",
                )
            )
        elif status is SagaStatus.FAILED:
            self.emitter.emit(
                SagaFailed(
                    source=source,
                    saga_id=saga_id,
                    reason="compensations gave up",
                    not_compensated=tuple(pending),
                )
            )

    def outcome(self) -> SagaOutcome:
        """
        Return the outcome, or raise `SagaFailedError` if the saga failed.
        """
        status = self.state.status
        if status is SagaStatus.COMPLETED:
            return SagaOutcome(self.saga_id, status, self.state.results())

        error = self.step_error
        if error is None:
            error = RecoveryError(
                f"step {self.state.failed_step!r} failed in an earlier run"
            )
        done, pending = self.state.compensated()
        raise SagaFailedError(
            f"saga {self.saga_id} ({self.saga.name}) failed at step "
            f"{self.state.failed_step!r} and is {status.value}",
            [error, *self.comp_errors],
            saga_id=self.saga_id,
            status=status,
            failed_step=self.state.failed_step or "",
            compensated=done,
            not_compensated=pending,
        )

    # -- the sync shell --------------------------------------------------------

    def drive(self) -> None:
        """
        Take decisions and carry them out until the saga is terminal.
        """
        while True:
            decision = self.state.decide()
            if isinstance(decision, Done):
                return
            if isinstance(decision, RunStep):
                self._run_step(decision.index)
            elif isinstance(decision, Compensate):
                self._compensate(decision.index)
            else:
                kind, fields = self._settle(decision)
                self.write(kind, **fields)
                if self.state.terminal is not None:
                    self.report_end()

    def _safe_write(self, kind: RecordKind, fields: dict[str, object]) -> None:
        try:
            self.write(kind, **fields)
        except Exception as exc:  # noqa: BLE001 - any journal failure stops the pass
            raise _Abandon(exc) from None

    def _run_step(self, index: int) -> None:
        step = self.saga.steps[index]

        def attempt() -> object:
            fields = self._step_started(index)
            self._safe_write(RecordKind.STEP_STARTED, fields)
            self._report_started(index)
            context = self.context(index, "action", self.state.steps[index].attempts)
            try:
                result = step.action(context)
                completed = self._step_completed(index, result)
            except Exception as exc:
                self._safe_write(
                    RecordKind.STEP_FAILED, self._failed(index, exc, comp=False)
                )
                raise
            self.defer(
                RecordKind.STEP_COMPLETED,
                functools.partial(self._report_completed, index),
                **completed,
            )
            return result

        try:
            if step.retry is None:
                attempt()
            else:
                step.retry.call(attempt)
        except _Abandon as abandon:
            raise abandon.error from None
        except Exception as exc:  # noqa: BLE001 - the step failed for good
            kind, fields = self._gave_up(index, exc)
            self.write(kind, **fields)

    def _compensate(self, index: int) -> None:
        step = self.saga.steps[index]
        compensation = step.compensation
        assert compensation is not None
        result = self.state.steps[index].result

        def attempt() -> None:
            self._safe_write(RecordKind.COMP_STARTED, self._comp_started(index))
            context = self.context(
                index, "compensation", self.state.steps[index].comp_attempts
            )
            try:
                compensation(context, result)
            except Exception as exc:
                self._safe_write(
                    RecordKind.COMP_FAILED, self._failed(index, exc, comp=True)
                )
                raise
            self.defer(
                RecordKind.COMP_COMPLETED,
                functools.partial(self._report_compensated, index),
                **self._comp_completed(index),
            )

        retry = self.saga.compensation_retry
        try:
            if retry is None:
                attempt()
            else:
                retry.call(attempt)
        except _Abandon as abandon:
            raise abandon.error from None
        except Exception as exc:  # noqa: BLE001 - the compensation gave up
            kind, fields = self._comp_gave_up(index, exc)
            self.write(kind, **fields)
            if self.state.terminal is not None:
                self.report_end()

    # -- the async shell -------------------------------------------------------

    async def adrive(self) -> None:
        """
        Take decisions and carry them out until the saga is terminal.
        """
        while True:
            decision = self.state.decide()
            if isinstance(decision, Done):
                return
            if isinstance(decision, RunStep):
                await self._arun_step(decision.index)
            elif isinstance(decision, Compensate):
                await self._acompensate(decision.index)
            else:
                kind, fields = self._settle(decision)
                await self.awrite(kind, **fields)
                if self.state.terminal is not None:
                    self.report_end()

    async def _asafe_write(self, kind: RecordKind, fields: dict[str, object]) -> None:
        try:
            await self.awrite(kind, **fields)
        except Exception as exc:  # noqa: BLE001 - any journal failure stops the pass
            raise _Abandon(exc) from None

    async def _arun_step(self, index: int) -> None:
        step = self.saga.steps[index]

        async def attempt() -> object:
            fields = self._step_started(index)
            await self._asafe_write(RecordKind.STEP_STARTED, fields)
            self._report_started(index)
            context = self.context(index, "action", self.state.steps[index].attempts)
            try:
                result = await _within(step, step.action(context))
                completed = self._step_completed(index, result)
            except Exception as exc:
                await self._asafe_write(
                    RecordKind.STEP_FAILED, self._failed(index, exc, comp=False)
                )
                raise
            self.defer(
                RecordKind.STEP_COMPLETED,
                functools.partial(self._report_completed, index),
                **completed,
            )
            return result

        try:
            if step.retry is None:
                await attempt()
            else:
                await step.retry.acall(attempt)
        except _Abandon as abandon:
            raise abandon.error from None
        except Exception as exc:  # noqa: BLE001 - the step failed for good
            kind, fields = self._gave_up(index, exc)
            await self.awrite(kind, **fields)

    async def _acompensate(self, index: int) -> None:
        step = self.saga.steps[index]
        compensation = step.compensation
        assert compensation is not None
        result = self.state.steps[index].result

        async def attempt() -> None:
            await self._asafe_write(RecordKind.COMP_STARTED, self._comp_started(index))
            context = self.context(
                index, "compensation", self.state.steps[index].comp_attempts
            )
            try:
                await _within(step, compensation(context, result))
            except Exception as exc:
                await self._asafe_write(
                    RecordKind.COMP_FAILED, self._failed(index, exc, comp=True)
                )
                raise
            self.defer(
                RecordKind.COMP_COMPLETED,
                functools.partial(self._report_compensated, index),
                **self._comp_completed(index),
            )

        retry = self.saga.compensation_retry
        try:
            if retry is None:
                await attempt()
            else:
                await retry.acall(attempt)
        except _Abandon as abandon:
            raise abandon.error from None
        except Exception as exc:  # noqa: BLE001 - the compensation gave up
            kind, fields = self._comp_gave_up(index, exc)
            await self.awrite(kind, **fields)
            if self.state.terminal is not None:
                self.report_end()


def guarded(execution: Execution, drive: Callable[[], None]) -> None:
    """
    Drive an execution with its lease renewed, releasing the lease if it is
    interrupted so that recovery may take the saga over at once.
    """
    try:
        with execution.heartbeat():
            drive()
    except SagaOwnershipLostError:
        # The saga is another worker's now: nothing of ours may be written.
        raise
    except BaseException:
        execution.release_quietly()
        raise


async def aguarded(execution: Execution, drive: Callable[[], Awaitable[None]]) -> None:
    """
    The async twin of `guarded`.
    """
    try:
        with execution.heartbeat():
            await drive()
    except SagaOwnershipLostError:
        raise
    except BaseException:
        execution.release_quietly()
        raise


async def _within(step: Step, value: object) -> object:
    """
    Await *value* if it is awaitable, within the step's time limit.
    """
    if step.timeout is None or not inspect.isawaitable(value):
        return await _maybe_await(value)
    try:
        async with asyncio.timeout(step.timeout):
            return await value
    except TimeoutError as exc:
        raise CallTimeoutError(
            f"step {step.name!r} did not finish within {step.timeout:g} s",
            timeout=step.timeout,
        ) from exc


async def _maybe_await(value: object) -> object:
    if inspect.isawaitable(value):
        return await value
    return value


def encode(codec: Codec, value: object, what: str) -> str:
    """
    Return *value* as journal text, or raise `SagaDefinitionError` naming *what*.
    """
    try:
        return codec.encode(value)
    except (TypeError, ValueError) as exc:
        raise SagaDefinitionError(
            f"{what} cannot be written to the journal by {codec!r}: {exc}"
        ) from exc
