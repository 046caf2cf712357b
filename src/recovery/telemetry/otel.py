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
from ._catalog import METRICS, Metric
from ._recorder import Instrumentation

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

# Tracked breakers are read for these two metrics, at each collection.
_READ_BREAKERS = frozenset({"recovery.breaker.state", "recovery.breaker.calls"})

# Instrumented providers by id; holding them keeps their ids from reuse.
_providers: dict[int, MeterProvider] = {}
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

    provider = (
        metrics.get_meter_provider() if meter_provider is None else meter_provider
    )
    with _providers_lock:
        if id(provider) in _providers:
            raise ConfigurationError(
                f"meter_provider {provider!r} is already instrumented; call "
                "uninstrument() on its Instrumentation first"
            )
        _providers[id(provider)] = provider

    meter = provider.get_meter("recovery")
    on_event = _span_recorder(trace.get_current_span) if span_events else None
    link = Instrumentation(on_event=on_event, on_close=lambda: _forget(provider))
    _observe(meter, link)

    return link


def _forget(provider: MeterProvider) -> None:
    with _providers_lock:
        _providers.pop(id(provider), None)


def _observe(meter: Meter, link: Instrumentation) -> None:
    """
    Create the observable counters and gauges that read the tables.

    Observing at collection, rather than recording each event through the
    SDK, costs a dict update per event instead of the SDK's validation and
    hashing of every attribute set.
    """
    for spec in METRICS:
        create = (
            meter.create_observable_counter
            if spec.instrument == "counter"
            else meter.create_observable_gauge
        )
        create(spec.name, [_observer(link, spec)], spec.unit, spec.description)


def _observer(link: Instrumentation, spec: Metric) -> _Callback:
    """
    Return the callback reporting every series of *spec*.
    """
    from opentelemetry.metrics import Observation

    names = spec.attributes
    cache: dict[tuple[str, ...], dict[str, AttributeValue]] = {}

    def attributes(labels: tuple[str, ...]) -> dict[str, AttributeValue]:
        found = cache.get(labels)
        if found is None:
            found = dict(zip(names, labels, strict=True))
            if len(cache) < _CACHE_LIMIT:
                cache[labels] = found
        return found

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        readings = []
        if spec.name in _READ_BREAKERS:
            readings = link.read_breakers()
        if not link.active:
            return []
        if spec.name == "recovery.breaker.calls":
            return [
                Observation(count, attributes((reading.name, outcome)))
                for reading in readings
                for outcome, count in reading.calls.items()
            ]
        return [
            Observation(value, attributes(labels))
            for labels, value in link.tables.values(spec)
        ]

    return observe


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
