"""
Read metric values back from the real in-memory readers of both SDKs.

Each helper takes the catalog's dotted name and the attributes of one
series; attributes a metric has but the caller leaves out default to the
empty string (``pipeline`` outside a pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import CollectorRegistry

from recovery.telemetry import METRICS, Instrumentation, otel, prometheus
from recovery.telemetry._catalog import metric


def _labels(name: str, given: dict[str, str]) -> dict[str, str]:
    spec = metric(name)
    unknown = set(given) - set(spec.attributes)
    assert not unknown, f"{name} has no attributes {unknown}"
    return {key: given.get(key, "") for key in spec.attributes}


@dataclass
class Prom:
    """
    A private registry with recovery's metrics registered in it.
    """

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    link: Instrumentation | None = None

    def start(self) -> Prom:
        self.link = prometheus.instrument(self.registry)
        return self

    def value(self, name: str, **labels: str) -> float | None:
        """
        Return the sample of *name* (a counter's total) with these labels.
        """
        sample = metric(name).prometheus_sample
        return self.registry.get_sample_value(sample, _labels(name, labels))

    def histogram(self, name: str, **labels: str) -> tuple[int, float] | None:
        """
        Return the count and sum of histogram *name* with these labels.
        """
        base, wanted = metric(name).prometheus_name, _labels(name, labels)
        count = self.registry.get_sample_value(base + "_count", wanted)
        total = self.registry.get_sample_value(base + "_sum", wanted)
        if count is None or total is None:
            return None
        return int(count), total

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        """
        Return every series of *name*, by label values in catalog order.
        """
        return self.all_series().get(name, {})

    def all_series(self) -> dict[str, dict[tuple[str, ...], float]]:
        """
        Return the series of every metric, from one collection.

        A histogram gives two entries, ``name:count`` and ``name:sum``.
        """
        specs = {}
        for m in METRICS:
            if m.instrument == "histogram":
                specs[m.prometheus_name + "_count"] = (m, m.name + ":count")
                specs[m.prometheus_name + "_sum"] = (m, m.name + ":sum")
            else:
                specs[m.prometheus_sample] = (m, m.name)
        found: dict[str, dict[tuple[str, ...], float]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name in specs:
                    spec, name = specs[sample.name]
                    key = tuple(sample.labels[a] for a in spec.attributes)
                    found.setdefault(name, {})[key] = sample.value
        return found


@dataclass
class Otel:
    """
    A private meter provider and tracer provider, read in memory.
    """

    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    link: Instrumentation | None = None

    def __post_init__(self) -> None:
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = self.tracer_provider.get_tracer("tests")

    def start(self, *, span_events: bool = True) -> Otel:
        self.link = otel.instrument(self.provider, span_events=span_events)
        return self

    def _points(self, name: str) -> list[NumberDataPoint | HistogramDataPoint]:
        return self._collect().get(name, [])

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        """
        Return every series of counter or gauge *name*, by label values.
        """
        return self.all_series().get(name, {})

    def all_series(self) -> dict[str, dict[tuple[str, ...], float]]:
        """
        Return the series of every metric, from one collection.

        A histogram gives two entries, ``name:count`` and ``name:sum``.
        """
        found: dict[str, dict[tuple[str, ...], float]] = {}
        for name, points in self._collect().items():
            spec = metric(name)
            for point in points:
                attributes = dict(point.attributes or {})
                key = tuple(str(attributes[a]) for a in spec.attributes)
                if isinstance(point, NumberDataPoint):
                    found.setdefault(name, {})[key] = point.value
                else:
                    found.setdefault(name + ":count", {})[key] = point.count
                    found.setdefault(name + ":sum", {})[key] = point.sum
        return found

    def _collect(self) -> dict[str, list[NumberDataPoint | HistogramDataPoint]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[NumberDataPoint | HistogramDataPoint]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for each in scope.metrics:
                    points = each.data.data_points
                    found.setdefault(each.name, []).extend(points)  # type: ignore[arg-type]
        return found

    def value(self, name: str, **labels: str) -> float | None:
        """
        Return the value of counter or gauge *name* with these attributes.
        """
        key = tuple(_labels(name, labels).values())
        return self.series(name).get(key)

    def histogram(self, name: str, **labels: str) -> tuple[int, float] | None:
        """
        Return the count and sum of histogram *name* with these attributes.
        """
        wanted = _labels(name, labels)
        for point in self._points(name):
            assert isinstance(point, HistogramDataPoint)
            if dict(point.attributes or {}) == wanted:
                return point.count, point.sum
        return None

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.tracer_provider.shutdown()
