"""
The pure core of the saga engine: fold journal records into a state, and
decide what to do next.

The same fold serves a saga running for the first time (each record is
applied as it is written) and a saga resumed after a crash (its whole
history is applied at once), so both take exactly the same decisions. It
does no I/O and reads no clock.

Rules it encodes:

- forward steps run in order; a step whose intent is journalled without a
  result is *in doubt*: it is invoked again (with the same idempotency key)
  if it is idempotent, otherwise compensated as possibly done, or the saga
  stops for an operator, as the step declares;
- once a step has failed for good, the compensations of the completed steps
  run from the latest to the earliest (the failed step's own too, when it
  declares partial effects); a compensation journalled as completed is never
  invoked again;
- a compensation that gave up either stops the saga (stuck) or is skipped,
  and the saga then ends failed rather than compensated.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from .codec import Codec
from .errors import JournalCorruptError
from .records import JournalRecord, RecordKind, SagaStatus
from .step import Step

__all__ = [
    "BeginCompensation",
    "Compensate",
    "CompState",
    "Decision",
    "Done",
    "Finish",
    "ForwardState",
    "RunStep",
    "SagaState",
    "Stop",
    "describe_error",
]


class ForwardState(enum.Enum):
    """
    What the journal says about a step's action.
    """

    PENDING = "pending"  # never started
    IN_DOUBT = "in_doubt"  # intent written, no result: it may or may not have run
    ATTEMPT_FAILED = "attempt_failed"  # the latest attempt failed
    COMPLETED = "completed"


class CompState(enum.Enum):
    """
    What the journal says about a step's compensation.
    """

    NONE = "none"
    IN_DOUBT = "in_doubt"
    ATTEMPT_FAILED = "attempt_failed"
    DONE = "done"
    GAVE_UP = "gave_up"


@dataclasses.dataclass(slots=True)
class _StepState:
    forward: ForwardState = ForwardState.PENDING
    attempts: int = 0
    result: object = None
    comp: CompState = CompState.NONE
    comp_attempts: int = 0
    last_error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    step: int
    compensate_step: bool
    error: str


@dataclasses.dataclass(frozen=True, slots=True)
class RunStep:
    """
    Invoke step `index`'s action (again).
    """

    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class BeginCompensation:
    """
    Step `index` failed for good: start compensating.
    """

    index: int
    compensate_step: bool
    error: str


@dataclasses.dataclass(frozen=True, slots=True)
class Compensate:
    """
    Invoke step `index`'s compensation (again).
    """

    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class Stop:
    """
    Stop at step `index` and wait for an operator.
    """

    index: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Finish:
    """
    Record the terminal status.
    """

    status: SagaStatus
    reason: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    """
    The saga is already terminal.
    """

    status: SagaStatus


Decision = RunStep | BeginCompensation | Compensate | Stop | Finish | Done


def describe_error(exc: BaseException) -> dict[str, str]:
    """
    Return what the journal keeps of an exception: its type and message.
    """
    return {"type": type(exc).__qualname__, "message": str(exc)}


class SagaState:
    """
    A saga's state as its journal records describe it.

    `apply` folds in one record; `decide` returns the next decision for the
    definition *steps*. Payloads of inputs and results are decoded with the
    saga's codec; control payloads are always JSON.
    """

    def __init__(
        self, saga_id: str, steps: Sequence[Step], codec: Codec, where: str
    ) -> None:
        self.saga_id = saga_id
        self._defs = tuple(steps)
        self._index = {step.name: i for i, step in enumerate(self._defs)}
        self._codec = codec
        self._where = where
        self.input: object = None
        self.steps = [_StepState() for _ in self._defs]
        self.failure: _Failure | None = None
        self.terminal: SagaStatus | None = None
        self.stuck_reason: str | None = None
        self.stuck_step: str | None = None
        self.last_seq = 0
        self._forced: set[int] = set()

    @property
    def status(self) -> SagaStatus:
        """
        The saga's status as the records so far define it.
        """
        if self.terminal is not None:
            return self.terminal
        return SagaStatus.RUNNING if self.failure is None else SagaStatus.COMPENSATING

    def results(self) -> Mapping[str, object]:
        """
        Return a read-only map from each completed step's name to its result.
        """
        return MappingProxyType(
            {
                step.name: state.result
                for step, state in zip(self._defs, self.steps, strict=True)
                if state.forward is ForwardState.COMPLETED
            }
        )

    @property
    def failed_step(self) -> str | None:
        """
        The name of the step that failed for good, if any.
        """
        return None if self.failure is None else self._defs[self.failure.step].name

    # -- folding records ----------------------------------------------------

    def apply(self, record: JournalRecord) -> None:
        """
        Fold one record into the state.
        """
        if record.seq != self.last_seq + 1:
            raise self._corrupt(record, f"expected record {self.last_seq + 1}")
        self.last_seq = record.seq
        kind = record.kind

        if kind is RecordKind.SAGA_STARTED:
            self.input = self._value(record)
        elif kind in _STEP_KINDS:
            self._apply_step(record, self._step_of(record))
        elif kind is RecordKind.SAGA_COMPENSATING:
            control = self._control(record)
            self.failure = _Failure(
                step=self._int_field(record, control, "step"),
                compensate_step=bool(control.get("compensate_step")),
                error=str(control.get("error", "")),
            )
        elif kind is RecordKind.SAGA_STUCK:
            control = self._control(record)
            self.terminal = SagaStatus.STUCK
            self.stuck_reason = str(control.get("reason", ""))
            self.stuck_step = self._defs[self._int_field(record, control, "step")].name
        elif kind is RecordKind.SAGA_COMPLETED:
            self.terminal = SagaStatus.COMPLETED
        elif kind is RecordKind.SAGA_COMPENSATED:
            self.terminal = SagaStatus.COMPENSATED
        elif kind is RecordKind.SAGA_FAILED:
            self.terminal = SagaStatus.FAILED
        elif kind is RecordKind.OPERATOR_ACTION:
            self._apply_operator(record, self._control(record))

    def _apply_step(self, record: JournalRecord, index: int) -> None:
        state = self.steps[index]
        kind = record.kind
        if kind is RecordKind.STEP_STARTED:
            state.forward = ForwardState.IN_DOUBT
            state.attempts = record.attempt
        elif kind is RecordKind.STEP_COMPLETED:
            state.forward = ForwardState.COMPLETED
            state.result = self._value(record)
        elif kind is RecordKind.STEP_FAILED:
            state.forward = ForwardState.ATTEMPT_FAILED
            state.last_error = _error_text(self._control(record))
        elif kind is RecordKind.COMP_STARTED:
            state.comp = CompState.IN_DOUBT
            state.comp_attempts = record.attempt
        elif kind is RecordKind.COMP_COMPLETED:
            state.comp = CompState.DONE
        elif kind is RecordKind.COMP_FAILED:
            state.comp = CompState.ATTEMPT_FAILED
            state.last_error = _error_text(self._control(record))
        elif kind is RecordKind.COMP_GAVE_UP:
            state.comp = CompState.GAVE_UP

    def _apply_operator(
        self, record: JournalRecord, control: dict[str, object]
    ) -> None:
        action = control.get("action")
        if action == "abort":
            self.terminal = SagaStatus.FAILED
        elif action == "retry":
            # Give every compensation that gave up a fresh chance, and let an
            # in-doubt step that stopped the saga be invoked once more: the
            # operator has checked that doing so is safe.
            for index, state in enumerate(self.steps):
                if state.comp is CompState.GAVE_UP:
                    state.comp = CompState.ATTEMPT_FAILED
                if state.forward is ForwardState.IN_DOUBT:
                    self._forced.add(index)
            self.terminal = None
            self.stuck_reason = None
            self.stuck_step = None
        else:
            raise self._corrupt(record, f"unknown operator action {action!r}")

    # -- deciding -----------------------------------------------------------

    def decide(self) -> Decision:
        """
        Return what to do next.
        """
        if self.terminal is not None:
            return Done(self.terminal)
        if self.failure is None:
            return self._decide_forward()

        return self._decide_compensation(self.failure)

    def _decide_forward(self) -> Decision:
        for index, (step, state) in enumerate(zip(self._defs, self.steps, strict=True)):
            if state.forward is ForwardState.COMPLETED:
                continue
            in_doubt = state.forward is ForwardState.IN_DOUBT
            if in_doubt and not step.idempotent and index not in self._forced:
                return self._decide_in_doubt(index, step)
            return RunStep(index)

        return Finish(SagaStatus.COMPLETED)

    def _decide_in_doubt(self, index: int, step: Step) -> Decision:
        if step.compensate_in_doubt:
            return BeginCompensation(
                index,
                compensate_step=step.compensation is not None,
                error="the outcome of the step was lost in a crash and it is "
                "not idempotent, so it is compensated as possibly done",
            )

        return Stop(
            index,
            "the outcome of the step was lost in a crash, and it is neither "
            "idempotent nor to be compensated when in doubt",
        )

    def _decide_compensation(self, failure: _Failure) -> Decision:
        gave_up = []
        for index in self.compensation_order():
            state = self.steps[index]
            if state.comp is CompState.DONE:
                continue
            if state.comp is CompState.GAVE_UP:
                gave_up.append(self._defs[index].name)
                continue
            return Compensate(index)

        if gave_up:
            return Finish(
                SagaStatus.FAILED,
                f"compensations gave up for: {', '.join(gave_up)}",
            )
        return Finish(SagaStatus.COMPENSATED)

    def compensation_order(self) -> list[int]:
        """
        Return the steps to compensate, latest first (empty before a failure).
        """
        if self.failure is None:
            return []
        first = (
            self.failure.step if self.failure.compensate_step else self.failure.step - 1
        )
        return [
            index
            for index in range(first, -1, -1)
            if self._defs[index].compensation is not None
            and (
                self.steps[index].forward is ForwardState.COMPLETED
                or index == self.failure.step
            )
        ]

    def compensated(self) -> tuple[list[str], list[str]]:
        """
        Return the names of steps compensated and of those still needing it.
        """
        done: list[str] = []
        pending: list[str] = []
        for index in self.compensation_order():
            name = self._defs[index].name
            (done if self.steps[index].comp is CompState.DONE else pending).append(name)
        return done, pending

    # -- payloads -------------------------------------------------------------

    def _step_of(self, record: JournalRecord) -> int:
        index = record.step
        if index is None or not 0 <= index < len(self._defs):
            raise self._corrupt(record, f"step {index!r} is outside the definition")
        if self._defs[index].name != record.step_name:
            raise self._corrupt(
                record,
                f"step {index} is named {record.step_name!r} in the journal but "
                f"{self._defs[index].name!r} in the definition",
            )
        return index

    def _value(self, record: JournalRecord) -> object:
        if record.payload is None:
            raise self._corrupt(record, "the payload is missing")
        try:
            return self._codec.decode(record.payload)
        except Exception as exc:
            raise self._corrupt(record, f"the payload does not decode ({exc})") from exc

    def _control(self, record: JournalRecord) -> dict[str, object]:
        try:
            control = json.loads(record.payload or "")
        except ValueError as exc:
            raise self._corrupt(record, f"the payload is not JSON ({exc})") from exc
        if not isinstance(control, dict):
            raise self._corrupt(record, "the payload is not a JSON object")
        return control

    def _int_field(
        self, record: JournalRecord, control: Mapping[str, object], name: str
    ) -> int:
        value = control.get(name)
        if not isinstance(value, int) or not 0 <= value < len(self._defs):
            raise self._corrupt(record, f"field {name!r} is {value!r}")
        return value

    def _corrupt(self, record: JournalRecord, what: str) -> JournalCorruptError:
        return JournalCorruptError(
            f"journal {self._where}: saga {self.saga_id!r} record {record.seq} "
            f"({record.kind.value}) is unreadable: {what}; it was left untouched",
            saga_id=self.saga_id,
            seq=record.seq,
            where=self._where,
        )


_STEP_KINDS = frozenset(
    {
        RecordKind.STEP_STARTED,
        RecordKind.STEP_COMPLETED,
        RecordKind.STEP_FAILED,
        RecordKind.COMP_STARTED,
        RecordKind.COMP_COMPLETED,
        RecordKind.COMP_FAILED,
        RecordKind.COMP_GAVE_UP,
    }
)


def _error_text(control: Mapping[str, object]) -> str:
    return f"{control.get('type', 'Exception')}: {control.get('message', '')}"
