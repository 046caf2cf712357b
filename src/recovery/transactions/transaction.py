"""
`Transaction`: the simplest saga, in memory, with nothing to set up.

Operations run one after the other; each may carry a rollback. When an
operation fails (or the ``with`` block raises), the rollbacks of the
operations that completed run in reverse order, each receiving its
operation's result, and the caller gets a `SagaFailedError` holding the
original error and every rollback error. Nothing is journalled: a crash of
the process loses the transaction; use a `Saga` with a journal when that
matters.

An interruption (cancellation, `KeyboardInterrupt`, `SystemExit`) rolls
back the completed operations too, then re-raises the very same exception:
unlike a journalled saga, which recovery finishes later, nothing could ever
undo them once this process has moved on.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Literal, NoReturn, TypeVar, overload

from ..errors import ConfigurationError
from ..events import EventEmitter, Listener
from ..policies.retry import Retry
from .errors import SagaFailedError
from .records import SagaStatus
from .saga_events import (
    SagaCompensated,
    SagaCompensationFailed,
    SagaCompensationRan,
    SagaFailed,
)

__all__ = ["Transaction"]

R = TypeVar("R")

Rollback = Callable[[R], object]


@dataclasses.dataclass(slots=True)
class _Operation:
    name: str
    operation: Callable[[], object]
    rollback: Callable[[object], object] | None


@dataclasses.dataclass(slots=True)
class _Done:
    name: str
    rollback: Callable[[object], object] | None
    result: object


class Transaction:
    """
    Operations with rollbacks, undone in reverse order if one fails.

    Two forms::

        tx = Transaction()
        tx.add(reserve, rollback=release)
        tx.add(charge, rollback=refund)
        results = tx.execute()

        with Transaction() as tx:
            seat = tx.run(reserve, rollback=release)
            tx.run(lambda: charge(seat), rollback=refund)

    Args:
        name: names the transaction in events and errors.
        rollback_retry: retries each rollback; None (the default) tries
            once.
        on_rollback_failure: ``"continue"`` (the default) runs the remaining
            rollbacks after one gives up, since nothing could resume them
            later; ``"stop"`` leaves them, for rollbacks that depend on one
            another.
        listeners: receive the transaction's events.

    An interruption (cancellation, `KeyboardInterrupt`, `SystemExit`) in an
    operation or in the ``with`` block also rolls back the operations that
    completed (not the interrupted one, whose outcome is unknown), then
    re-raises the same exception, never a `SagaFailedError`: nothing else
    could undo them later. Rollback errors are reported by events and a
    note on that exception. A second interruption during the rollbacks
    stops them and propagates.
    """

    def __init__(
        self,
        name: str = "transaction",
        *,
        rollback_retry: Retry | None = None,
        on_rollback_failure: Literal["continue", "stop"] = "continue",
        listeners: Iterable[Listener] = (),
    ) -> None:
        if on_rollback_failure not in ("continue", "stop"):
            raise ConfigurationError(
                f"on_rollback_failure must be 'continue' or 'stop', "
                f"got {on_rollback_failure!r}"
            )
        if rollback_retry is not None and not isinstance(rollback_retry, Retry):
            raise ConfigurationError(
                f"rollback_retry must be a Retry or None, got {rollback_retry!r}"
            )
        self.name = name
        self.id = uuid.uuid4().hex
        self._retry = rollback_retry
        self._stop = on_rollback_failure == "stop"
        self._emitter = EventEmitter(listeners)
        self._planned: list[_Operation] = []
        self._done: list[_Done] = []

    def __repr__(self) -> str:
        return (
            f"Transaction({self.name!r}, planned={len(self._planned)}, "
            f"done={len(self._done)})"
        )

    # -- building, then executing ---------------------------------------------

    @overload
    def add(
        self,
        operation: Callable[[], Awaitable[R]],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> Transaction: ...

    @overload
    def add(
        self,
        operation: Callable[[], R],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> Transaction: ...

    def add(
        self,
        operation: Callable[[], object],
        rollback: Callable[[object], object] | Callable[[R], object] | None = None,
        *,
        name: str | None = None,
    ) -> Transaction:
        """
        Plan *operation* (run by `execute` or, if async, `aexecute`), with
        its rollback; return self.
        """
        if not callable(operation) or (rollback is not None and not callable(rollback)):
            raise ConfigurationError("operation and rollback must be callables")
        label = name or getattr(
            operation, "__name__", f"operation {len(self._planned)}"
        )
        self._planned.append(_Operation(label, operation, rollback))  # type: ignore[arg-type]
        return self

    def execute(self) -> list[object]:
        """
        Run the planned operations in order and return their results.

        Raises:
            SagaFailedError: an operation raised; the completed ones were
                rolled back as far as possible.
        """
        planned, self._planned = self._planned, []
        for op in planned:
            self.run(op.operation, op.rollback, name=op.name)
        return [done.result for done in self._done]

    async def aexecute(self) -> list[object]:
        """
        Run the planned operations in order, awaiting async ones.
        """
        planned, self._planned = self._planned, []
        for op in planned:
            await self.arun(op.operation, op.rollback, name=op.name)
        return [done.result for done in self._done]

    # -- running one operation now --------------------------------------------

    def run(
        self,
        operation: Callable[[], R],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> R:
        """
        Run *operation* now and remember its rollback; return its result.

        If it raises, everything done so far is rolled back and
        `SagaFailedError` is raised.
        """
        label = _label(operation, name, len(self._done))
        try:
            result = operation()
        except Exception as exc:  # noqa: BLE001 - any error rolls back
            self.rollback(exc, failed=label)
        except BaseException as exc:
            self._interrupted(exc, label, *self._undo())
            raise
        self._done.append(_Done(label, rollback, result))  # type: ignore[arg-type]
        return result

    @overload
    async def arun(
        self,
        operation: Callable[[], Awaitable[R]],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> R: ...

    @overload
    async def arun(
        self,
        operation: Callable[[], R],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> R: ...

    async def arun(
        self,
        operation: Callable[[], Awaitable[R]] | Callable[[], R],
        rollback: Rollback[R] | None = None,
        *,
        name: str | None = None,
    ) -> R:
        """
        Run (and await, if async) *operation* now; the async twin of `run`.
        """
        label = _label(operation, name, len(self._done))
        try:
            value = operation()
            result: R = await value if inspect.isawaitable(value) else value
        except Exception as exc:  # noqa: BLE001 - any error rolls back
            await self.arollback(exc, failed=label)
        except BaseException as exc:
            self._interrupted(exc, label, *await self._aundo())
            raise
        self._done.append(_Done(label, rollback, result))  # type: ignore[arg-type]
        return result

    # -- rolling back ----------------------------------------------------------

    def rollback(self, error: Exception, *, failed: str = "the block") -> NoReturn:
        """
        Roll back every completed operation and raise `SagaFailedError`.
        """
        raise self._failure(error, failed, *self._undo())

    def _undo(self) -> tuple[list[Exception], list[str], list[_Done]]:
        errors: list[Exception] = []
        undone: list[str] = []
        pending = self._pending()
        for done in pending:
            if done.rollback is None:
                continue
            rollback = done.rollback
            try:
                if self._retry is None:
                    rollback(done.result)
                else:
                    self._retry.call(rollback, done.result)
            except Exception as exc:  # noqa: BLE001 - reported in the group below
                errors.append(exc)
                if self._report_failure(done, exc):
                    break
                continue
            undone.append(self._report_undone(done))
        return errors, undone, pending

    async def arollback(
        self, error: Exception, *, failed: str = "the block"
    ) -> NoReturn:
        """
        Roll back every completed operation, awaiting async rollbacks, and
        raise `SagaFailedError`.
        """
        raise self._failure(error, failed, *await self._aundo())

    async def _aundo(self) -> tuple[list[Exception], list[str], list[_Done]]:
        errors: list[Exception] = []
        undone: list[str] = []
        pending = self._pending()
        for done in pending:
            if done.rollback is None:
                continue
            rollback = done.rollback
            try:
                if self._retry is None:
                    await _maybe_await(rollback(done.result))
                else:
                    await self._retry.acall(_async_of(rollback), done.result)
            except Exception as exc:  # noqa: BLE001 - reported in the group below
                errors.append(exc)
                if self._report_failure(done, exc):
                    break
                continue
            undone.append(self._report_undone(done))
        return errors, undone, pending

    def _pending(self) -> list[_Done]:
        # Each completed operation is rolled back at most once, even if the
        # caller rolls back again after catching the error.
        pending, self._done = self._done[::-1], []
        return pending

    def _report_undone(self, done: _Done) -> str:
        self._emitter.emit(
            SagaCompensationRan(
                source=self.name, saga_id=self.id, step=done.name, attempt=1
            )
        )
        return done.name

    def _report_failure(self, done: _Done, exc: Exception) -> bool:
        self._emitter.emit(
            SagaCompensationFailed(
                source=self.name,
                saga_id=self.id,
                step=done.name,
                attempts=1 if self._retry is None else self._retry.attempts or 0,
                error=type(exc).__qualname__,
                stopped=self._stop,
            )
        )
        return self._stop

    def _failure(
        self,
        error: Exception,
        failed: str,
        errors: list[Exception],
        undone: list[str],
        pending: list[_Done],
    ) -> SagaFailedError:
        status, not_undone = self._report_end(failed, errors, undone, pending)
        return SagaFailedError(
            f"transaction {self.name!r} failed at {failed!r} and was "
            f"{'rolled back' if not errors else 'only partly rolled back'}",
            [error, *errors],
            saga_id=self.id,
            status=status,
            failed_step=failed,
            compensated=undone,
            not_compensated=not_undone,
        )

    def _interrupted(
        self,
        exc: BaseException,
        failed: str,
        errors: list[Exception],
        undone: list[str],
        pending: list[_Done],
    ) -> None:
        # The interruption itself propagates unchanged; what the rollbacks
        # did is told by the events and by a note the traceback shows. With
        # nothing completed (or all of it already rolled back by `run`,
        # inside a ``with`` block) there is nothing to tell.
        if not pending:
            return
        _, not_undone = self._report_end(failed, errors, undone, pending)
        if undone or not_undone:
            exc.add_note(
                f"transaction {self.name!r} was interrupted at {failed!r}; rolled "
                f"back: {', '.join(undone) or 'nothing'}; not rolled back: "
                f"{', '.join(not_undone) or 'nothing'}"
            )

    def _report_end(
        self,
        failed: str,
        errors: list[Exception],
        undone: list[str],
        pending: list[_Done],
    ) -> tuple[SagaStatus, list[str]]:
        not_undone = [
            d.name for d in pending if d.rollback is not None and d.name not in undone
        ]
        if not errors:
            self._emitter.emit(
                SagaCompensated(source=self.name, saga_id=self.id, failed_step=failed)
            )
            return SagaStatus.COMPENSATED, not_undone

        self._emitter.emit(
            SagaFailed(
                source=self.name,
                saga_id=self.id,
                reason="rollbacks gave up",
                not_compensated=tuple(not_undone),
            )
        )
        return (SagaStatus.STUCK if self._stop else SagaStatus.FAILED), not_undone

    # -- context manager forms -------------------------------------------------

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A SagaFailedError raised by `run` inside the block has already
        # rolled back. An interruption rolls back too, since nothing could
        # later, and is then left to propagate: returning None re-raises it.
        if isinstance(exc, SagaFailedError) or exc is None:
            return
        if isinstance(exc, Exception):
            self.rollback(exc)
        self._interrupted(exc, "the block", *self._undo())

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, SagaFailedError) or exc is None:
            return
        if isinstance(exc, Exception):
            await self.arollback(exc)
        self._interrupted(exc, "the block", *await self._aundo())


async def _maybe_await(value: object) -> object:
    if inspect.isawaitable(value):
        return await value
    return value


def _async_of(fn: Callable[[object], object]) -> Callable[[object], Awaitable[object]]:
    async def call(value: object) -> object:
        return await _maybe_await(fn(value))

    return call


def _label(operation: Callable[[], object], name: str | None, index: int) -> str:
    if name is not None:
        return name
    label = getattr(operation, "__name__", None)
    return label if isinstance(label, str) else f"operation {index}"
