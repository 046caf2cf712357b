"""
The listener both adapters share: events in, measurements out.

An `Instrumentation` adds one process-wide event listener. For each event it
looks up the catalog's rules by `kind` and hands each measurement to the
sink of its metric: the backend's own metric when the adapter provides one
(Prometheus), else the `MetricTables` that the backend reads when it
collects (OpenTelemetry). Breakers passed to `track` are read at collection
too, for their call counters and state.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from .. import events
from ..events import Event
from ._catalog import BREAKER_STATE_CODES, RULES, Metric, Rule, Sink, label_text
from ._tables import MetricTables

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker

__all__ = ["BreakerReading", "Instrumentation", "SinkFactory"]

logger = logging.getLogger(__name__)

# Returns the backend's own sink for a metric, or None to use the tables.
SinkFactory = Callable[[Metric], Sink | None]

# The outcomes of `recovery.breaker.calls`, and the metrics() field of each.
_CALL_FIELDS = (
    ("success", "successful_calls"),
    ("failure", "failed_calls"),
    ("ignored", "ignored_calls"),
    ("rejected", "rejected_calls"),
)


@dataclass(frozen=True, slots=True)
class BreakerReading:
    """
    What one tracked breaker reported at collection: its state and counters.
    """

    name: str
    state: float | None
    calls: Mapping[str, int]


class Instrumentation:
    """
    A live link from the events of every strategy to a metrics backend.

    Made by `recovery.telemetry.otel.instrument` or
    `recovery.telemetry.prometheus.instrument`. `uninstrument()` stops it;
    it is also a context manager that uninstruments on exit. `tables`
    holds the current value of every series, as the backend will read it.
    """

    def __init__(
        self,
        *,
        sink_for: SinkFactory | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.tables = MetricTables()
        self._on_event = on_event
        self._on_close = on_close
        self._breakers: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._active = True

        sinks: dict[str, Sink] = {}
        routes: dict[str, tuple[tuple[Rule, Sink], ...]] = {}
        for kind, rules in RULES.items():
            for rule in rules:
                name = rule.metric.name
                if name not in sinks:
                    own = sink_for(rule.metric) if sink_for is not None else None
                    sinks[name] = own or self.tables.sink(rule.metric)
            routes[kind] = tuple((rule, sinks[rule.metric.name]) for rule in rules)
        self._routes = routes
        self._state_sink = sinks["recovery.breaker.state"]
        events.add_listener(self._listen)

    @property
    def active(self) -> bool:
        """
        Whether events are still being recorded.
        """
        return self._active

    def _listen(self, event: Event) -> None:
        routes = self._routes.get(event.kind)
        if routes is not None:
            for rule, sink in routes:
                found = rule.measure(event)
                if found is not None:
                    sink(found[0], found[1])

        if self._on_event is not None:
            self._on_event(event)

    def track(self, *breakers: CircuitBreaker) -> None:
        """
        Read these breakers at each collection: call counters and state.

        Breakers are held weakly: one that is garbage collected is dropped.
        A breaker on a shared store reports the shared counters, which costs
        a store read per collection.
        """
        with self._lock:
            for breaker in breakers:
                self._breakers.add(breaker)

    def read_breakers(self) -> list[BreakerReading]:
        """
        Read every tracked breaker, and set its state gauge from the reading.
        """
        with self._lock:
            tracked = list(self._breakers) if self._active else []

        readings = []
        for breaker in tracked:
            try:
                metrics = breaker.metrics()
            except Exception:
                logger.exception(
                    "reading breaker %r for telemetry failed; its metrics are "
                    "left out of this collection",
                    breaker.name,
                )
                continue
            # A state without a code keeps whatever the events last set.
            state = BREAKER_STATE_CODES.get(label_text(metrics.state))
            if state is not None:
                self._state_sink(state, (breaker.name,))
            calls = {out: getattr(metrics, field) for out, field in _CALL_FIELDS}
            readings.append(BreakerReading(breaker.name, state, calls))

        return readings

    def uninstrument(self) -> None:
        """
        Stop recording; calling it again does nothing.
        """
        with self._lock:
            if not self._active:
                return
            self._active = False

        events.remove_listener(self._listen)
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()
