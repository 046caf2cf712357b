"""
Benchmark the circuit breaker against its peers, in one run.

What is measured (results in benchmarks/results/breaker.md):

1. The success path (closed breaker, trivial function) of our breaker, in
   memory, against a bare call, a `functools.wraps` pass-through and the
   peers (pybreaker, circuitbreaker, aiobreaker, purgatory); sync and async.
2. The fast-fail path of an open breaker (the rejected call timed with its
   try/except) against raising and catching a new exception.
3. Contention: 1, 2 and 8 threads sharing one breaker, as calls per second
   relative to one thread, for a trivial function and a 1 ms blocking one.
4. Redis-backed state: commands (round trips) per call, counted from
   INFO commandstats deltas on a private redis-server, against pybreaker's
   CircuitRedisStorage; with the time per call on loopback.

Method: `benchmarks/harness.py`: each scenario calibrated to ~10 ms per
sample, rounds in a freshly shuffled order, medians, ratios as medians of
per-round paired ratios. Thread runs: 5 repetitions in shuffled order,
median wall-clock calls/s.

Run: ``.venv/bin/python benchmarks/bench_breaker.py [--quick]``.
"""

# ruff: noqa: SIM105 - try/except/pass is what the peers are timed with too;
# contextlib.suppress would add its own cost to the rejected calls.

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import aiobreaker  # type: ignore[import-untyped]
import circuitbreaker  # type: ignore[import-untyped]
import harness
import purgatory
import pybreaker
import redis
from purgatory.domain.model import OpenedState

from recovery.errors import CircuitOpenError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.windows import CountWindow, TimeWindow
from recovery.stores.redis import RedisStore

RESULTS = Path(__file__).parent / "results" / "breaker.md"
PEERS = ("pybreaker", "circuitbreaker", "aiobreaker", "purgatory", "redis")


class BenchError(Exception):
    pass


def const() -> int:
    return 42


async def aconst() -> int:
    return 42


def fail() -> None:
    raise BenchError


async def afail() -> None:
    raise BenchError


def wraps(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def awraps(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return wrapper


def trip(call: Callable[[], object], n: int = 5) -> None:
    for _ in range(n):
        try:
            call()
        except Exception:
            pass


async def atrip(call: Callable[[], Any], n: int = 5) -> None:
    for _ in range(n):
        try:
            await call()
        except Exception:
            pass


# -- 1 and 2: success path and open fast-fail -----------------------------------


def success_scenarios() -> list[harness.Scenario]:
    ours = CircuitBreaker("bench-ok", failure_threshold=5)
    ours_window = CircuitBreaker("bench-win", window=CountWindow(100))
    ours_time = CircuitBreaker("bench-time", window=TimeWindow(60))
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=10**6)
    aiob = aiobreaker.CircuitBreaker(fail_max=5)
    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=10**6)
    purg_async = purgatory.AsyncCircuitBreakerFactory(
        default_threshold=5, default_ttl=10**6
    )

    deco = ours(const)
    deco_window = ours_window(const)
    deco_time = ours_time(const)
    adeco = ours(aconst)
    cb = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=10**6, name="ok")(
        const
    )
    acb = circuitbreaker.circuit(
        failure_threshold=5, recovery_timeout=10**6, name="aok"
    )(aconst)
    pyb_deco = pyb(const)
    purg_deco = purg("bench-ok")(const)
    apurg_deco = purg_async("bench-aok")(aconst)
    plain_wraps = wraps(const)
    plain_awraps = awraps(aconst)
    acall = ours.acall

    async def ours_acall() -> int:
        return await acall(aconst)

    async def aiob_call() -> int:
        return await aiob.call_async(aconst)  # type: ignore[no-any-return]

    make = harness.Scenario
    return [
        make("bare call", const, group="sync"),
        make("functools.wraps pass-through", plain_wraps, group="sync"),
        make("recovery @breaker (consecutive failures)", deco, group="sync"),
        make(
            "recovery breaker.call(fn)",
            functools.partial(ours.call, const),
            group="sync",
        ),
        make("recovery @breaker, CountWindow(100)", deco_window, group="sync"),
        make("recovery @breaker, TimeWindow(60)", deco_time, group="sync"),
        make("pybreaker @breaker", pyb_deco, group="sync"),
        make("circuitbreaker @circuit", cb, group="sync"),
        make(
            "aiobreaker.call (sync def)",
            functools.partial(aiob.call, const),
            group="sync",
        ),
        make("purgatory sync (in memory)", purg_deco, group="sync"),
        make("async bare await", aconst, is_async=True, group="async"),
        make(
            "async functools.wraps pass-through",
            plain_awraps,
            is_async=True,
            group="async",
        ),
        make("recovery @breaker on async def", adeco, is_async=True, group="async"),
        make(
            "recovery await breaker.acall(fn)", ours_acall, is_async=True, group="async"
        ),
        make("circuitbreaker @circuit async", acb, is_async=True, group="async"),
        make("aiobreaker call_async", aiob_call, is_async=True, group="async"),
        make("purgatory async (in memory)", apurg_deco, is_async=True, group="async"),
    ]


