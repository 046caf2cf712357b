"""
A worker process for the shared-store tests: hammer one limiter, report.

Run as ``python limiter_worker.py sqlite|redis TARGET NAME RATE CAPACITY``.
Once imported and connected it prints ``ready``, then reads one line
``START_AT DURATION`` from stdin, waits until monotonic time START_AT,
calls `try_acquire` until START_AT + DURATION, and prints a JSON line with
the number admitted and the monotonic times of the first and last checks.
"""

from __future__ import annotations

import json
import sys
import time

from recovery.policies.ratelimit import LimiterStore, RateLimiter
from recovery.policies.ratelimit_stores import RedisLimiterStore, SqliteLimiterStore


def main() -> None:
    kind, target, name, rate, capacity = sys.argv[1:]
    store: LimiterStore = (
        SqliteLimiterStore(target) if kind == "sqlite" else RedisLimiterStore(target)
    )
    limiter = RateLimiter(
        float(rate),
        capacity=int(capacity),
        store=store,
        name=name,
        on_store_error="raise",
    )
    print("ready", flush=True)
    start_at, duration = (float(x) for x in sys.stdin.readline().split())
    end = start_at + duration
    while time.monotonic() < start_at:
        time.sleep(0.0005)

    admitted = checks = 0
    first = time.monotonic()
    while time.monotonic() < end:
        admitted += limiter.try_acquire().allowed
        checks += 1
    last = time.monotonic()
    report = {"admitted": admitted, "checks": checks, "first": first, "last": last}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
