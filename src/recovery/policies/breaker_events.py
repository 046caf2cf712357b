"""
The events a `CircuitBreaker` emits.

Every change of state is a `BreakerStateChanged` subclass, so one listener
checking ``isinstance(event, BreakerStateChanged)`` sees them all. Levels
follow the house rules: a state change that hurts callers is a WARNING, a
recovery is INFO, and what can happen on every call (a rejection) is DEBUG.
They log on the ``recovery.policies.breaker`` logger.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

from ..events import Event
from .breaker_core import RESET_REASON, BreakerState, Transition

__all__ = [
    "BreakerClosed",
    "BreakerDisabled",
    "BreakerForcedOpen",
    "BreakerHalfOpened",
    "BreakerOpened",
    "BreakerReset",
    "BreakerStateChanged",
    "BreakerStoreRestored",
    "BreakerStoreUnavailable",
    "CallRejected",
    "transition_event",
]

logger = logging.getLogger("recovery.policies.breaker")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStateChanged(Event):
    """
    A breaker moved from `previous` to `state`; `reason` says why.
    """

    previous: BreakerState
    state: BreakerState
    reason: str

    kind: ClassVar[str] = "breaker_state_changed"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "circuit %r is now %s (%s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "state", "reason")
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerOpened(BreakerStateChanged):
    """
    The breaker tripped: calls fail fast for `retry_after` seconds.
    """

    retry_after: float

    kind: ClassVar[str] = "breaker_opened"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "circuit %r opened (%s); next trial in %.3f s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "reason", "retry_after")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerHalfOpened(BreakerStateChanged):
    """
    The open duration passed: trial calls may now run.
    """

    kind: ClassVar[str] = "breaker_half_opened"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "circuit %r is half-open: admitting trial calls"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerClosed(BreakerStateChanged):
    """
    Trial calls succeeded: the breaker lets calls through again.
    """

    kind: ClassVar[str] = "breaker_closed"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "circuit %r closed (%s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "reason")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerForcedOpen(BreakerStateChanged):
    """
    An operator forced the breaker open: every call is rejected until reset.
    """

    kind: ClassVar[str] = "breaker_forced_open"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "circuit %r forced open by an operator"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerDisabled(BreakerStateChanged):
    """
    An operator disabled the breaker: every call passes and nothing is judged.
    """

    kind: ClassVar[str] = "breaker_disabled"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "circuit %r disabled by an operator"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerReset(BreakerStateChanged):
    """
    An operator reset the breaker to closed, with a fresh window.
    """

    kind: ClassVar[str] = "breaker_reset"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "circuit %r reset to closed by an operator"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallRejected(Event):
    """
    A call was refused without running; `retry_after` is None when unknown.
    """

    state: BreakerState
    retry_after: float | None

    kind: ClassVar[str] = "breaker_call_rejected"
    level: ClassVar[int] = logging.DEBUG
    message: ClassVar[str] = "circuit %r rejected a call (%s)"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "state")
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStoreUnavailable(Event):
    """
    The shared store failed; the breaker uses `fallback` until it returns.
    """

    store: str
    error: str
    fallback: str

    kind: ClassVar[str] = "breaker_store_unavailable"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "circuit %r cannot reach its store %s (%s); using %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "store", "error", "fallback")
    logger: ClassVar[logging.Logger] = logger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStoreRestored(Event):
    """
    The shared store answers again; the breaker uses the shared state again.
    """

    store: str

    kind: ClassVar[str] = "breaker_store_restored"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "circuit %r reattached to its store %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "store")
    logger: ClassVar[logging.Logger] = logger


def transition_event(name: str, transition: Transition) -> BreakerStateChanged:
    """
    Return the event that reports *transition* of breaker *name*.
    """
    previous, state, reason = transition.previous, transition.state, transition.reason
    if state is BreakerState.OPEN:
        return BreakerOpened(
            source=name,
            previous=previous,
            state=state,
            reason=reason,
            retry_after=transition.retry_after or 0.0,
        )
    if state is BreakerState.CLOSED and reason == RESET_REASON:
        cls: type[BreakerStateChanged] = BreakerReset
    else:
        cls = _EVENT_FOR_STATE[state]
    return cls(source=name, previous=previous, state=state, reason=reason)


_EVENT_FOR_STATE: dict[BreakerState, type[BreakerStateChanged]] = {
    BreakerState.HALF_OPEN: BreakerHalfOpened,
    BreakerState.CLOSED: BreakerClosed,
    BreakerState.FORCED_OPEN: BreakerForcedOpen,
    BreakerState.DISABLED: BreakerDisabled,
}
