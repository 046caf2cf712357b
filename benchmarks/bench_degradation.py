"""
Benchmark the success paths of fallbacks and pipelines, and rate limiter checks.

What is measured:

1. The cost of one successful call through a `Fallback`, and through
   pipelines of three stages, against a bare call and a `functools.wraps`
   pass-through wrapper; peers offering the same (pyresilience, hyx) are
   measured in the same run when installed.
2. Rate limiter checks per second: in memory, on SQLite and on Redis.

Method: each variant is calibrated so that one round takes about 20 ms;
rounds are run in a fresh shuffled order each time, and the median round is
kept. Ratios (to the pass-through wrapper) come first, then nanoseconds.

Run: ``.venv/bin/python benchmarks/bench_degradation.py [--quick]``; the
results are written to benchmarks/results/degradation.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from recovery.policies.breaker import CircuitBreaker
from recovery.policies.bulkhead import Bulkhead
from recovery.policies.fallback import Fallback, LastGood
from recovery.policies.pipeline import Pipeline
from recovery.policies.ratelimit import RateLimiter
from recovery.policies.ratelimit_stores import RedisLimiterStore, SqliteLimiterStore
from recovery.policies.retry import Retry
from recovery.policies.timeout import Timeout

RESULTS = Path(__file__).parent / "results" / "degradation.md"
ROUND_SECONDS = 0.02


def work(x: int) -> int:
    return x


async def awork(x: int) -> int:
    return x


def passthrough(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def apassthrough(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return wrapper


class PassStage:
    """A pipeline stage that does nothing: measures the pipeline itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)


def sync_variants() -> dict[str, Callable[[int], Any]]:
    variants: dict[str, Callable[[int], Any]] = {
        "bare call": work,
        "functools.wraps pass-through": passthrough(work),
        "3 nested pass-through wrappers": passthrough(passthrough(passthrough(work))),
        "recovery Fallback(default=0)": Fallback(default=0)(work),
        "recovery Fallback(last_good=LastGood(60))": Fallback(last_good=LastGood(60))(
            work
        ),
        "recovery Pipeline of 3 no-op stages": Pipeline(
            PassStage("a"), PassStage("b"), PassStage("c")
        )(work),
        "recovery Pipeline(Fallback, Retry, CircuitBreaker)": Pipeline(
            Fallback(default=0), Retry(), CircuitBreaker(f"b{uuid.uuid4().hex}")
        )(work),
        "recovery Fallback(Retry(CircuitBreaker(fn))) as nested decorators": (
            Fallback(default=0)(Retry()(CircuitBreaker(f"n{uuid.uuid4().hex}")(work)))
        ),
        "reference: the same pipeline's chain without its name scope": Pipeline(
            Fallback(default=0), Retry(), CircuitBreaker(f"r{uuid.uuid4().hex}")
        )._compose(work),
        "recovery Pipeline(Fallback, Retry, Bulkhead)": Pipeline(
            Fallback(default=0), Retry(), Bulkhead(64)
        )(work),
        "recovery Pipeline(Fallback, Retry, Timeout cooperative)": Pipeline(
            Fallback(default=0), Retry(), Timeout(30, mode="cooperative")
        )(work),
    }
    try:
        import pyresilience as pr

        variants["pyresilience @resilient(fallback)"] = pr.resilient(
            fallback=pr.FallbackConfig(handler=0)
        )(work)
        variants["pyresilience @resilient(fallback, retry, breaker)"] = pr.resilient(
            fallback=pr.FallbackConfig(handler=0),
            retry=pr.RetryConfig(max_attempts=3),
            circuit_breaker=pr.CircuitBreakerConfig(),
        )(work)
    except ImportError:
        pass
    return variants