def open_scenarios() -> list[harness.Scenario]:
    ours = CircuitBreaker("bench-open", failure_threshold=5, reset_timeout=10**6)
    ours_deco = ours(const)
    trip(functools.partial(ours.call, fail))
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=10**6)
    pyb_deco = pyb(fail)
    trip(pyb_deco)
    pyb_ok = pyb(const)
    cb_fail = circuitbreaker.circuit(
        failure_threshold=5, recovery_timeout=10**6, name="open"
    )(fail)
    trip(cb_fail)
    aiob = aiobreaker.CircuitBreaker(
        fail_max=5, timeout_duration=datetime.timedelta(days=30)
    )
    trip(functools.partial(aiob.call, fail))
    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=10**6)
    purg_fail = purg("bench-open")(fail)
    trip(purg_fail)

    def floor() -> None:
        try:
            raise BenchError("rejected")
        except BenchError:
            pass

    def ours_open() -> None:
        try:
            ours_deco()
        except CircuitOpenError:
            pass

    def ours_call_open() -> None:
        try:
            ours.call(const)
        except CircuitOpenError:
            pass

    def pyb_open() -> None:
        try:
            pyb_ok()
        except pybreaker.CircuitBreakerError:
            pass

    def cb_open() -> None:
        try:
            cb_fail()
        except circuitbreaker.CircuitBreakerError:
            pass

    def aiob_open() -> None:
        try:
            aiob.call(const)
        except aiobreaker.CircuitBreakerError:
            pass

    def purg_open() -> None:
        try:
            purg_fail()
        except OpenedState:
            pass

    make = harness.Scenario
    return [
        make("FLOOR: raise and catch a new exception", floor, group="open"),
        make("recovery @breaker open -> CircuitOpenError", ours_open, group="open"),
        make("recovery breaker.call open", ours_call_open, group="open"),
        make("pybreaker open -> CircuitBreakerError", pyb_open, group="open"),
        make("circuitbreaker open", cb_open, group="open"),
        make("aiobreaker open (sync def)", aiob_open, group="open"),
        make("purgatory open (in memory)", purg_open, group="open"),
    ]


# -- 3: threads contending on one breaker ---------------------------------------


def thread_rate(call: Callable[[], object], threads: int, total: int) -> float:
    per_thread = total // threads
    start = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            call()
        done.wait()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    done.wait()
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    return per_thread * threads / elapsed


