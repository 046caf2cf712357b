"""
The Prometheus collector of gauges and tracked breakers' call counters.

Imported only once prometheus-client is known to be installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._catalog import METRICS, metric
from ._recorder import GaugeTable, Instrumentation

__all__ = ["StateCollector"]

_GAUGES = tuple(spec for spec in METRICS if spec.instrument == "gauge")
_CALLS = metric("recovery.breaker.calls")


class StateCollector(Collector):
    """
    Yield every gauge of the catalog and the calls of tracked breakers.

    Tracked breakers are read first, so that their state gauge is current.
    """

    def __init__(self, gauges: GaugeTable) -> None:
        self._gauges = gauges
        self.link: Instrumentation | None = None

    def describe(self) -> Iterable[Metric]:
        """
        Return the families without samples, so registering reads no breaker.
        """
        return self._families(read=False)

    def collect(self) -> Iterable[Metric]:
        """
        Return the families with their current samples.
        """
        return self._families(read=True)

    def _families(self, *, read: bool) -> list[Metric]:
        readings = self.link.read_breakers() if read and self.link else []
        families: list[Metric] = []
        for spec in _GAUGES:
            family = GaugeMetricFamily(
                spec.prometheus_name, spec.description, labels=spec.attributes
            )
            if read:
                for labels, value in self._gauges.series(spec):
                    family.add_metric(labels, value)
            families.append(family)

        calls = CounterMetricFamily(
            _CALLS.prometheus_name, _CALLS.description, labels=_CALLS.attributes
        )
        for reading in readings:
            for outcome, count in reading.calls.items():
                calls.add_metric([reading.name, outcome], count)
        families.append(calls)

        return families
