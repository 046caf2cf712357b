"""
Property tests of the saga engine: random sagas, random outcomes and a crash
at a random point, then recovery; the journal's promises must hold.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from recovery.transactions import (
    MemoryJournal,
    RecordKind,
    Saga,
    SagaContext,
    SagaFailedError,
    SagaStatus,
    Step,
    recover_sagas,
)


class Crash(BaseException):
    """
    Stands in for the process dying.
    """


@dataclasses.dataclass(frozen=True)
class Plan:
    actions_ok: list[bool]
    has_compensation: list[bool]
    compensations_ok: list[bool]
    partial_effects: list[bool]
    stop_on_failure: bool
    crash_at: int | None
    crash_after_effect: bool


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(1, 5))
    return Plan(
        actions_ok=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        has_compensation=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        compensations_ok=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        partial_effects=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        stop_on_failure=draw(st.booleans()),
        crash_at=draw(st.integers(0, 2 * n - 1)),
        crash_after_effect=draw(st.booleans()),
    )


def to_compensate(plan: Plan) -> list[int]:
    """
    Return the steps whose compensation must run, latest first.
    """
    failed = plan.actions_ok.index(False)
    first = failed if plan.partial_effects[failed] else failed - 1
    return [i for i in range(first, -1, -1) if plan.has_compensation[i]]


def expected_status(plan: Plan) -> SagaStatus:
    """
    Compute the outcome from the plan alone, without the engine.
    """
    if all(plan.actions_ok):
        return SagaStatus.COMPLETED
    for index in to_compensate(plan):
        if not plan.compensations_ok[index]:
            if plan.stop_on_failure:
                return SagaStatus.STUCK
            return SagaStatus.FAILED
    return SagaStatus.COMPENSATED


@settings(max_examples=60, deadline=None)
@given(plan=plans())
def test_journal_promises_hold_across_a_crash(plan: Plan) -> None:
    journal = MemoryJournal()
    invocations = [0]
    violations: list[str] = []

    def recorded(kind: RecordKind, index: int) -> bool:
        records = journal.load("p").records
        return any(r.kind is kind and r.step == index for r in records)

    crashed: list[bool] = []

    def maybe_crash(after: bool) -> None:
        point = plan.crash_at == invocations[0] and plan.crash_after_effect == after
        if point and not crashed:
            crashed.append(True)
            raise Crash

    def action(index: int):  # type: ignore[no-untyped-def]
        def run(ctx: SagaContext) -> int:
            if recorded(RecordKind.STEP_COMPLETED, index):
                violations.append(f"action {index} ran after its completion")
            maybe_crash(after=False)
            invocations[0] += 1
            maybe_crash(after=True)
            if not plan.actions_ok[index]:
                raise ValueError(index)
            return index

        return run

    def compensation(index: int):  # type: ignore[no-untyped-def]
        def run(ctx: SagaContext, result: object) -> None:
            if recorded(RecordKind.COMP_COMPLETED, index):
                violations.append(f"compensation {index} ran after its completion")
            expected = index if plan.actions_ok[index] else None
            if result != expected:
                violations.append(f"compensation {index} got {result!r}")
            maybe_crash(after=False)
            invocations[0] += 1
            maybe_crash(after=True)
            if not plan.compensations_ok[index]:
                raise OSError(index)

        return run

    saga = Saga(
        "p",
        [
            Step(
                f"s{i}",
                action(i),
                compensation(i) if plan.has_compensation[i] else None,
                compensate_on_failure=plan.partial_effects[i],
            )
            for i in range(len(plan.actions_ok))
        ],
        journal=journal,
        compensation_retry=None,
        on_compensation_failure="stop" if plan.stop_on_failure else "continue",
    )

    try:
        saga.run(saga_id="p")
    except Crash:
        event("crashed, then recovered")
        report = recover_sagas(journal, [saga])
        assert report.errors == {}
    except SagaFailedError:
        pass

    history = journal.load("p")
    assert violations == []
    assert history.header.status is expected_status(plan)
    undone = [
        r.step or 0 for r in history.records if r.kind is RecordKind.COMP_COMPLETED
    ]
    assert undone == sorted(set(undone), reverse=True)  # once each, latest first
    if history.header.status is SagaStatus.COMPENSATED:
        assert undone == to_compensate(plan)
    assert recover_sagas(journal, [saga]).finished == {}


@pytest.mark.parametrize("stop", [True, False])
def test_expected_status_helper_agrees_with_a_hand_worked_case(stop: bool) -> None:
    plan = Plan(
        actions_ok=[True, True, False],
        has_compensation=[True, True, True],
        compensations_ok=[True, False, True],
        partial_effects=[False, False, False],
        stop_on_failure=stop,
        crash_at=None,
        crash_after_effect=False,
    )

    assert expected_status(plan) is (SagaStatus.STUCK if stop else SagaStatus.FAILED)
