"""
A worker process for the shared-store tests: hammer one limiter, report.

Run as ``python limiter_worker.py sqlite|redis TARGET NAME RATE CAPACITY
START_AT DURATION``; waits until monotonic time START_AT, calls
`try_acquire` until START_AT + DURATION, and prints a JSON line with the
number admitted and the monotonic times of the first and last checks.
"""

from __future__ import annotations

import json
import sys
import time

from recovery.policies.ratelimit import LimiterStore, RateLimiter
from recovery.policies.ratelimit_stores import RedisLimiterStore, SqliteLimiterStore


def main() -> None:
    kind, target, name, rate, capacity, start_at, duration = sys.argv[1:]
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
    begin = float(start_at)
    end = begin + float(duration)
    while time.monotonic() < begin:
        time.sleep(0.001)

    admitted = checks = 0
    first = time.monotonic()
    while time.monotonic() < end:
        admitted += limiter.try_acquire().allowed
        checks += 1
    last = time.monotonic()
    print(
        json.dumps(
            {"admitted": admitted, "checks": checks, "first": first, "last": last}
        )
    )


if __name__ == "__main__":
    main()
