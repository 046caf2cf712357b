"""
Running sagas in one process: order, compensation, retries, keys, events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from recovery.errors import CallTimeoutError, ConfigurationError
from recovery.events import Event
from recovery.policies.backoff import constant
from recovery.policies.retry import Retry
from recovery.testing import FakeClock
from recovery.transactions import (
    MemoryJournal,
    RecordKind,
    Saga,
    SagaCompensated,
    SagaCompensationFailed,
    SagaCompensationRan,
    SagaCompleted,
    SagaContext,
    SagaDefinitionError,
    SagaExistsError,
    SagaFailed,
    SagaFailedError,
    SagaStatus,
    SagaStepCompleted,
    SagaStepFailed,
    SagaStepStarted,
    SagaStuck,
    Step,
)


class BoomError(Exception):
    pass


class Recorder:
    """
    Step functions that log what they were called with.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.contexts: list[SagaContext] = []

    def action(
        self, name: str, result: object = None, *, fail: int = 0
    ) -> Callable[[SagaContext], object]:
        """
        An action returning *result*, failing its first *fail* invocations.
        """
        failures = {"left": fail}

        def run(ctx: SagaContext) -> object:
            self.calls.append(("do", name))
            self.contexts.append(ctx)
            if failures["left"] != 0:
                failures["left"] -= 1
                raise BoomError(f"{name} failed")
            return result

        return run

    def undo(
        self, name: str, *, fail: int = 0
    ) -> Callable[[SagaContext, object], None]:
        failures = {"left": fail}

        def run(ctx: SagaContext, result: object) -> None:
            self.calls.append(("undo", name, json.dumps(result)))
            self.contexts.append(ctx)
            if failures["left"] != 0:
                failures["left"] -= 1
                raise BoomError(f"undo {name} failed")

        return run


def test_runs_actions_in_order_with_input_and_results() -> None:
    rec = Recorder()
    saga = Saga(
        "order",
        [
            Step("reserve", rec.action("reserve", {"seat": 7})),
            Step("charge", rec.action("charge", 42)),
        ],
    )

    outcome = saga.run({"user": "ann"}, saga_id="s1")

    assert outcome.status is SagaStatus.COMPLETED
    assert dict(outcome.results) == {"reserve": {"seat": 7}, "charge": 42}
    assert rec.calls == [("do", "reserve"), ("do", "charge")]
    assert rec.contexts[0].input == {"user": "ann"}
    assert dict(rec.contexts[0].results) == {}
    assert dict(rec.contexts[1].results) == {"reserve": {"seat": 7}}


def test_failure_compensates_completed_steps_in_reverse_with_their_results() -> None:
    rec = Recorder()
    saga = Saga(
        "order",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step("b", rec.action("b", [2]), rec.undo("b")),
            Step("c", rec.action("c", fail=-1), rec.undo("c")),
            Step("d", rec.action("d"), rec.undo("d")),
        ],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run(saga_id="s1")

    assert rec.calls == [
        ("do", "a"),
        ("do", "b"),
        ("do", "c"),
        ("undo", "b", "[2]"),
        ("undo", "a", "1"),
    ]
    error = caught.value
    assert error.status is SagaStatus.COMPENSATED
    assert error.failed_step == "c"
    assert error.compensated == ("b", "a")
    assert error.not_compensated == ()
    assert isinstance(error.error, BoomError)
    assert error.exceptions == (error.error,)
    assert saga.journal.load("s1").header.status is SagaStatus.COMPENSATED


def test_steps_without_compensation_are_skipped() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step("b", rec.action("b", 2)),
            Step("c", rec.action("c", fail=-1)),
        ],
    )

    with pytest.raises(SagaFailedError):
        saga.run()

    assert rec.calls[-1] == ("undo", "a", "1")
    assert len(rec.calls) == 4


