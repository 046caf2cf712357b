"""
Metrics for every strategy, through OpenTelemetry or Prometheus.

Turn it on once, at start-up, with the backend you use::

    from recovery.telemetry import otel
    otel.instrument()               # needs recovery[otel]

    from recovery.telemetry import prometheus
    prometheus.instrument()         # needs recovery[prometheus]

Both export the same metrics, listed in `METRICS` and in docs/telemetry.md,
derived from the events the strategies emit. This package imports neither
backend; each adapter imports its own when `instrument()` is called.
"""

from __future__ import annotations

from ._catalog import BREAKER_STATE_CODES, METRICS, Metric
from ._recorder import Instrumentation

__all__ = ["BREAKER_STATE_CODES", "METRICS", "Instrumentation", "Metric"]
