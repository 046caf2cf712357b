"""
One step of a saga: an action, its optional compensation, and how to treat
failures and crashes; plus the context each invocation receives.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping

from .._validation import require_positive
from ..policies.retry import Retry
from .errors import SagaDefinitionError

__all__ = ["Compensation", "SagaContext", "Step", "StepAction", "idempotency_key"]


@dataclasses.dataclass(frozen=True, slots=True)
class SagaContext:
    """
    What an action or compensation receives.

    `input` is the saga's input; `results` maps the name of every step
    completed so far to its result (read-only). `step` names the step being
    run, and `idempotency_key` is the key to hand to the services it calls:
    the same for every attempt and every recovery of this action (or
    compensation), different for everything else. `attempt` counts the
    invocations of this action or compensation, from 1, across recoveries.
    """

    saga_id: str
    saga_type: str
    input: object
    results: Mapping[str, object]
    step: str
    idempotency_key: str
    attempt: int


StepAction = Callable[[SagaContext], object]
"""
A step's action: takes the context, returns a serialisable result (or an
awaitable of one).
"""

Compensation = Callable[[SagaContext, object], object]
"""
A compensation: takes the context and the step's result (None when the step
did not complete: it failed with partial effects, or its outcome is unknown
after a crash). It must be idempotent and treat "nothing to undo" as success.
"""


def idempotency_key(saga_id: str, step: str, role: str) -> str:
    """
    Return the idempotency key of a step's action or compensation.

    *role* is ``"action"`` or ``"compensation"``.
    """
    return f"{saga_id}:{step}:{role}"


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """
    A saga step.

    Args:
        name: unique within the saga; results are stored under it.
        action: the forward operation (sync or async).
        compensation: undoes the action (sync or async), or None.
        retry: retries the action; each attempt is journalled.
        idempotent: whether the action may be invoked again with the same
            idempotency key when a crash left its outcome unknown (the
            default). Otherwise see `compensate_in_doubt`.
        compensate_in_doubt: for a non-idempotent step whose outcome a crash
            left unknown: treat it as possibly done and compensate it (the
            default), or stop the saga as stuck for an operator.
        compensate_on_failure: the action may leave partial effects when it
            fails, so run its own compensation too when it fails for good.
        timeout: seconds an async action (or compensation) may take; past
            it, the invocation is cancelled and fails with
            `CallTimeoutError`, which the step's retry may retry. Only
            `Saga.arun` enforces it: a synchronous call cannot be
            interrupted.
    """

    name: str
    action: StepAction
    compensation: Compensation | None = None
    _: dataclasses.KW_ONLY
    retry: Retry | None = None
    idempotent: bool = True
    compensate_in_doubt: bool = True
    compensate_on_failure: bool = False
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SagaDefinitionError(
                f"step name must be a non-empty string, got {self.name!r}"
            )
        if not callable(self.action):
            raise SagaDefinitionError(
                f"step {self.name!r}: action must be callable, got {self.action!r}"
            )
        if self.compensation is not None and not callable(self.compensation):
            raise SagaDefinitionError(
                f"step {self.name!r}: compensation must be callable or None, "
                f"got {self.compensation!r}"
            )
        if self.timeout is not None:
            require_positive("timeout", self.timeout)
        if self.retry is not None and not isinstance(self.retry, Retry):
            raise SagaDefinitionError(
                f"step {self.name!r}: retry must be a Retry or None, got {self.retry!r}"
            )

    @property
    def is_async(self) -> bool:
        """
        Whether the action or the compensation is a coroutine function.
        """
        return inspect.iscoroutinefunction(self.action) or (
            self.compensation is not None
            and inspect.iscoroutinefunction(self.compensation)
        )

    def flags(self) -> tuple[str, bool, bool, bool, bool]:
        """
        Return what the definition hash covers: the name and the flags.
        """
        return (
            self.name,
            self.compensation is not None,
            self.idempotent,
            self.compensate_in_doubt,
            self.compensate_on_failure,
        )
