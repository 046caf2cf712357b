"""
In-process aggregation: the current value of every series, read at export.

The listener only adds to these tables (a lock and a dict update per
measurement); the OpenTelemetry adapter reads them from observable
instruments when its reader collects. That keeps the cost per event far
below the SDK's own per-measurement work (it validates and hashes every
attribute set it is given) and lets a gauge series be removed.
"""

from __future__ import annotations

import threading

from ._catalog import Metric, Sink

__all__ = ["MetricTables"]

Labels = tuple[str, ...]


class MetricTables:
    """
    Counters and gauges by metric name and label values.

    Counters only grow; gauges are set, or removed when given None.
    Thread-safe; readers get copies.
    """

    __slots__ = ("_lock", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}

    def sink(self, metric: Metric) -> Sink:
        """
        Return the function that records measurements of *metric* here.
        """
        lock = self._lock
        with lock:
            series = self._values.setdefault(metric.name, {})

        if metric.instrument == "gauge":

            def set_value(value: float | None, labels: Labels) -> None:
                with lock:
                    if value is None:
                        series.pop(labels, None)
                    else:
                        series[labels] = value

            return set_value

        def add(value: float | None, labels: Labels) -> None:
            if value is not None:
                with lock:
                    series[labels] = series.get(labels, 0) + value

        return add

    def values(self, metric: Metric) -> list[tuple[Labels, float]]:
        """
        Return the (labels, value) pairs of *metric*.
        """
        with self._lock:
            return list(self._values.get(metric.name, {}).items())