def test_idempotency_keys_are_stable_and_distinct() -> None:
    rec = Recorder()
    clock = FakeClock()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step(
                "b",
                rec.action("b", fail=-1),
                retry=Retry(attempts=3, backoff=constant(1.0), clock=clock),
            ),
        ],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError):
        saga.run(saga_id="X")

    keys = [(ctx.step, ctx.idempotency_key, ctx.attempt) for ctx in rec.contexts]
    assert keys == [
        ("a", "X:a:action", 1),
        ("b", "X:b:action", 1),
        ("b", "X:b:action", 2),
        ("b", "X:b:action", 3),
        ("a", "X:a:compensation", 1),
    ]


def test_retried_step_sees_earlier_results_and_compensates_once() -> None:
    rec = Recorder()
    clock = FakeClock()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", "A"), rec.undo("a")),
            Step(
                "b",
                rec.action("b", fail=-1),
                rec.undo("b"),
                retry=Retry(attempts=4, backoff=constant(2.0), clock=clock),
            ),
        ],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError):
        saga.run(saga_id="s")

    assert [c for c in rec.calls if c[0] == "do"] == [("do", "a")] + [("do", "b")] * 4
    assert [c for c in rec.calls if c[0] == "undo"] == [("undo", "a", '"A"')]
    assert all(dict(ctx.results) == {"a": "A"} for ctx in rec.contexts[1:5])
    assert clock.sleeps == [2.0, 2.0, 2.0]


def test_retry_that_succeeds_journals_every_attempt() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step(
                "a",
                rec.action("a", 5, fail=2),
                retry=Retry(attempts=3, clock=FakeClock()),
            )
        ],
    )

    outcome = saga.run(saga_id="s")

    kinds = [(r.kind, r.attempt) for r in saga.journal.load("s").records]
    assert outcome.results == {"a": 5}
    assert kinds == [
        (RecordKind.SAGA_STARTED, 0),
        (RecordKind.STEP_STARTED, 1),
        (RecordKind.STEP_FAILED, 1),
        (RecordKind.STEP_STARTED, 2),
        (RecordKind.STEP_FAILED, 2),
        (RecordKind.STEP_STARTED, 3),
        (RecordKind.STEP_COMPLETED, 3),
        (RecordKind.SAGA_COMPLETED, 0),
    ]


def test_failed_step_is_compensated_only_when_it_declares_partial_effects() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step(
                "b", rec.action("b", fail=-1), rec.undo("b"), compensate_on_failure=True
            ),
            Step("c", rec.action("c", fail=-1), rec.undo("c")),
        ],
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run()

    assert rec.calls == [
        ("do", "a"),
        ("do", "b"),
        ("undo", "b", "null"),
        ("undo", "a", "1"),
    ]
    assert caught.value.compensated == ("b", "a")


def test_compensation_is_retried_with_backoff() -> None:
    rec = Recorder()
    clock = FakeClock()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a", fail=2)),
            Step("b", rec.action("b", fail=-1)),
        ],
        compensation_retry=Retry(attempts=3, backoff=constant(0.5), clock=clock),
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run(saga_id="s")

    assert caught.value.status is SagaStatus.COMPENSATED
    assert rec.calls.count(("undo", "a", "1")) == 3
    assert clock.sleeps == [0.5, 0.5]
    comp_records = [
        (r.kind, r.attempt)
        for r in saga.journal.load("s").records
        if r.kind.value.startswith("comp_")
    ]
    assert comp_records == [
        (RecordKind.COMP_STARTED, 1),
        (RecordKind.COMP_FAILED, 1),
        (RecordKind.COMP_STARTED, 2),
        (RecordKind.COMP_FAILED, 2),
        (RecordKind.COMP_STARTED, 3),
        (RecordKind.COMP_COMPLETED, 3),
    ]


def test_default_compensation_retry_makes_five_attempts() -> None:
    rec = Recorder()
    clock = FakeClock()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a", fail=-1)),
            Step("b", rec.action("b", fail=-1)),
        ],
        clock=clock,
    )

    with pytest.raises(SagaFailedError):
        saga.run()

    assert rec.calls.count(("undo", "a", "1")) == 5
    assert len(clock.sleeps) == 4
    assert all(0 <= s <= 30 for s in clock.sleeps)


