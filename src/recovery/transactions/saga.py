"""
Sagas: ordered steps with compensations, journalled so a crash is recovered.

A `Saga` runs its steps' actions in order, each receiving a `SagaContext`
with the input and the results so far. When a step fails for good, the
compensations of the completed steps run in reverse order, each receiving
its step's result. Every intent is journalled before the invocation and
every result after it, so `recover_sagas` can finish a saga whose process
died, and never runs a journalled compensation twice.

The decisions live in `replay.SagaState` (pure); `execution.Execution` is
the shell that invokes the user's functions and writes the journal, with
sync and async twins that differ by `await` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from typing import Literal

from .._validation import require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..events import EventEmitter, Listener
from ..policies.backoff import exponential
from ..policies.retry import Retry
from .codec import JSON_CODEC, Codec
from .errors import SagaDefinitionChangedError, SagaDefinitionError
from .execution import Execution, SagaOutcome, aguarded, encode, guarded
from .journal import Claim, Journal, SagaHistory
from .journal_memory import MemoryJournal
from .ownership import new_worker_id
from .records import RecordKind, SagaStatus
from .step import Step

__all__ = ["DEFAULT", "Saga", "SagaOutcome", "new_saga_id"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""
Marks a setting left at its documented default (where None means "none").
"""

_COMPENSATION_FAILURE_CHOICES = ("stop", "continue")


