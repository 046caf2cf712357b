"""
Selection cost of the service registry, per call, with cached health.

What is timed (one process, health already known, no I/O on the path):

- `registry.endpoint("orders")` with each balancer, over 10 and 1,000
  endpoints; the shared Redis registry's lookup (served from its local copy
  between revalidations); `with registry.use("orders")` (pick, count the
  outstanding call, report success); the slow paths: `avoid=` and a
  fail-over to a second service.
- Floors sampled in the same rounds: `next()` on an `itertools.cycle` and
  `random.choice` over a tuple (what a hand-rolled pick costs with no health
  at all), and a naive pick that filters healthy endpoints on every call.

No Python resilience library offers endpoint selection, so the floors are
the comparison. Run: python benchmarks/bench_discovery.py [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import platform
import random
import sys
import uuid
from pathlib import Path

from harness import Scenario, format_table, run, summarise

from recovery.discovery import (
    Endpoint,
    PowerOfTwoChoices,
    ServiceRegistry,
    WeightedRandom,
)
from recovery.discovery.redis_registry import RedisServiceRegistry

TARGET_NS = 2_000


def addresses(count: int) -> list[str]:
    return [f"10.0.{i // 250}.{i % 250}:8080" for i in range(count)]


def registry_with(count: int, **settings: object) -> ServiceRegistry:
    registry = ServiceRegistry()
    registry.register("orders", addresses(count), **settings)  # type: ignore[arg-type]
    return registry


def naive_pick() -> functools.partial[Endpoint]:
    endpoints = [Endpoint(a) for a in addresses(10)]
    counter = itertools.count()

    def pick() -> Endpoint:
        healthy = [ep for ep in endpoints if ep.healthy]
        return healthy[next(counter) % len(healthy)]

    return functools.partial(pick)


def use_once(registry: ServiceRegistry) -> functools.partial[None]:
    def call() -> None:
        with registry.use("orders"):
            pass

    return functools.partial(call)


def redis_scenario() -> tuple[list[Scenario], RedisServiceRegistry | None]:
    try:
        shared = RedisServiceRegistry(
            "redis://127.0.0.1:6379/0",
            prefix=f"bench-{uuid.uuid4().hex[:8]}",
            refresh_interval=3600,
            watch=False,
        )
        shared.register("orders", addresses(10))
    except Exception as exc:
        sys.stderr.write(f"skipping the Redis row: {exc}\n")
        return [], None

    fn = functools.partial(shared.endpoint, "orders")
    return [Scenario("RedisServiceRegistry.endpoint(), 10 endpoints", fn)], shared


def scenarios() -> list[Scenario]:
    rng = random.Random(1)
    endpoints10 = tuple(Endpoint(a) for a in addresses(10))

    failover = ServiceRegistry()
    (down,) = failover.register("orders", ["10.9.9.9:80"], fallback_services=["dr"])
    failover.register("dr", addresses(10))
    failover.report_check(down, False)

    rr10 = registry_with(10)
    avoided = rr10.endpoints("orders")[0]

    return [
        Scenario(
            "FLOOR next(itertools.cycle)",
            functools.partial(next, itertools.cycle(endpoints10)),
        ),
        Scenario("FLOOR random.choice", functools.partial(rng.choice, endpoints10)),
        Scenario("naive: filter healthy on every call, 10", naive_pick()),
        Scenario(
            "endpoint(), round robin, 10", functools.partial(rr10.endpoint, "orders")
        ),
        Scenario(
            "endpoint(), round robin, 1,000",
            functools.partial(registry_with(1_000).endpoint, "orders"),
        ),
        Scenario(
            "endpoint(), weighted random, 10",
            functools.partial(
                registry_with(10, balancer=WeightedRandom()).endpoint, "orders"
            ),
        ),
        Scenario(
            "endpoint(), power of two choices, 10",
            functools.partial(
                registry_with(10, balancer=PowerOfTwoChoices()).endpoint, "orders"
            ),
        ),
        Scenario("with use(): pick + count + report, 10", use_once(registry_with(10))),
        Scenario(
            "endpoint(avoid=ep), 10 (slow path)",
            functools.partial(rr10.endpoint, "orders", avoid=avoided),
        ),
        Scenario(
            "endpoint() failing over to a 2nd service (slow path)",
            functools.partial(failover.endpoint, "orders"),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "discovery.md"
    )
    args = parser.parse_args()

    # Events are not on the lookup path; silence them so set-up logs nothing.
    logging.getLogger("recovery").setLevel(logging.ERROR)
    extra, shared = redis_scenario()
    measured = run([*scenarios(), *extra], rounds=args.rounds)
    results = summarise(measured, {"cycle": lambda sc: "FLOOR next(itertools.cycle)"})
    if shared is not None:
        shared._redis.delete(*shared._redis.keys(f"{shared._prefix}:*"))
        shared.close()

    plain = [r for r in results if r.name.startswith("endpoint(),")]
    worst = max(plain, key=lambda r: r.median_ns)
    verdict = "met" if worst.median_ns < TARGET_NS else "NOT met"
    text = "\n".join(
        [
            "## Service discovery",
            "",
            f"Python {platform.python_version()} on {platform.machine()}, "
            f"{args.rounds} shuffled rounds, ~10 ms per sample; ratios are medians "
            "of per-round paired ratios against `next()` on an `itertools.cycle`. "
            "Run: `python benchmarks/bench_discovery.py`.",
            "",
            f"Target: under {TARGET_NS:,} ns per `endpoint()` with cached health: "
            f"**{verdict}** (slowest balancer: {worst.median_ns:,.0f} ns, "
            f"{worst.name}).",
            "",
            format_table(results, ["cycle"]),
            "",
            "Every lookup reads one cached tuple of available endpoints and "
            "compares one clock reading with the time that tuple may go stale, "
            "so its cost does not grow with the number of endpoints; health "
            "changes rebuild the tuple under the service's lock. The slow paths "
            "filter or walk the fail-over chain on every call.",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
