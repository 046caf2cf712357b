"""
Prometheus metrics of prometheus-client for each catalog entry.

Imported only once prometheus-client is known to be installed. Counters and
gauges are the client's own, so they work in its multiprocess mode too; the
calls of tracked breakers, read from the breakers at each scrape, come from
a small custom collector that also yields the breaker state gauge, after
refreshing it from those readings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ._catalog import Metric as Spec
from ._catalog import Sink, metric
from ._recorder import Instrumentation

__all__ = ["NativeMetrics", "TrackedCollector"]

# Children are cached per label tuple; past this many per metric the labels
# are too varied to be worth remembering.
_CACHE_LIMIT = 4096
_CALLS = metric("recovery.breaker.calls")
_STATE = "recovery.breaker.state"


class NativeMetrics:
    """
    The client's metric for every catalog entry, created on demand.

    `collectors` lists what to register; the breaker state gauge is left
    out, as the `TrackedCollector` yields it.
    """

    def __init__(self) -> None:
        self.collectors: list[Collector] = []
        self.state: Gauge | None = None

    def sink(self, spec: Spec) -> Sink:
        """
        Return the sink that records measurements of *spec* in a new metric.
        """
        name, doc, labels = spec.prometheus_name, spec.description, spec.attributes
        if spec.instrument == "counter":
            counter = Counter(name, doc, labels, registry=None)
            self.collectors.append(counter)
            return _cached(lambda values: counter.labels(*values).inc, None)

        gauge = Gauge(name, doc, labels, registry=None)
        if spec.name == _STATE:
            self.state = gauge
        else:
            self.collectors.append(gauge)
        return _cached(lambda values: gauge.labels(*values).set, gauge)


def _cached(
    bind: Callable[[tuple[str, ...]], Callable[[float], None]], gauge: Gauge | None
) -> Sink:
    """
    Return a sink recording through `bind(labels)`, remembering each child.

    For a gauge, a value of None removes the series.
    """
    # Looking a child up by its labels costs more than updating it.
    cache: dict[tuple[str, ...], Callable[[float], None]] = {}

    def sink(value: float | None, labels: tuple[str, ...]) -> None:
        if value is None:
            if gauge is not None:
                cache.pop(labels, None)
                _remove_quietly(gauge, labels)
            return
        record = cache.get(labels)
        if record is None:
            record = bind(labels)
            if len(cache) < _CACHE_LIMIT:
                cache[labels] = record
        record(value)

    return sink


def _remove_quietly(gauge: Gauge, labels: tuple[str, ...]) -> None:
    # Removing a series that was never set is not an error here.
    try:
        gauge.remove(*labels)
    except KeyError:
        return


class TrackedCollector(Collector):
    """
    Yield the breaker state gauge and the calls of tracked breakers.

    Tracked breakers are read first, so that their state gauge is current.
    """

    def __init__(self, link: Instrumentation, state: Gauge) -> None:
        self._link = link
        self._state = state

    def describe(self) -> Iterable[Metric]:
        """
        Return the families without samples, so registering reads no breaker.
        """
        return [*self._state.describe(), _calls_family()]

    def collect(self) -> Iterable[Metric]:
        """
        Return the state gauge and the tracked breakers' call counters.
        """
        readings = self._link.read_breakers()
        calls = _calls_family()
        for reading in readings:
            for outcome, count in reading.calls.items():
                calls.add_metric([reading.name, outcome], count)

        return [*self._state.collect(), calls]


def _calls_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        _CALLS.prometheus_name, _CALLS.description, labels=_CALLS.attributes
    )