def async_variants() -> dict[str, Callable[[int], Awaitable[Any]]]:
    variants: dict[str, Callable[[int], Awaitable[Any]]] = {
        "bare await": awork,
        "functools.wraps pass-through": apassthrough(awork),
        "recovery Fallback(default=0)": Fallback(default=0)(awork),
        "recovery Pipeline(Fallback, Retry, CircuitBreaker)": Pipeline(
            Fallback(default=0), Retry(), CircuitBreaker(f"b{uuid.uuid4().hex}")
        )(awork),
        "recovery Pipeline(Fallback, Retry, Timeout)": Pipeline(
            Fallback(default=0), Retry(), Timeout(30)
        )(awork),
    }
    try:
        import pyresilience as pr

        variants["pyresilience @resilient(fallback)"] = pr.resilient(
            fallback=pr.FallbackConfig(handler=0)
        )(awork)
        variants["pyresilience @resilient(fallback, retry, breaker)"] = pr.resilient(
            fallback=pr.FallbackConfig(handler=0),
            retry=pr.RetryConfig(max_attempts=3),
            circuit_breaker=pr.CircuitBreakerConfig(),
        )(awork)
    except ImportError:
        pass
    try:
        from hyx.circuitbreaker import consecutive_breaker
        from hyx.fallback import fallback
        from hyx.retry import retry

        async def zero(*args: Any, **kwargs: Any) -> int:
            return 0

        variants["hyx @fallback"] = fallback(zero)(awork)
        variants["hyx @fallback @retry @consecutive_breaker"] = fallback(zero)(
            retry(attempts=3)(consecutive_breaker()(awork))
        )
    except ImportError:
        pass
    return variants


