"""
A saga run in a subprocess that kills itself (SIGKILL) at a chosen point.

Not a test module: the crash tests and the command-line tests start it.

    python -m tests.transactions.crash_worker run JOURNAL EFFECTS
    python -m tests.transactions.crash_worker recover JOURNAL EFFECTS

The steps stand in for remote participants: each invocation appends
``call KEY`` to the EFFECTS file, and applies its effect (``apply KEY``)
only if that key was not applied before, as a service honouring idempotency
keys would. Every line is fsynced before the process goes on, so SIGKILL
loses nothing written. CRASH_AT picks where to die:

- ``do:STEP:enter`` / ``do:STEP:effect``: inside the action, before or after
  its effect (the intent is journalled, the result is not);
- ``do:STEP:completed``: just after the result is journalled;
- ``undo:STEP:enter`` / ``undo:STEP:effect`` / ``undo:STEP:completed``: the
  same for the compensation.

Step ``d`` always fails, so every run ends compensated.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from recovery.events import Event
from recovery.transactions import (
    Journal,
    Saga,
    SagaCompensationRan,
    SagaContext,
    SagaFailedError,
    SagaStepCompleted,
    Step,
    open_journal,
    recover_sagas,
)

CRASH_AT = os.environ.get("CRASH_AT", "")
EFFECTS = Path(os.environ.get("EFFECTS", "effects.log"))


def _die_if(point: str) -> None:
    if point == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)


def _append(line: str) -> None:
    with EFFECTS.open("a") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())


def _participant(role: str, step: str, ctx: SagaContext) -> None:
    _append(f"call {ctx.idempotency_key}")
    _die_if(f"{role}:{step}:enter")
    applied = EFFECTS.read_text().splitlines()
    if f"apply {ctx.idempotency_key}" not in applied:
        _append(f"apply {ctx.idempotency_key}")
    _die_if(f"{role}:{step}:effect")


def action(step: str) -> Callable[[SagaContext], str]:
    def run(ctx: SagaContext) -> str:
        if step == "d":
            _append(f"call {ctx.idempotency_key}")
            raise ValueError("d always fails, without effect")
        _participant("do", step, ctx)
        return f"{step}-result"

    return run


def compensation(step: str) -> Callable[[SagaContext, object], None]:
    def run(ctx: SagaContext, result: object) -> None:
        if result != f"{step}-result":
            raise AssertionError(f"compensation of {step} got {result!r}")
        _participant("undo", step, ctx)

    return run


def _kill_after_journalled(event: Event) -> None:
    # Step and compensation completion events are emitted only after the
    # journal committed the record, which is the point to test.
    if isinstance(event, SagaStepCompleted):
        _die_if(f"do:{event.step}:completed")
    elif isinstance(event, SagaCompensationRan):
        _die_if(f"undo:{event.step}:completed")


def build(journal: Journal) -> Saga:
    return Saga(
        "trip",
        [Step(name, action(name), compensation(name)) for name in "abcd"],
        journal=journal,
        compensation_retry=None,
        listeners=[_kill_after_journalled],
    )


def main(argv: list[str]) -> int:
    mode, target, effects = argv
    global EFFECTS
    EFFECTS = Path(effects)
    journal = open_journal(target)
    saga = build(journal)
    if mode == "run":
        try:
            saga.run({"trip": 1}, saga_id=os.environ.get("SAGA_ID", "trip-1"))
        except SagaFailedError as exc:
            print(exc.status.value)
            return 1
        return 0

    report = recover_sagas(
        journal, [saga], batch=int(os.environ.get("RECOVER_BATCH", "100"))
    )
    for saga_id, status in sorted(report.finished.items()):
        print(saga_id, status.value)
    for saga_id, error in sorted(report.errors.items()):
        print(saga_id, "error", error)
    return 0 if report.ok else 2


DEFINITIONS = {"trip": build(open_journal(":memory:"))}
"""
The registry the command-line tests name with --definitions.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
