"""
Prometheus metrics for every `recovery` strategy, through prometheus-client.

`instrument()` adds one process-wide event listener that updates the
catalog's metrics (see docs/telemetry.md) in a `CollectorRegistry`: dots
become underscores, units are appended (``_seconds``, ``_bytes``) and
counters end in ``_total``, so ``recovery.retry.attempts`` is scraped as
``recovery_retry_attempts_total``. Serving the registry (``start_http_server``,
a WSGI or ASGI app) is the application's choice.

Needs the ``prometheus`` extra (``prometheus-client``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ._catalog import Metric, Sink
from ._recorder import GaugeTable, Instrumentation

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

__all__ = ["Instrumentation", "instrument"]

# Label children are cached per label tuple; past this many per metric the
# labels are too varied to be worth remembering.
_CACHE_LIMIT = 4096


def instrument(registry: CollectorRegistry | None = None) -> Instrumentation:
    """
    Record every strategy's events as Prometheus metrics in *registry*.

    Args:
        registry: where the metrics are registered; prometheus-client's
            default `REGISTRY` when None.

    Raises:
        ImportError: when prometheus-client is not installed.
        ConfigurationError: when the registry already holds these metrics.
    """
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(
            "recovery.telemetry.prometheus needs the prometheus extra: "
            "pip install 'recovery[prometheus]'"
        ) from exc
    from ._prometheus_state import StateCollector

    target = prometheus_client.REGISTRY if registry is None else registry
    gauges = GaugeTable()
    collectors: list[Collector] = []
    registered: list[Collector] = []

    def close() -> None:
        for collector in registered:
            target.unregister(collector)

    state = StateCollector(gauges)
    link = Instrumentation(
        lambda spec: _sink(spec, gauges, collectors), gauges, on_close=close
    )
    state.link = link
    try:
        for collector in (*collectors, state):
            target.register(collector)
            registered.append(collector)
    except ValueError as exc:
        link.uninstrument()
        raise ConfigurationError(
            f"registry {target!r} already holds recovery's metrics ({exc}); call "
            "uninstrument() on the earlier Instrumentation first"
        ) from exc

    return link


def _sink(spec: Metric, gauges: GaugeTable, collectors: list[Collector]) -> Sink:
    """
    Return the sink that records measurements of *spec*, creating its metric.
    """
    from prometheus_client import Counter, Histogram

    if spec.instrument == "gauge":
        return gauges.sink(spec)

    name, doc, labels = spec.prometheus_name, spec.description, spec.attributes
    if spec.instrument == "counter":
        counter = Counter(name, doc, labels, registry=None)
        collectors.append(counter)
        return _cached(lambda values: counter.labels(*values).inc)

    histogram = Histogram(name, doc, labels, registry=None, buckets=spec.buckets)
    collectors.append(histogram)
    return _cached(lambda values: histogram.labels(*values).observe)


def _cached(bind: Callable[[tuple[str, ...]], Callable[[float], None]]) -> Sink:
    """
    Return a sink that records through `bind(labels)`, remembering each child.
    """
    # Looking a child up by its labels costs more than updating it.
    cache: dict[tuple[str, ...], Callable[[float], None]] = {}

    def sink(value: float | None, labels: tuple[str, ...]) -> None:
        if value is None:
            return
        record = cache.get(labels)
        if record is None:
            record = bind(labels)
            if len(cache) < _CACHE_LIMIT:
                cache[labels] = record
        record(value)

    return sink
