"""
A worker process for the Prometheus multiprocess test: one retried call.

Run as ``python multiprocess_worker.py DIR NAME``; the client's multiprocess
mode writes the worker's metrics under DIR.
"""

from __future__ import annotations

import os
import sys

os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]

from prometheus_client import CollectorRegistry

from recovery.policies.backoff import constant
from recovery.policies.retry import Retry
from recovery.telemetry import prometheus
from recovery.testing import FakeClock

failures = [ConnectionError("refused")]


def flaky() -> str:
    if failures:
        raise failures.pop()
    return "ok"


with prometheus.instrument(CollectorRegistry()):
    Retry(backoff=constant(0.25), clock=FakeClock(), name=sys.argv[2]).call(flaky)
