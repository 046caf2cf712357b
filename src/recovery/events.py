"""
Typed events: what the strategies report about what they did.

Every strategy emits small frozen dataclasses (`RetryScheduled`,
`BreakerOpened`, ...). Each goes first to the strategy's own listeners, then
to the process-wide listeners added with `add_listener`, and finally to the
standard `logging` module, on the logger of the module that defines the
event and at the event's own level. Events never carry call arguments, so
logging them cannot leak secrets.

A listener that raises is logged at ERROR and ignored: observing a call must
never break it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from ._validation import require_callables

__all__ = [
    "Event",
    "EventEmitter",
    "Listener",
    "add_listener",
    "current_pipeline",
    "pipeline_scope",
    "remove_listener",
]

logger = logging.getLogger(__name__)

# The package adds no handler of its own except this one, so that nothing
# is printed through logging's last-resort handler unless the user asks.
logging.getLogger("recovery").addHandler(logging.NullHandler())


_pipeline: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "recovery_pipeline", default=None
)


def current_pipeline() -> str | None:
    """
    Return the name of the pipeline running the current call, if any.
    """
    return _pipeline.get()


@contextmanager
def pipeline_scope(name: str) -> Iterator[None]:
    """
    Mark the calls made inside this block as running in pipeline *name*.
    """
    token = _pipeline.set(name)
    try:
        yield
    finally:
        _pipeline.reset(token)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """
    Something a strategy did; subclasses name the fact in the past tense.

    `source` is the name of the strategy instance, and `pipeline` the name of
    the pipeline it ran in, if any (read from `pipeline_scope` by default).
    """

    source: str
    pipeline: str | None = dataclasses.field(default_factory=current_pipeline)

    # The name used in logs (`extra["recovery_event"]`) and metrics.
    kind: ClassVar[str] = "event"
    level: ClassVar[int] = logging.DEBUG
    # %-style message; its arguments are the named fields, in order.
    message: ClassVar[str] = "%s"
    message_fields: ClassVar[tuple[str, ...]] = ("source",)
    # The logger of the module that defines the event, set for each subclass
    # below; a subclass may name another (a strategy's own module, say), and
    # its subclasses then inherit that choice.
    logger: ClassVar[logging.Logger] = logger

    def __init_subclass__(cls) -> None:
        # No super() call: slots=True rebuilds this class, which breaks the
        # zero-argument form, and object's own hook does nothing.
        if "logger" not in cls.__dict__ and cls.logger is Event.logger:
            cls.logger = logging.getLogger(cls.__module__)

    def fields(self) -> dict[str, object]:
        """
        Return the event's fields as a dict, for logs and exporters.
        """
        return {name: getattr(self, name) for name in _field_names(type(self))}

    def log(self) -> None:
        """
        Write the event to its logger, if that logger is enabled at its level.
        """
        if not self.logger.isEnabledFor(self.level):
            return

        args = tuple(getattr(self, name) for name in self.message_fields)
        extra: dict[str, object] = {"recovery_event": self.kind}
        extra.update((f"recovery_{key}", value) for key, value in self.fields().items())
        self.logger.log(self.level, self.message, *args, extra=extra)


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(event_type: type[Event]) -> tuple[str, ...]:
    # dataclasses.fields() rebuilds its answer on every call; events are
    # logged often enough for that to show.
    names = _FIELD_NAMES.get(event_type)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(event_type))
        _FIELD_NAMES[event_type] = names
    return names


Listener = Callable[[Event], object]

_global_listeners: tuple[Listener, ...] = ()
_global_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """
    Send every event of every strategy in this process to *listener*.
    """
    global _global_listeners
    with _global_lock:
        _global_listeners = (*_global_listeners, listener)


def remove_listener(listener: Listener) -> None:
    """
    Stop sending events to *listener*; unknown listeners are ignored.
    """
    global _global_listeners
    with _global_lock:
        _global_listeners = tuple(x for x in _global_listeners if x != listener)


class EventEmitter:
    """
    The dispatch used by one strategy instance: its listeners, then global ones.

    `wants(event_type)` is cheap and lets hot paths skip building an event
    nobody would see. A pipeline binds the emitters of its strategies to
    its name, so their events carry it without any per-call bookkeeping.
    """

    __slots__ = ("_listeners", "pipeline")

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners: tuple[Listener, ...] = require_callables(
            "listeners", listeners
        )
        self.pipeline: str | None = None

    def add(self, listener: Listener) -> None:
        """
        Add a listener for this strategy's events only.
        """
        self._listeners = (*self._listeners, listener)

    def bind_pipeline(self, name: str) -> bool:
        """
        Name the pipeline this strategy runs in; False if bound to another.

        A strategy shared by two pipelines cannot know which one a call came
        through, so such pipelines fall back to `pipeline_scope` per call.
        """
        if self.pipeline is not None and self.pipeline != name:
            return False

        self.pipeline = name
        return True

    def wants(self, event_type: type[Event]) -> bool:
        """
        Return whether an event of this type would reach anyone.
        """
        return bool(
            self._listeners
            or _global_listeners
            or event_type.logger.isEnabledFor(event_type.level)
        )

    def emit(self, event: Event) -> None:
        """
        Deliver *event* to the listeners, then to logging.
        """
        if event.pipeline is None and self.pipeline is not None:
            event = dataclasses.replace(event, pipeline=self.pipeline)

        for listener in (*self._listeners, *_global_listeners):
            try:
                listener(event)
            except Exception:
                logger.exception(
                    "event listener %r raised on %s; the event was still delivered "
                    "to the other listeners",
                    listener,
                    event.kind,
                )

        event.log()
