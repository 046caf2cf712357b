"""
The events a `Retry` emits, and the per-call statistics record.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import ClassVar

from ..events import Event

__all__ = [
    "AttemptFailed",
    "GaveUp",
    "Recovered",
    "RetryOutcome",
    "RetryScheduled",
    "RetryStatistics",
]

logger = logging.getLogger("recovery.policies.retry")


class RetryOutcome(enum.Enum):
    """
    How one retried call ended, or that it has not ended yet.
    """

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    GAVE_UP = "gave_up"


# Read through a module name: enum lookups on the class are slow in 3.11.
_PENDING = RetryOutcome.PENDING


class RetryStatistics:
    """
    What happened during one call through a `Retry`: a fresh record per call.

    `attempts` counts attempts made so far; `waited` is the sum of the delays
    slept and `delays` each of them in order; `outcome` says how the call
    ended; `started` and `finished` are readings of the policy's clock.

    `started` is the start of the first attempt when the policy has a
    deadline, and always for `call_with_statistics` and the block form.
    Otherwise it is the moment the first attempt failed: reading the clock
    before every call would cost more than the rest of the success path, so
    the first attempt's own duration is then left out of `elapsed`.
    """

    # A plain slotted class: one is built per failing call, and a dataclass
    # with a default factory costs twice as much to create.
    __slots__ = (
        "attempts",
        "delays",
        "finished",
        "give_up_reason",
        "outcome",
        "started",
        "waited",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempts = 1
        self.waited = 0.0
        self.delays: list[float] = []
        self.outcome = _PENDING
        self.finished: float | None = None
        self.give_up_reason: str | None = None

    @property
    def elapsed(self) -> float | None:
        """
        Seconds from `started` to the end of the call, once it has ended.
        """
        return None if self.finished is None else self.finished - self.started

    def __repr__(self) -> str:
        return (
            f"RetryStatistics(attempts={self.attempts}, waited={self.waited!r}, "
            f"outcome={self.outcome.value}, elapsed={self.elapsed!r})"
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFailed(Event):
    """
    An attempt failed with a retryable error or result.
    """

    attempt: int
    error: str
    elapsed: float

    kind: ClassVar[str] = "attempt_failed"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "%s: attempt %d failed with %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "attempt", "error")
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(Event):
    """
    Another attempt will follow after `delay` seconds, exactly as slept.

    `hinted` says the delay came from the error's `retry_after` hint.
    """

    attempt: int
    delay: float
    error: str
    hinted: bool

    kind: ClassVar[str] = "retry_scheduled"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "%s: attempt %d failed with %s; retrying in %.3f s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "attempt", "error", "delay")
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GaveUp(Event):
    """
    The call failed for good; the last attempt's error goes to the caller.
    """

    attempts: int
    elapsed: float
    waited: float
    error: str
    reason: str

    kind: ClassVar[str] = "gave_up"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "%s: gave up after %d attempts over %.3f s (%s): %s"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "attempts",
        "elapsed",
        "reason",
        "error",
    )
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recovered(Event):
    """
    A call succeeded after at least one failed attempt.
    """

    attempts: int
    elapsed: float
    waited: float

    kind: ClassVar[str] = "recovered"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "%s: succeeded on attempt %d after %.3f s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "attempts", "elapsed")
    logger: ClassVar[logging.Logger] = logger