def test_failing_compensation_stops_the_saga_by_default() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step("b", rec.action("b", 2), rec.undo("b", fail=-1)),
            Step("c", rec.action("c", fail=-1)),
        ],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run(saga_id="s")

    error = caught.value
    assert ("undo", "a", "1") not in rec.calls
    assert error.status is SagaStatus.STUCK
    assert error.compensated == ()
    assert error.not_compensated == ("b", "a")
    assert [type(e) for e in error.exceptions] == [BoomError, BoomError]
    assert str(error.compensation_errors[0]) == "undo b failed"
    history = saga.journal.load("s")
    assert history.header.status is SagaStatus.STUCK
    assert history.records[-1].kind is RecordKind.SAGA_STUCK


def test_continue_mode_runs_the_other_compensations_and_ends_failed() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step("b", rec.action("b", 2), rec.undo("b", fail=-1)),
            Step("c", rec.action("c", fail=-1)),
        ],
        on_compensation_failure="continue",
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run(saga_id="s")

    assert rec.calls[-2:] == [("undo", "b", "2"), ("undo", "a", "1")]
    assert caught.value.status is SagaStatus.FAILED
    assert caught.value.compensated == ("a",)
    assert caught.value.not_compensated == ("b",)
    kinds = [r.kind for r in saga.journal.load("s").records]
    assert RecordKind.COMP_GAVE_UP in kinds
    assert kinds[-1] is RecordKind.SAGA_FAILED


def test_except_star_reaches_step_and_compensation_errors() -> None:
    class UndoError(Exception):
        pass

    def bad_undo(ctx: SagaContext, result: object) -> None:
        raise UndoError("no")

    saga = Saga(
        "s",
        [
            Step("a", lambda ctx: 1, bad_undo),
            Step("b", Recorder().action("b", fail=-1)),
        ],
        on_compensation_failure="continue",
        compensation_retry=None,
    )
    seen: list[str] = []

    try:
        saga.run()
    except* BoomError as group:
        seen.append(f"boom {len(group.exceptions)}")
    except* UndoError as group:
        seen.append(f"undo {len(group.exceptions)}")

    assert seen == ["boom 1", "undo 1"]


def test_events_cover_steps_compensations_and_the_end() -> None:
    events: list[Event] = []
    rec = Recorder()
    saga = Saga(
        "s",
        [
            Step("a", rec.action("a", 1), rec.undo("a")),
            Step("b", rec.action("b", fail=-1)),
        ],
        listeners=[events.append],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError):
        saga.run(saga_id="id")

    kinds = [(type(e), getattr(e, "step", None)) for e in events]
    assert kinds == [
        (SagaStepStarted, "a"),
        (SagaStepCompleted, "a"),
        (SagaStepStarted, "b"),
        (SagaStepFailed, "b"),
        (SagaCompensationRan, "a"),
        (SagaCompensated, None),
    ]
    assert all(e.source == "s" for e in events)


def test_completed_event_and_stuck_and_failed_events() -> None:
    events: list[Event] = []
    ok = Saga("ok", [Step("a", lambda ctx: 1)], listeners=[events.append])
    ok.run()
    stuck = Saga(
        "stuck",
        [
            Step("a", lambda ctx: 1, Recorder().undo("a", fail=-1)),
            Step("b", Recorder().action("b", fail=-1)),
        ],
        listeners=[events.append],
        compensation_retry=None,
    )
    with pytest.raises(SagaFailedError):
        stuck.run()
    failed = Saga(
        "failed",
        [
            Step("a", lambda ctx: 1, Recorder().undo("a", fail=-1)),
            Step("b", Recorder().action("b", fail=-1)),
        ],
        listeners=[events.append],
        on_compensation_failure="continue",
        compensation_retry=None,
    )
    with pytest.raises(SagaFailedError):
        failed.run()

    ends = [
        type(e)
        for e in events
        if type(e) in {SagaCompleted, SagaStuck, SagaFailed, SagaCompensationFailed}
    ]
    assert ends == [
        SagaCompleted,
        SagaCompensationFailed,
        SagaStuck,
        SagaCompensationFailed,
        SagaFailed,
    ]
    stuck_event = next(e for e in events if isinstance(e, SagaStuck))
    assert stuck_event.step == "a"
    assert "compensation of step 'a' gave up" in stuck_event.reason


