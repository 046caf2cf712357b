"""
Small helpers shared by the breaker tests.
"""

from __future__ import annotations

import contextlib

from recovery.events import Event
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState


class BoomError(Exception):
    """The failure the tests' dependency raises."""


def fail() -> None:
    raise BoomError("down")


def ok() -> int:
    return 42


def fail_times(breaker: CircuitBreaker, n: int) -> None:
    """Record *n* failures through *breaker*, swallowing the expected error."""
    for _ in range(n):
        with contextlib.suppress(BoomError):
            breaker.call(fail)


def succeed_times(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        breaker.call(ok)


class Recorder:
    """A listener that keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read the state through a call, so type checkers do not narrow it."""
    return breaker.state
