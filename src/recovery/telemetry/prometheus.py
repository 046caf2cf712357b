"""
Prometheus metrics for every `recovery` strategy, through prometheus-client.

`instrument()` adds one process-wide event listener that updates the
catalog's metrics (see docs/telemetry.md), as the client's own counters and
gauges, in a `CollectorRegistry`: dots become underscores, units are
appended (``_seconds``, ``_bytes``) and counters end in ``_total``, so
``recovery.retry.attempts`` is scraped as ``recovery_retry_attempts_total``.
Serving the registry (``start_http_server``, a WSGI or ASGI app) is the
application's choice; the client's multiprocess mode works as for any
other metric, except for the calls of tracked breakers.

Needs the ``prometheus`` extra (``prometheus-client``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ._recorder import Instrumentation

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

__all__ = ["Instrumentation", "instrument"]


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
    from ._prometheus_state import NativeMetrics, TrackedCollector

    target = prometheus_client.REGISTRY if registry is None else registry
    native = NativeMetrics()
    registered: list[Collector] = []

    def close() -> None:
        for collector in registered:
            target.unregister(collector)

    link = Instrumentation(sink_for=native.sink, on_close=close)
    assert native.state is not None
    try:
        for collector in (*native.collectors, TrackedCollector(link, native.state)):
            target.register(collector)
            registered.append(collector)
    except ValueError as exc:
        link.uninstrument()
        raise ConfigurationError(
            f"registry {target!r} already holds recovery's metrics ({exc}); call "
            "uninstrument() on the earlier Instrumentation first"
        ) from exc

    return link
