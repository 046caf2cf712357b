"""
The events sagas and transactions emit.

`source` is the saga's name (its type). Step events are DEBUG (they happen
on every run); a step failing for good and a saga being compensated are
WARNING; a compensation that gave up, and sagas left stuck or failed, are
ERROR, because something could not be undone; recovery is INFO.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

from ..events import Event

__all__ = [
    "SagaCompensated",
    "SagaCompensationFailed",
    "SagaCompensationRan",
    "SagaCompleted",
    "SagaFailed",
    "SagaRecovered",
    "SagaStepCompleted",
    "SagaStepFailed",
    "SagaStepStarted",
    "SagaStuck",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaStepStarted(Event):
    """
    A step's action is about to be invoked (its intent is journalled).
    """

    saga_id: str
    step: str
    attempt: int

    kind: ClassVar[str] = "saga_step_started"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "saga %s (%s): step %r attempt %d started"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id", "step", "attempt")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaStepCompleted(Event):
    """
    A step's action returned and its result is journalled.
    """

    saga_id: str
    step: str
    attempt: int

    kind: ClassVar[str] = "saga_step_completed"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "saga %s (%s): step %r completed on attempt %d"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id", "step", "attempt")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaStepFailed(Event):
    """
    A step failed for good (retries, if any, are exhausted).

    `error` is the exception's type name, or a description when the outcome
    of the step was lost in a crash.
    """

    saga_id: str
    step: str
    attempts: int
    error: str

    kind: ClassVar[str] = "saga_step_failed"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "saga %s (%s): step %r failed after %d attempt(s): %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "saga_id",
        "step",
        "attempts",
        "error",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaCompensationRan(Event):
    """
    A step's compensation completed and is journalled as done.
    """

    saga_id: str
    step: str
    attempt: int

    kind: ClassVar[str] = "saga_compensation_ran"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "saga %s (%s): compensated step %r on attempt %d"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id", "step", "attempt")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaCompensationFailed(Event):
    """
    A compensation gave up; `stopped` says whether the saga stopped there
    (stuck) or carried on with the other compensations.
    """

    saga_id: str
    step: str
    attempts: int
    error: str
    stopped: bool

    kind: ClassVar[str] = "saga_compensation_failed"
    level: ClassVar[int] = logging.ERROR
    message: ClassVar[str] = (
        "saga %s (%s): compensation of step %r gave up after %d attempt(s): %s "
        "(stopped: %s)"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "saga_id",
        "step",
        "attempts",
        "error",
        "stopped",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaCompleted(Event):
    """
    Every step of the saga completed.
    """

    saga_id: str

    kind: ClassVar[str] = "saga_completed"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "saga %s (%s) completed"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaCompensated(Event):
    """
    A step failed and every compensation that was needed ran.
    """

    saga_id: str
    failed_step: str

    kind: ClassVar[str] = "saga_compensated"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "saga %s (%s) was compensated after step %r failed"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id", "failed_step")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaFailed(Event):
    """
    Compensation finished but some compensations gave up, or an operator
    aborted the saga; `not_compensated` names the steps left as they were.
    """

    saga_id: str
    reason: str
    not_compensated: tuple[str, ...]

    kind: ClassVar[str] = "saga_failed"
    level: ClassVar[int] = logging.ERROR
    message: ClassVar[str] = "saga %s (%s) failed: %s; not compensated: %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "saga_id",
        "reason",
        "not_compensated",
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaStuck(Event):
    """
    The saga stopped and waits for an operator (`recovery sagas retry` or
    `abort`); `step` is where it stopped.
    """

    saga_id: str
    step: str
    reason: str

    kind: ClassVar[str] = "saga_stuck"
    level: ClassVar[int] = logging.ERROR
    message: ClassVar[str] = "saga %s (%s) is stuck at step %r: %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "saga_id", "step", "reason")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaRecovered(Event):
    """
    A recovery worker claimed a saga its previous owner abandoned and is
    finishing it.
    """

    saga_id: str
    previous_owner: str | None
    status: str

    kind: ClassVar[str] = "saga_recovered"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "saga %s (%s) recovered from %s while %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "saga_id",
        "previous_owner",
        "status",
    )
