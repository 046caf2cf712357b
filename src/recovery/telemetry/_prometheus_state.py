"""
The Prometheus collector that exports an instrumentation's tables.

Imported only once prometheus-client is known to be installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._catalog import METRICS
from ._catalog import Metric as Spec
from ._recorder import Instrumentation

__all__ = ["TableCollector"]


class TableCollector(Collector):
    """
    Yield every metric of the catalog from the tables of *link*.

    Tracked breakers are read first, so that their state gauge is current.
    """

    def __init__(self, link: Instrumentation) -> None:
        self._link = link

    def describe(self) -> Iterable[Metric]:
        """
        Return the families without samples, so registering reads no breaker.
        """
        return [_family(spec) for spec in METRICS]

    def collect(self) -> Iterable[Metric]:
        """
        Return the families with their current samples.
        """
        link = self._link
        readings = link.read_breakers()
        families: list[Metric] = []
        for spec in METRICS:
            family = _family(spec)
            if spec.name == "recovery.breaker.calls":
                for reading in readings:
                    for outcome, count in reading.calls.items():
                        family.add_metric([reading.name, outcome], count)
            else:
                for labels, value in link.tables.values(spec):
                    family.add_metric(list(labels), value)
            families.append(family)

        return families


def _family(spec: Spec) -> CounterMetricFamily | GaugeMetricFamily:
    name, doc, labels = spec.prometheus_name, spec.description, spec.attributes
    if spec.instrument == "counter":
        return CounterMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, labels=labels)