def contention(quick: bool) -> list[tuple[str, str, int, float, float]]:
    sleepy = functools.partial(time.sleep, 0.001)

    breakers: dict[str, Callable[[Callable[[], object]], Callable[[], object]]] = {
        "no breaker: wraps": wraps,
        "recovery (consecutive)": lambda fn: CircuitBreaker(
            f"t-{id(fn)}-{random.random()}", failure_threshold=5
        )(fn),
        "recovery CountWindow(100)": lambda fn: CircuitBreaker(
            f"w-{id(fn)}-{random.random()}", window=CountWindow(100)
        )(fn),
        # A fresh breaker for every wrapped function, hence the lambdas.
        "pybreaker": lambda fn: pybreaker.CircuitBreaker(fail_max=5)(fn),  # noqa: PLW0108
        "circuitbreaker": lambda fn: circuitbreaker.circuit(  # noqa: PLW0108
            failure_threshold=5, name=f"c{random.random()}"
        )(fn),
    }
    works: dict[str, tuple[Callable[[], object], int]] = {
        "trivial": (const, 20_000 if quick else 200_000),
        "blocking 1 ms": (sleepy, 400),
    }
    reps = 3 if quick else 5
    rows = []
    rng = random.Random(7)
    for work, (fn, total) in works.items():
        for name, make in breakers.items():
            wrapped = make(fn)
            runs: dict[int, list[float]] = {1: [], 2: [], 8: []}
            plan = [n for n in runs for _ in range(reps)]
            rng.shuffle(plan)
            for threads in plan:
                runs[threads].append(thread_rate(wrapped, threads, total))
            one = statistics.median(runs[1])
            for threads, rates in runs.items():
                median = statistics.median(rates)
                rows.append((work, name, threads, median, median / one))
    return rows


# -- 4: Redis round trips ---------------------------------------------------------


class PrivateRedis:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # waiting for a real server to start

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name != "cmdstat_info"
    }


class RoundTrips:
    """
    Count the requests redis-py sends (one per round trip) while active.
    """

    def __init__(self) -> None:
        self.count = 0
        self._original = redis.connection.AbstractConnection.send_packed_command

    def __enter__(self) -> RoundTrips:
        original = self._original

        def counting(connection: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(connection, command, check_health)  # type: ignore[no-untyped-call]

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        redis.connection.AbstractConnection.send_packed_command = self._original  # type: ignore[method-assign]


def commands_per_call(
    client: redis.Redis, call: Callable[[], object], calls: int = 200
) -> tuple[float, float, str]:
    """
    Return round trips per call, server commands per call, and their detail.

    Server-side counts include the commands a Lua script runs inside Redis;
    round trips are counted on the client.
    """
    before = command_counts(client)
    with RoundTrips() as trips:
        for _ in range(calls):
            call()
    after = command_counts(client)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    detail = ", ".join(f"{k.upper()} {v / calls:g}" for k, v in sorted(delta.items()))
    return trips.count / calls, sum(delta.values()) / calls, detail


def redis_section(
    quick: bool,
) -> tuple[list[tuple[str, float, float, str]], list[harness.Result]]:
    server = PrivateRedis()
    try:
        client = redis.Redis.from_url(server.url)
        store = RedisStore(server.url, prefix="bench")
        ours = CircuitBreaker("bench-ok", failure_threshold=5, store=store)
        ours_deco = ours(const)
        ours_window = CircuitBreaker("bench-win", window=CountWindow(100), store=store)(
            const
        )
        ours_open = CircuitBreaker(
            "bench-open", failure_threshold=5, reset_timeout=10**6, store=store
        )
        trip(functools.partial(ours_open.call, fail))

        def ours_reject() -> None:
            try:
                ours_open.call(const)
            except CircuitOpenError:
                pass

        pyb = pybreaker.CircuitBreaker(
            fail_max=5,
            reset_timeout=10**6,
            state_storage=pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, redis.Redis.from_url(server.url), namespace="ok"
            ),
        )
        pyb_deco = pyb(const)
        pyb_open = pybreaker.CircuitBreaker(
            fail_max=5,
            reset_timeout=10**6,
            state_storage=pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED,
                redis.Redis.from_url(server.url),
                namespace="open",
            ),
        )
        trip(pyb_open(fail))
        pyb_open_ok = pyb_open(const)

        def pyb_reject() -> None:
            try:
                pyb_open_ok()
            except pybreaker.CircuitBreakerError:
                pass

        cases: dict[str, Callable[[], object]] = {
            "recovery RedisStore, success (closed)": ours_deco,
            "recovery RedisStore CountWindow(100), success": ours_window,
            "recovery RedisStore, open fast-fail": ours_reject,
            "pybreaker CircuitRedisStorage, success": pyb_deco,
            "pybreaker CircuitRedisStorage, open fast-fail": pyb_reject,
        }
        for call in cases.values():  # warm up: scripts loaded, caches filled
            call()
        counts = [
            (name, *commands_per_call(client, call)) for name, call in cases.items()
        ]
        scenarios = [harness.Scenario(n, c, group="redis") for n, c in cases.items()]
        harness.run(scenarios, rounds=5 if quick else 15, target=0.02)
        results = harness.summarise(scenarios, {})
        client.close()
        store.close()
        return counts, results
    finally:
        server.stop()