async def test_arun_awaits_async_steps_and_compensations() -> None:
    calls: list[str] = []

    async def a(ctx: SagaContext) -> int:
        calls.append("a")
        return 1

    async def undo_a(ctx: SagaContext, result: object) -> None:
        calls.append(f"undo a {result}")

    def b(ctx: SagaContext) -> int:
        calls.append("b")
        raise BoomError

    saga = Saga("s", [Step("a", a, undo_a), Step("b", b)], compensation_retry=None)

    with pytest.raises(SagaFailedError) as caught:
        await saga.arun()

    assert calls == ["a", "b", "undo a 1"]
    assert caught.value.status is SagaStatus.COMPENSATED


async def test_arun_with_async_retry() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    async def flaky(ctx: SagaContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise BoomError
        return "ok"

    saga = Saga(
        "s",
        [Step("a", flaky, retry=Retry(attempts=3, backoff=constant(1), clock=clock))],
    )

    outcome = await saga.arun()

    assert outcome.results == {"a": "ok"}
    assert attempts == [1, 2, 3]
    assert clock.sleeps == [1.0, 1.0]


def test_run_refuses_async_steps() -> None:
    async def a(ctx: SagaContext) -> None:
        return None

    saga = Saga("s", [Step("a", a)])

    with pytest.raises(SagaDefinitionError, match="arun"):
        saga.run()

    assert saga.journal.sagas() == []


def test_unencodable_result_fails_the_step_and_compensates() -> None:
    rec = Recorder()
    saga = Saga(
        "s",
        [Step("a", rec.action("a", 1), rec.undo("a")), Step("b", lambda ctx: object())],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError) as caught:
        saga.run()

    assert isinstance(caught.value.error, SagaDefinitionError)
    assert "cannot be written to the journal" in str(caught.value.error)
    assert rec.calls[-1] == ("undo", "a", "1")


def test_reusing_a_saga_id_is_refused() -> None:
    saga = Saga("s", [Step("a", lambda ctx: 1)])
    saga.run(saga_id="same")

    with pytest.raises(SagaExistsError):
        saga.run(saga_id="same")


def test_journal_writes_the_intent_before_invoking() -> None:
    journal = MemoryJournal()
    seen: list[list[str]] = []

    def a(ctx: SagaContext) -> int:
        seen.append([r.kind.value for r in journal.load(ctx.saga_id).records])
        return 1

    Saga("s", [Step("a", a)], journal=journal).run(saga_id="s")

    assert seen == [["saga_started", "step_started"]]


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([], "at least one step"),
        ([Step("a", print), Step("a", print)], "unique"),
        (["a"], "Step objects"),
    ],
)
def test_bad_definitions_are_refused(steps: list[Step], match: str) -> None:
    with pytest.raises(SagaDefinitionError, match=match):
        Saga("s", steps)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="on_compensation_failure"):
        Saga("s", [Step("a", print)], on_compensation_failure="skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="lease"):
        Saga("s", [Step("a", print)], lease=0)
    with pytest.raises(SagaDefinitionError, match="callable"):
        Step("a", "print")  # type: ignore[arg-type]


def test_definition_hash_covers_names_order_and_flags() -> None:
    base = Saga("s", [Step("a", print), Step("b", print)]).definition_hash

    assert Saga("s", [Step("a", repr), Step("b", repr)]).definition_hash == base
    assert Saga("s", [Step("b", print), Step("a", print)]).definition_hash != base
    assert (
        Saga(
            "s", [Step("a", print), Step("b", print, idempotent=False)]
        ).definition_hash
        != base
    )
    assert (
        Saga("s", [Step("a", print), Step("b", print)], version="2").definition_hash
        != base
    )


def test_except_star_keeps_the_saga_attributes() -> None:
    saga = Saga(
        "s",
        [Step("a", lambda ctx: 1), Step("b", Recorder().action("b", fail=-1))],
    )
    groups: list[BaseExceptionGroup[BoomError]] = []

    try:
        saga.run(saga_id="kept")
    except* BoomError as group:
        groups.append(group)

    assert isinstance(groups[0], SagaFailedError)
    assert groups[0].saga_id == "kept"
    assert groups[0].failed_step == "b"


def test_a_custom_codec_encodes_results_and_input() -> None:
    import pickle

    class PickleCodec:
        def encode(self, value: object) -> str:
            return pickle.dumps(value).hex()

        def decode(self, text: str) -> object:
            return pickle.loads(bytes.fromhex(text))

    seen: list[object] = []

    def undo(ctx: SagaContext, result: object) -> None:
        seen.append((ctx.input, result))

    saga = Saga(
        "s",
        [
            Step("a", lambda ctx: (1, {2}), undo),
            Step("b", Recorder().action("b", fail=-1)),
        ],
        codec=PickleCodec(),
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError):
        saga.run(("in", 1), saga_id="p")

    assert seen == [(("in", 1), (1, {2}))]
    assert saga.journal.load("p").records[0].payload == pickle.dumps(("in", 1)).hex()


def test_later_steps_see_results_as_the_journal_reads_them_back() -> None:
    seen: list[object] = []

    def b(ctx: SagaContext) -> None:
        seen.append(ctx.results["a"])

    outcome = Saga("s", [Step("a", lambda ctx: (1, 2)), Step("b", b)]).run()

    assert seen == [[1, 2]]
    assert outcome.results["a"] == [1, 2]


def test_saga_failed_error_survives_pickling() -> None:
    import pickle

    error = SagaFailedError(
        "m",
        [BoomError("x"), OSError("y")],
        saga_id="s",
        status=SagaStatus.STUCK,
        failed_step="b",
        compensated=["a"],
        not_compensated=["c"],
    )

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.saga_id, copy.status, copy.failed_step) == ("s", SagaStatus.STUCK, "b")
    assert (copy.compensated, copy.not_compensated) == (("a",), ("c",))
    assert [str(e) for e in copy.exceptions] == ["x", "y"]


async def test_async_step_past_its_timeout_fails_and_is_compensated() -> None:
    calls: list[str] = []

    async def hang(ctx: SagaContext) -> None:
        calls.append(f"hang {ctx.attempt}")
        await asyncio.Event().wait()

    saga = Saga(
        "s",
        [
            Step("a", lambda ctx: 1, lambda ctx, r: calls.append("undo a")),
            Step(
                "b",
                hang,
                timeout=0.01,
                retry=Retry(
                    on=TimeoutError, attempts=2, backoff=constant(0), clock=FakeClock()
                ),
            ),
        ],
        compensation_retry=None,
    )

    with pytest.raises(SagaFailedError) as caught:
        await saga.arun()

    assert calls == ["hang 1", "hang 2", "undo a"]
    assert isinstance(caught.value.error, CallTimeoutError)
    assert caught.value.error.timeout == 0.01


def test_sync_run_refuses_step_timeouts() -> None:
    saga = Saga("s", [Step("a", lambda ctx: 1, timeout=1.0)])

    with pytest.raises(SagaDefinitionError, match="only async steps can be timed out"):
        saga.run()
    with pytest.raises(ConfigurationError, match="timeout"):
        Step("a", print, timeout=0)
