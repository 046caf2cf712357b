"""
The exceptions of sagas, transactions and their journals.

::

    RecoveryError
    ├── SagaFailedError (also ExceptionGroup)  a step failed for good; holds the
    │                                          step's error and every compensation
    │                                          error
    ├── SagaDefinitionError (also ValueError)  a saga definition is malformed
    ├── SagaDefinitionChangedError             a journalled saga no longer matches
    │                                          its registered definition
    ├── SagaStateError                         an operator action does not fit
    │                                          the saga's state
    └── StoreError
        └── JournalError                       a saga journal failed
            ├── JournalCorruptError            a record cannot be read back
            ├── SagaNotFoundError (also KeyError)
            ├── SagaExistsError                the saga id is already used
            └── SagaOwnershipLostError         another worker took the saga over
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from ..errors import RecoveryError, StoreError
from .records import SagaStatus

__all__ = [
    "JournalCorruptError",
    "JournalError",
    "SagaDefinitionChangedError",
    "SagaDefinitionError",
    "SagaExistsError",
    "SagaFailedError",
    "SagaNotFoundError",
    "SagaOwnershipLostError",
    "SagaStateError",
]


class SagaFailedError(RecoveryError, ExceptionGroup[Exception]):
    """
    A saga (or transaction) failed and was compensated as far as possible.

    `exceptions[0]` is the step's own error (also `error`); the rest are the
    last errors of compensations that gave up, in the order they ran, so
    ``except* ConnectionError`` reaches either kind. `status` is
    `SagaStatus.COMPENSATED` when every needed compensation ran,
    `SagaStatus.STUCK` when compensation stopped for an operator, and
    `SagaStatus.FAILED` when it carried on past failed compensations.
    `compensated` and `not_compensated` name the steps concerned.
    """

    saga_id: str
    status: SagaStatus
    failed_step: str
    compensated: tuple[str, ...]
    not_compensated: tuple[str, ...]

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[Exception],
        *,
        saga_id: str,
        status: SagaStatus,
        failed_step: str,
        compensated: Sequence[str] = (),
        not_compensated: Sequence[str] = (),
    ) -> Self:
        # ExceptionGroup builds itself in __new__ from (message, exceptions)
        # alone, so the extra attributes are set here rather than in __init__.
        self = super().__new__(cls, message, exceptions)
        self.saga_id = saga_id
        self.status = status
        self.failed_step = failed_step
        self.compensated = tuple(compensated)
        self.not_compensated = tuple(not_compensated)
        return self

    def __init__(
        self,
        message: str,
        exceptions: Sequence[Exception],
        **_attributes: object,
    ) -> None:
        super().__init__(message, exceptions)

    @property
    def error(self) -> Exception:
        """
        The error of the step that failed.
        """
        return self.exceptions[0]

    @property
    def compensation_errors(self) -> tuple[Exception, ...]:
        """
        The last error of each compensation that gave up.
        """
        return tuple(self.exceptions[1:])

    def __reduce__(self) -> tuple[object, ...]:
        # The default reduction passes only (message, exceptions) back to
        # __new__, which also needs the keyword attributes.
        return (
            _rebuild_saga_failed,
            (self.message, list(self.exceptions), self._attributes()),
        )

    def _attributes(self) -> dict[str, object]:
        return {
            "saga_id": self.saga_id,
            "status": self.status,
            "failed_step": self.failed_step,
            "compensated": self.compensated,
            "not_compensated": self.not_compensated,
        }

    def derive(self, excs: Sequence[Exception]) -> SagaFailedError:  # type: ignore[override]
        """
        Return a copy holding *excs* (used by ``except*`` to split the group).
        """
        return SagaFailedError(self.message, excs, **self._attributes())


def _rebuild_saga_failed(
    message: str, exceptions: list[Exception], attributes: dict[str, object]
) -> SagaFailedError:
    return SagaFailedError(message, exceptions, **attributes)


class SagaDefinitionError(RecoveryError, ValueError):
    """
    A saga definition is malformed (duplicate step names, no steps, ...).
    """


class SagaDefinitionChangedError(RecoveryError):
    """
    A journalled saga was started with a definition that differs from the
    registered one; resuming it would mean guessing, so it is left alone.
    """

    def __init__(
        self, message: str, *, saga_id: str, stored_hash: str, current_hash: str
    ) -> None:
        super().__init__(message)
        self.saga_id = saga_id
        self.stored_hash = stored_hash
        self.current_hash = current_hash


class SagaStateError(RecoveryError):
    """
    An operator action was asked of a saga whose state does not allow it.
    """


class JournalError(StoreError):
    """
    A saga journal failed or refused a write.
    """


class JournalCorruptError(JournalError):
    """
    A journal record cannot be read back; nothing was changed.

    `saga_id` and `seq` name the record (`seq` is None when the saga's own
    row is damaged), `where` the journal.
    """

    def __init__(
        self, message: str, *, saga_id: str | None, seq: int | None, where: str
    ) -> None:
        super().__init__(message)
        self.saga_id = saga_id
        self.seq = seq
        self.where = where


class SagaNotFoundError(JournalError, KeyError):
    """
    No saga with this id exists in the journal.
    """

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better unquoted.
        return str(self.args[0]) if self.args else ""


class SagaExistsError(JournalError):
    """
    A saga with this id was already started.
    """


class SagaOwnershipLostError(JournalError):
    """
    Another worker claimed the saga (its fencing token moved on).

    The worker that gets this stops at once without invoking anything else;
    the new owner finishes the saga.
    """
