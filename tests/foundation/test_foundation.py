"""
The foundation: fake clock, events, errors, hints and the public face.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import time
from typing import ClassVar

import pytest

import recovery
from recovery import events
from recovery.clock import SYSTEM_CLOCK, Clock
from recovery.errors import (
    CallTimeoutError,
    CircuitOpenError,
    ConfigurationError,
    RecoveryError,
    RejectedError,
)
from recovery.policies.hints import hint_seconds
from recovery.policies.retry_events import RetryScheduled
from recovery.testing import FakeClock


class TestFakeClock:
    def test_sleeping_moves_time_at_once(self) -> None:
        clock = FakeClock(start=10)

        clock.sleep(2.5)
        clock.sleep(-1)

        assert clock.now() == 12.5
        assert clock.sleeps == [2.5, 0.0]

    def test_async_sleep_moves_time_and_yields(self) -> None:
        clock = FakeClock()
        order: list[str] = []

        async def sleeper() -> None:
            await clock.asleep(3)
            order.append("sleeper")

        async def other() -> None:
            order.append("other")

        async def main() -> None:
            await asyncio.gather(sleeper(), other())

        asyncio.run(main())

        assert clock.now() == 3
        assert order == ["other", "sleeper"]

    def test_wall_time_moves_with_monotonic_time(self) -> None:
        clock = FakeClock(wall=1000.0)

        clock.advance(5)

        assert clock.time() == 1005.0

    def test_advance_refuses_going_back(self) -> None:
        with pytest.raises(ConfigurationError, match="seconds"):
            FakeClock().advance(-1)

    def test_both_clocks_satisfy_the_protocol(self) -> None:
        assert isinstance(FakeClock(), Clock)
        assert isinstance(SYSTEM_CLOCK, Clock)


class TestSystemClock:
    def test_zero_delays_never_sleep(self, monkeypatch: pytest.MonkeyPatch) -> None:
        slept: list[float] = []
        monkeypatch.setattr(time, "sleep", slept.append)

        SYSTEM_CLOCK.sleep(0)
        SYSTEM_CLOCK.sleep(-2)

        assert slept == []

    def test_monotonic_readings_never_go_back(self) -> None:
        first = SYSTEM_CLOCK.now()

        assert SYSTEM_CLOCK.now() >= first


class TestEvents:
    def test_global_listeners_receive_every_event(self) -> None:
        received: list[events.Event] = []
        events.add_listener(received.append)
        try:
            emitter = events.EventEmitter()
            event = RetryScheduled(
                source="s", attempt=1, delay=0.5, error="E", hinted=False
            )
            emitter.emit(event)
        finally:
            events.remove_listener(received.append)

        emitter.emit(event)
        assert received == [event]

    def test_log_records_carry_the_fields(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="recovery")

        RetryScheduled(source="db", attempt=2, delay=1.5, error="E", hinted=True).log()

        (record,) = caplog.records
        assert record.getMessage() == "db: attempt 2 failed with E; retrying in 1.500 s"
        assert record.name == "recovery.policies.retry"
        assert record.recovery_event == "retry_scheduled"  # type: ignore[attr-defined]
        assert record.recovery_delay == 1.5  # type: ignore[attr-defined]

    def test_wants_reflects_listeners_and_levels(self) -> None:
        logger = logging.getLogger("recovery.policies.retry")
        old = logger.level
        logger.setLevel(logging.ERROR)
        try:
            quiet = events.EventEmitter()
            loud = events.EventEmitter([lambda event: None])

            assert not quiet.wants(RetryScheduled)
            assert loud.wants(RetryScheduled)
        finally:
            logger.setLevel(old)

    def test_events_carry_the_pipeline_name(self) -> None:
        with events.pipeline_scope("checkout"):
            inside = RetryScheduled(
                source="s", attempt=1, delay=0, error="E", hinted=False
            )
        outside = RetryScheduled(
            source="s", attempt=1, delay=0, error="E", hinted=False
        )

        assert (inside.pipeline, outside.pipeline) == ("checkout", None)

    def test_the_package_logger_has_only_a_null_handler(self) -> None:
        handlers = logging.getLogger("recovery").handlers

        assert [type(h) for h in handlers] == [logging.NullHandler]


class TestErrors:
    def test_configuration_errors_are_value_errors(self) -> None:
        assert issubclass(ConfigurationError, ValueError)
        assert issubclass(ConfigurationError, RecoveryError)

    def test_timeouts_are_timeout_errors(self) -> None:
        error = CallTimeoutError("slow", timeout=2.0)

        assert isinstance(error, TimeoutError)
        assert error.timeout == 2.0

    def test_open_circuits_say_when_to_come_back(self) -> None:
        cause = OSError("down")
        error = CircuitOpenError("payments", retry_after=4.25, last_failure=cause)

        assert isinstance(error, RejectedError)
        assert str(error) == "circuit 'payments' is open; next trial in 4.250 s"
        assert (error.name, error.retry_after, error.last_failure) == (
            "payments",
            4.25,
            cause,
        )


class TestHints:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (3, 3.0),
            (0.5, 0.5),
            (0, 0.0),
            ("120", 120.0),
            (" 2.5 ", 2.5),
            (b"7", 7.0),
            (-1, None),
            ("-4", None),
            ("later", None),
            (float("inf"), None),
            (float("nan"), None),
            (None, None),
            (True, None),
            ([1], None),
        ],
    )
    def test_seconds(self, value: object, expected: float | None) -> None:
        assert hint_seconds(value, 0.0) == expected

    def test_http_dates_are_relative_to_now(self) -> None:
        now = 1_700_000_000.0
        future = email.utils.formatdate(now + 90, usegmt=True)
        past = email.utils.formatdate(now - 90, usegmt=True)

        assert hint_seconds(future, now) == 90.0
        assert hint_seconds(past, now) is None
        assert hint_seconds("Tue, 14 Nov 2023 22:14:50", now) is None


def test_the_public_face_lists_exactly_its_public_names() -> None:
    exported = set(recovery.__all__)
    for name in exported:
        getattr(recovery, name)
    public = {
        name
        for name, value in vars(recovery).items()
        if not name.startswith("_") and type(value).__name__ != "module"
    }

    assert public == exported
    assert len(exported) == len(recovery.__all__)
    assert recovery.__all__ == sorted(recovery.__all__)


def test_events_log_on_the_logger_of_their_module() -> None:
    """
    Each event logs on its defining module's logger unless it names one;
    subclasses keep a parent's explicit choice.
    """

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Local(events.Event):
        pass

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Chosen(events.Event):
        logger: ClassVar[logging.Logger] = logging.getLogger("recovery.chosen")

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Child(Chosen):
        pass

    assert Local.logger.name == __name__
    assert (Chosen.logger.name, Child.logger.name) == ("recovery.chosen",) * 2
    assert RetryScheduled.logger.name == "recovery.policies.retry"
