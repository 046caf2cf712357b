"""
Read metric values back from the real in-memory readers of both SDKs.

Each helper takes the catalog's dotted name and the attributes of one
series; attributes a metric has but the caller leaves out default to the
empty string (``pipeline`` outside a pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
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

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        """
        Return every series of *name*, by label values in catalog order.
        """
        return self.all_series().get(name, {})

    def all_series(self) -> dict[str, dict[tuple[str, ...], float]]:
        """
        Return the series of every metric, from one collection.
        """
        specs = {m.prometheus_sample: m for m in METRICS}
        found: dict[str, dict[tuple[str, ...], float]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                spec = specs.get(sample.name)
                if spec is not None:
                    key = tuple(sample.labels[a] for a in spec.attributes)
                    found.setdefault(spec.name, {})[key] = sample.value
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

    def _points(self, name: str) -> list[NumberDataPoint]:
        return self._collect().get(name, [])

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        """
        Return every series of counter or gauge *name*, by label values.
        """
        return self.all_series().get(name, {})

    def all_series(self) -> dict[str, dict[tuple[str, ...], float]]:
        """
        Return the series of every metric, from one collection.
        """
        found: dict[str, dict[tuple[str, ...], float]] = {}
        for name, points in self._collect().items():
            spec = metric(name)
            for point in points:
                attributes = dict(point.attributes or {})
                key = tuple(str(attributes[a]) for a in spec.attributes)
                found.setdefault(name, {})[key] = point.value
        return found

    def _collect(self) -> dict[str, list[NumberDataPoint]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[NumberDataPoint]] = {}
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

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.tracer_provider.shutdown()