class Saga:
    """
    A named, ordered list of steps, run with a durable journal.

    Args:
        name: the saga's type; recovery finds its definition by this name.
        steps: the steps, in order; names must be unique.
        journal: where intents and results are written; a private
            `MemoryJournal` by default (nothing survives the process).
        codec: turns the input and results into journal text (JSON).
        compensation_retry: retries each compensation; by default 5
            attempts with exponential backoff (0.5 s doubling, capped at 30
            s, full jitter) on the saga's clock. None: one attempt.
        on_compensation_failure: what to do when a compensation gives up:
            ``"stop"`` (the default) marks the saga stuck for an operator and
            leaves the earlier steps alone, since undoing them may depend on
            the failed compensation; ``"continue"`` runs the remaining
            compensations and ends the saga failed.
        lease: seconds a worker owns a saga unless it renews the lease; a
            background thread renews it every third of that while the saga
            runs. Once it expires (the process paused or died), another
            worker may take the saga over; on one host a dead owner is
            noticed at once.
        version: part of the definition hash; change it when a step's
            meaning changes though its name and flags do not.
        clock, listeners: the clock of the default retry and of journal
            timestamps, and event listeners.

    `emitter` delivers the saga's events (recovery uses it too);
    `is_async` says whether any step is a coroutine function.
    """

    def __init__(
        self,
        name: str,
        steps: Iterable[Step],
        *,
        journal: Journal | None = None,
        codec: Codec = JSON_CODEC,
        compensation_retry: Retry | _Default | None = DEFAULT,
        on_compensation_failure: Literal["stop", "continue"] = "stop",
        lease: float = 60.0,
        version: str = "",
        clock: Clock = SYSTEM_CLOCK,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.name = _check_name(name)
        self.steps = _check_steps(name, steps)
        if on_compensation_failure not in _COMPENSATION_FAILURE_CHOICES:
            raise ConfigurationError(
                f"on_compensation_failure must be 'stop' or 'continue', "
                f"got {on_compensation_failure!r}"
            )
        if isinstance(compensation_retry, _Default):
            compensation_retry = Retry(
                attempts=5,
                backoff=exponential(
                    initial=0.5, multiplier=2.0, cap=30.0, jitter="full"
                ),
                clock=clock,
                name=f"{name}.compensation",
            )
        elif compensation_retry is not None and not isinstance(
            compensation_retry, Retry
        ):
            raise ConfigurationError(
                "compensation_retry must be a Retry or None, "
                f"got {compensation_retry!r}"
            )

        self.journal: Journal = (
            journal if journal is not None else MemoryJournal(clock=clock)
        )
        self.codec = codec
        self.compensation_retry = compensation_retry
        self.stop_on_compensation_failure = on_compensation_failure == "stop"
        self.lease = require_positive("lease", lease)
        self.version = version
        self.clock = clock
        self.emitter = EventEmitter(listeners)
        self.definition_hash = _definition_hash(name, version, self.steps)
        self.is_async = any(step.is_async for step in self.steps)

    def __repr__(self) -> str:
        names = ", ".join(step.name for step in self.steps)
        return f"Saga({self.name!r}, steps=[{names}], journal={self.journal!r})"

    def add_listener(self, listener: Listener) -> None:
        """
        Send this saga's events to *listener* as well.
        """
        self.emitter.add(listener)

    # -- running ------------------------------------------------------------

    def run(self, input: object = None, *, saga_id: str | None = None) -> SagaOutcome:
        """
        Run the saga to the end and return its outcome.

        Raises:
            SagaFailedError: a step failed for good; holds its error and the
                errors of compensations that gave up.
            SagaExistsError: *saga_id* was already used.
            JournalError: the journal failed; the saga stopped where it was
                and `recover_sagas` will finish it.
        """
        if self.is_async:
            raise SagaDefinitionError(
                f"saga {self.name!r} has async steps; run it with `await saga.arun()`"
            )
        timed = [step.name for step in self.steps if step.timeout is not None]
        if timed:
            raise SagaDefinitionError(
                f"saga {self.name!r}: only async steps can be timed out, and these "
                f"have a timeout: {', '.join(timed)}; run it with `await saga.arun()`"
            )
        execution = self._start(input, saga_id)
        execution.create()
        guarded(execution, execution.drive)
        return execution.outcome()

    async def arun(
        self,
        input: object = None,
        *,
        saga_id: str | None = None,
    ) -> SagaOutcome:
        """
        Run the saga to the end in the event loop; sync steps are called
        directly, async ones awaited. Raises as `run` does.
        """
        execution = self._start(input, saga_id)
        await execution.aio(execution.create)
        await aguarded(execution, execution.adrive)
        return execution.outcome()

    def _start(self, input: object, saga_id: str | None) -> Execution:
        # Plans the first record; the caller stores it (sync or async).
        saga_id = new_saga_id() if saga_id is None else saga_id
        payload = encode(self.codec, input, f"saga {self.name!r}: the input")
        execution = Execution(self, self.journal, saga_id, new_worker_id(), fence=1)
        execution.first = execution.record(RecordKind.SAGA_STARTED, payload=payload)
        execution.state.apply(execution.first)
        return execution

    # -- resuming (used by recovery) -----------------------------------------

    def _resume_pass(
        self, journal: Journal, claim: Claim, history: SagaHistory
    ) -> Execution:
        header = history.header
        if header.definition_hash != self.definition_hash:
            raise SagaDefinitionChangedError(
                f"saga {claim.saga_id!r} of type {self.name!r} was started with "
                f"definition {header.definition_hash} but the registered definition "
                f"is {self.definition_hash} (steps: "
                f"{', '.join(s.name for s in self.steps)}); refusing to resume it. "
                "Register the definition it was started with, or abort it.",
                saga_id=claim.saga_id,
                stored_hash=header.definition_hash,
                current_hash=self.definition_hash,
            )

        execution = Execution(self, journal, claim.saga_id, claim.owner, claim.fence)
        for record in history.records:
            execution.state.apply(record)
        return execution

    def _check_resumable(self, journal: Journal, history: SagaHistory) -> None:
        # The checks of resuming, run before claiming: the same definition,
        # and every record replays. Raises as `_resume` would.
        header = history.header
        unclaimed = Claim(header.saga_id, header.saga_type, "", header.fence)
        self._resume_pass(journal, unclaimed, history)

    def _resume(
        self, journal: Journal, claim: Claim, history: SagaHistory
    ) -> SagaStatus:
        execution = self._resume_pass(journal, claim, history)
        execution.write(
            RecordKind.SAGA_RESUMED,
            payload=json.dumps({"previous_owner": claim.previous_owner}),
        )
        guarded(execution, execution.drive)
        return execution.state.status

    async def _aresume(
        self, journal: Journal, claim: Claim, history: SagaHistory
    ) -> SagaStatus:
        execution = self._resume_pass(journal, claim, history)
        await execution.awrite(
            RecordKind.SAGA_RESUMED,
            payload=json.dumps({"previous_owner": claim.previous_owner}),
        )
        await aguarded(execution, execution.adrive)
        return execution.state.status


def new_saga_id() -> str:
    """
    Return a fresh saga id: 32 hex digits, ordered by creation time.

    The first 12 digits are the wall-clock milliseconds and the other 20 are
    random, so new sagas land at the end of the journal's indexes instead of
    at random places in them, and ids still never collide in practice.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise SagaDefinitionError(f"saga name must be a non-empty string, got {name!r}")
    return name


def _check_steps(name: str, steps: Iterable[Step]) -> tuple[Step, ...]:
    steps = tuple(steps)
    if not steps:
        raise SagaDefinitionError(f"saga {name!r} needs at least one step")
    for step in steps:
        if not isinstance(step, Step):
            raise SagaDefinitionError(
                f"saga {name!r}: steps must be Step objects, got {step!r}"
            )
    names = [step.name for step in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SagaDefinitionError(
            f"saga {name!r}: step names must be unique; repeated: "
            f"{', '.join(duplicates)}"
        )
    return steps


def _definition_hash(name: str, version: str, steps: tuple[Step, ...]) -> str:
    shape = [name, version, [list(step.flags()) for step in steps]]
    digest = hashlib.sha256(json.dumps(shape, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]