def time_sync(fn: Callable[[int], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn(1)
    return time.perf_counter() - start


async def time_async(fn: Callable[[int], Awaitable[Any]], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        await fn(1)
    return time.perf_counter() - start


def calibrate(measure: Callable[[int], float]) -> int:
    loops = 100
    while True:
        elapsed = measure(loops)
        if elapsed >= ROUND_SECONDS / 4:
            return max(1, int(loops * ROUND_SECONDS / elapsed))
        loops *= 4


def run_rounds(
    measures: dict[str, Callable[[int], float]], rounds: int
) -> dict[str, float]:
    """Return the median ns per call of each variant, interleaving rounds."""
    loops = {name: calibrate(measure) for name, measure in measures.items()}
    samples: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            elapsed = measures[name](loops[name])
            samples[name].append(elapsed / loops[name] * 1e9)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_sync(rounds: int) -> dict[str, float]:
    variants = sync_variants()
    return run_rounds(
        {name: functools.partial(time_sync, fn) for name, fn in variants.items()},
        rounds,
    )


def bench_async(rounds: int) -> dict[str, float]:
    variants = async_variants()
    loop = asyncio.new_event_loop()
    try:

        def measure(fn: Callable[[int], Awaitable[Any]], loops: int) -> float:
            return loop.run_until_complete(time_async(fn, loops))

        return run_rounds(
            {name: functools.partial(measure, fn) for name, fn in variants.items()},
            rounds,
        )
    finally:
        loop.close()


def checks_per_second(limiter: RateLimiter, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            limiter.try_acquire()
        count += 100
    return count / (time.perf_counter() - start)


async def achecks_per_second(limiter: RateLimiter, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            await limiter.atry_acquire()
        count += 50
    return count / (time.perf_counter() - start)


def bench_limiters(seconds: float) -> dict[str, float | str]:
    results: dict[str, float | str] = {}
    wide = 10**9
    results["memory, sync"] = checks_per_second(
        RateLimiter(1e6, capacity=wide), seconds
    )

    with tempfile.TemporaryDirectory() as directory:
        store = SqliteLimiterStore(Path(directory) / "limits.db")
        results["SQLite (WAL, synchronous=NORMAL), sync"] = checks_per_second(
            RateLimiter(1e6, store=store, capacity=wide), seconds
        )
        store.close()

    url = os.environ.get("RECOVERY_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    name = f"bench-{uuid.uuid4().hex}"
    try:
        redis_store = RedisLimiterStore(url)
        limiter = RateLimiter(
            1e6, store=redis_store, name=name, on_store_error="raise", capacity=wide
        )
        results["Redis (one Lua script), sync"] = checks_per_second(limiter, seconds)

        async def run_async() -> float:
            rate = await achecks_per_second(limiter, seconds)
            await redis_store.aclose()
            return rate

        results["Redis (one Lua script), async"] = asyncio.run(run_async())
        redis_store._client.delete(redis_store.key(name))
        redis_store.close()
    except Exception as exc:
        results["Redis"] = f"not measured: {type(exc).__name__}: {exc}"
    return results


def table(results: dict[str, float], base: str) -> list[str]:
    lines = [
        f"| variant | ratio to `{base}` | ns per call |",
        "| --- | ---: | ---: |",
    ]
    for name, ns in sorted(results.items(), key=lambda item: item[1]):
        lines.append(f"| {name} | {ns / results[base]:.2f} | {ns:,.0f} |")
    return lines


def peers_note() -> str:
    found = []
    for module in ("pyresilience", "hyx"):
        try:
            imported = __import__(module)
        except ImportError:
            found.append(f"{module}: not installed, not measured")
            continue
        version = getattr(imported, "__version__", None)
        if version is None:
            from importlib.metadata import version as dist_version

            version = dist_version(module)
        found.append(f"{module} {version}")
    return "; ".join(found)


def write(
    sync: dict[str, float], asyncs: dict[str, float], limiters: dict[str, Any]
) -> str:
    base = "functools.wraps pass-through"
    pipe = "recovery Pipeline(Fallback, Retry, CircuitBreaker)"
    scopeless = "reference: the same pipeline's chain without its name scope"
    nested = "recovery Fallback(Retry(CircuitBreaker(fn))) as nested decorators"
    lines = [
        "## Graceful degradation",
        "",
        f"Measured on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}. Peers: {peers_note()}.",
        "",
        "Method: each variant calls a one-line function that returns its argument; "
        "loops are calibrated to about 20 ms per round, rounds run in a shuffled "
        "order, and the median round is reported. Every stage is on its success "
        "path (nothing fails), which is the cost paid on every call.",
        "",
        "### Headline",
        "",
        f"- A three-stage pipeline (Fallback, Retry, CircuitBreaker) costs "
        f"{sync[pipe] / sync[base]:.1f}x the `functools.wraps` pass-through "
        f"(sync), {asyncs[pipe] / asyncs[base]:.1f}x (async). The target was 3x.",
        "- The pipeline names itself in its strategies' events once, when it "
        "is built, so a call pays nothing for it: the chain costs "
        f"{sync[scopeless] / sync[base]:.1f}x without the pipeline object, and "
        f"the same three strategies as nested decorators "
        f"{sync[nested] / sync[base]:.1f}x.",
        f"- The pipeline machinery alone (three no-op stages) costs "
        f"{sync['recovery Pipeline of 3 no-op stages'] / sync[base]:.1f}x the "
        "pass-through, against "
        f"{sync['3 nested pass-through wrappers'] / sync[base]:.1f}x for three "
        "nested pass-through wrappers.",
        "",
        "### Success path, sync",
        "",
        *table(sync, base),
        "",
        "### Success path, async",
        "",
        *table(asyncs, base),
        "",
        "### Rate limiter checks per second (one caller, sequential)",
        "",
        "| store | checks per second | µs per check |",
        "| --- | ---: | ---: |",
    ]
    for name, value in limiters.items():
        if isinstance(value, str):
            lines.append(f"| {name} | {value} | |")
        else:
            lines.append(f"| {name} | {value:,.0f} | {1e6 / value:,.1f} |")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 7 if args.quick else 25
    seconds = 0.5 if args.quick else 2.0

    random.seed(1)
    sync = bench_sync(rounds)
    asyncs = bench_async(rounds)
    limiters = bench_limiters(seconds)
    text = write(sync, asyncs, limiters)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
