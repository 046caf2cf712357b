"""
OpenTelemetry metrics and span events for every `recovery` strategy.

`instrument()` adds one process-wide event listener. Each event updates the
metrics of the catalog (see docs/telemetry.md) through a meter named
``recovery``, and, when a span is recording in the current context, is added
to that span as a span event named after the event's `kind`, its fields as
attributes. Events never carry call arguments, so neither do span events.

Needs the ``otel`` extra (``opentelemetry-api``); the SDK or an exporter is
the application's choice.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..events import Event
from ._catalog import METRICS, Metric, Sink, metric
from ._recorder import GaugeTable, Instrumentation

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    _Callback = Callable[[CallbackOptions], Iterable[Observation]]

__all__ = ["Instrumentation", "instrument"]

# Attribute dicts are cached per label tuple; past this many per metric the
# labels are too varied to be worth remembering.
_CACHE_LIMIT = 4096
# Span event attributes longer than this are cut: an event field is a name,
# a count or an error type, never a payload.
_TEXT_LIMIT = 1024

_providers: set[int] = set()
_providers_lock = threading.Lock()


def instrument(
    meter_provider: MeterProvider | None = None, *, span_events: bool = True
) -> Instrumentation:
    """
    Record every strategy's events as OpenTelemetry metrics and span events.

    Args:
        meter_provider: where the metrics go; the global provider by default.
        span_events: whether to add events to the current recording span.

    Raises:
        ImportError: when opentelemetry-api is not installed.
        ConfigurationError: when this provider is already instrumented.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise ImportError(
            "recovery.telemetry.otel needs the otel extra: pip install 'recovery[otel]'"
        ) from exc

    provider = meter_provider or metrics.get_meter_provider()
    with _providers_lock:
        if id(provider) in _providers:
            raise ConfigurationError(
                f"meter_provider {provider!r} is already instrumented; call "
                "uninstrument() on its Instrumentation first"
            )
        _providers.add(id(provider))

    meter = provider.get_meter("recovery")
    gauges = GaugeTable()
    on_event = _span_recorder(trace.get_current_span) if span_events else None
    link = Instrumentation(
        lambda m: _sink(meter, m, gauges),
        gauges,
        on_event=on_event,
        on_close=lambda: _forget(provider),
    )
    _observe(meter, link)

    return link


def _forget(provider: MeterProvider) -> None:
    with _providers_lock:
        _providers.discard(id(provider))


def _sink(meter: Meter, spec: Metric, gauges: GaugeTable) -> Sink:
    """
    Return the sink that records measurements of *spec* through *meter*.
    """
    if spec.instrument == "gauge":
        return gauges.sink(spec)

    record = (
        meter.create_counter(spec.name, spec.unit, spec.description).add
        if spec.instrument == "counter"
        else meter.create_histogram(
            spec.name,
            spec.unit,
            spec.description,
            explicit_bucket_boundaries_advisory=spec.buckets,
        ).record
    )
    names = spec.attributes
    cache: dict[tuple[str, ...], dict[str, AttributeValue]] = {}

    def sink(value: float | None, labels: tuple[str, ...]) -> None:
        if value is None:
            return
        attributes = cache.get(labels)
        if attributes is None:
            attributes = dict(zip(names, labels, strict=True))
            if len(cache) < _CACHE_LIMIT:
                cache[labels] = attributes
        record(value, attributes)

    return sink


def _observe(meter: Meter, link: Instrumentation) -> None:
    """
    Create the observable instruments: every gauge, and tracked breakers' calls.
    """
    from opentelemetry.metrics import Observation

    def gauge_callback(spec: Metric) -> _Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if spec.name == "recovery.breaker.state":
                link.read_breakers()
            if not link.active:
                return []
            return [
                Observation(value, dict(zip(spec.attributes, labels, strict=True)))
                for labels, value in link.gauges.series(spec)
            ]

        return observe

    for spec in METRICS:
        if spec.instrument == "gauge":
            meter.create_observable_gauge(
                spec.name, [gauge_callback(spec)], spec.unit, spec.description
            )

    calls = metric("recovery.breaker.calls")

    def observe_calls(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {"breaker": reading.name, "outcome": outcome})
            for reading in link.read_breakers()
            for outcome, count in reading.calls.items()
        ]

    meter.create_observable_counter(
        calls.name, [observe_calls], calls.unit, calls.description
    )


def _span_recorder(current_span: Callable[[], Span]) -> Callable[[Event], None]:
    """
    Return the listener that adds each event to the current recording span.
    """

    def record(event: Event) -> None:
        span = current_span()
        if span.is_recording():
            span.add_event(event.kind, attributes=_span_attributes(event))

    return record


def _span_attributes(event: Event) -> dict[str, AttributeValue]:
    """
    Return *event*'s fields as span attributes: None left out, the rest safe.
    """
    attributes: dict[str, AttributeValue] = {}
    for name, value in event.fields().items():
        converted = _attribute(value)
        if converted is not None:
            attributes[name] = converted
    return attributes


def _attribute(value: object) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:_TEXT_LIMIT]
    if isinstance(value, enum.Enum):
        return _attribute(value.value)
    if isinstance(value, tuple | list) and all(isinstance(x, str) for x in value):
        return [x[:_TEXT_LIMIT] for x in value]
    return _text(value)


def _text(value: object) -> str:
    # A field of an unexpected type must not break the call being observed.
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - any failure of str() gets the type name
        text = f"<{type(value).__qualname__}>"
    return text[:_TEXT_LIMIT]