# -- report -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    args = parser.parse_args()
    rounds = 7 if args.quick else 41

    started = datetime.datetime.now(datetime.UTC)
    calls = harness.run(success_scenarios() + open_scenarios(), rounds=rounds)
    results = harness.summarise(
        calls,
        {
            "wraps": lambda s: {
                "sync": "functools.wraps pass-through",
                "async": "async functools.wraps pass-through",
            }.get(s.group, ""),
            "bare": lambda s: {
                "sync": "bare call",
                "async": "async bare await",
            }.get(s.group, ""),
            "floor": lambda s: (
                "FLOOR: raise and catch a new exception" if s.group == "open" else ""
            ),
        },
    )
    threads = contention(args.quick)
    redis_counts, redis_results = redis_section(args.quick)
    write_report(started, rounds, results, threads, redis_counts, redis_results)


def write_report(
    started: datetime.datetime,
    rounds: int,
    results: list[harness.Result],
    threads: list[tuple[str, str, int, float, float]],
    redis_counts: list[tuple[str, float, float, str]],
    redis_results: list[harness.Result],
) -> None:
    by_group: dict[str, list[harness.Result]] = {}
    for result in results:
        by_group.setdefault(result.group, []).append(result)
    redis_ns = {r.name: r for r in redis_results}
    lines = [
        "# Circuit breaker benchmark",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared, noisy); "
        + ", ".join(f"{name} {version(name)}" for name in PEERS)
        + ". "
        f"{rounds} shuffled rounds per scenario; ratios are medians of paired "
        "per-round ratios. Produced by `benchmarks/bench_breaker.py`.",
        "",
        "## Success path, sync (closed breaker, trivial function)",
        "",
        harness.format_table(by_group["sync"], ["wraps", "bare"]),
        "",
        "## Success path, async",
        "",
        harness.format_table(by_group["async"], ["wraps", "bare"]),
        "",
        "## Open breaker: one rejected call, with its try/except",
        "",
        harness.format_table(by_group["open"], ["floor"]),
        "",
        "## Threads sharing one breaker (calls/s; ratio to one thread)",
        "",
        "| work | breaker | threads | x 1 thread | calls/s |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {work} | {name} | {n} | {ratio:.2f} | {rate:,.0f} |"
        for work, name, n, rate, ratio in threads
    ]
    lines += [
        "",
        "## Redis-backed state (private redis-server on loopback)",
        "",
        "Over 200 calls: round trips counted on the client (requests redis-py "
        "sent); server commands from INFO commandstats deltas, including those "
        "a Lua script runs inside Redis (no round trip of their own).",
        "",
        "| scenario | round trips per call | server commands per call | detail "
        "| median ns |",
        "|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {name} | {trips:g} | {commands:g} | {detail} "
        f"| {redis_ns[name].median_ns:,.0f} |"
        for name, trips, commands, detail in redis_counts
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    sys.stdout.write(f"wrote {RESULTS}\n")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
