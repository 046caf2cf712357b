"""
A small, careful timing harness shared by the benchmark scripts.

Each scenario is a zero-argument callable (or coroutine function). Every
scenario is calibrated to about `target` seconds per sample; then `rounds`
rounds sample every scenario once, in a freshly shuffled order each round.
The reported figure is the median ns per call; ratios are medians of the
per-round ratios against a reference sampled in the same round, which
cancels most of the drift of a shared, noisy machine.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Result", "Scenario", "format_table", "run"]


@dataclass
class Scenario:
    """
    One thing to time: `fn` is called with no arguments (awaited if async).
    """

    name: str
    fn: Callable[[], object]
    is_async: bool = False
    group: str = ""
    samples: list[float] = field(default_factory=list)
    loops: int = 0


@dataclass
class Result:
    name: str
    group: str
    median_ns: float
    low_ns: float
    high_ns: float
    ratios: dict[str, float]


def _time_sync(fn: Callable[[], object], loops: int) -> float:
    repeat = itertools.repeat
    start = time.perf_counter()
    for _ in repeat(None, loops):
        fn()
    return time.perf_counter() - start


async def _time_async_inner(fn: Callable[[], Awaitable[object]], loops: int) -> float:
    repeat = itertools.repeat
    start = time.perf_counter()
    for _ in repeat(None, loops):
        await fn()
    return time.perf_counter() - start


def _sample(scenario: Scenario, loops: int, loop: asyncio.AbstractEventLoop) -> float:
    gc.collect()
    if scenario.is_async:
        coro_fn = scenario.fn
        elapsed = loop.run_until_complete(
            _time_async_inner(coro_fn, loops)  # type: ignore[arg-type]
        )
    else:
        elapsed = _time_sync(scenario.fn, loops)

    return elapsed / loops


def _calibrate(
    scenario: Scenario, target: float, loop: asyncio.AbstractEventLoop
) -> int:
    loops = 1
    while True:
        per_call = _sample(scenario, loops, loop)
        if per_call * loops >= target / 4:
            return max(1, int(target / per_call))
        loops *= 4


def run(
    scenarios: list[Scenario],
    *,
    rounds: int = 31,
    target: float = 0.01,
    seed: int = 2026,
) -> list[Scenario]:
    """
    Time every scenario over shuffled rounds; return them with their samples.
    """
    loop = asyncio.new_event_loop()
    try:
        for scenario in scenarios:
            scenario.loops = _calibrate(scenario, target, loop)
        rng = random.Random(seed)
        gc.freeze()
        for _ in range(rounds):
            order = scenarios[:]
            rng.shuffle(order)
            for scenario in order:
                scenario.samples.append(_sample(scenario, scenario.loops, loop))
    finally:
        gc.unfreeze()
        loop.close()

    return scenarios


def summarise(
    scenarios: list[Scenario], references: dict[str, Callable[[Scenario], str]]
) -> list[Result]:
    """
    Reduce samples to medians and per-round paired ratios.

    *references* maps a ratio column name to a function choosing, for each
    scenario, the name of the scenario it is divided by.
    """
    by_name = {s.name: s for s in scenarios}
    results = []
    for scenario in scenarios:
        ratios = {}
        for column, choose in references.items():
            reference = by_name.get(choose(scenario))
            if reference is None:
                continue
            paired = [
                a / b for a, b in zip(scenario.samples, reference.samples, strict=True)
            ]
            ratios[column] = statistics.median(paired)
        results.append(
            Result(
                name=scenario.name,
                group=scenario.group,
                median_ns=statistics.median(scenario.samples) * 1e9,
                low_ns=min(scenario.samples) * 1e9,
                high_ns=max(scenario.samples) * 1e9,
                ratios=ratios,
            )
        )

    return results


def format_table(results: list[Result], columns: list[str]) -> str:
    """
    Return a Markdown table: ratios first, then ns per call.
    """
    head = ["scenario", *(f"x {c}" for c in columns), "median ns", "min-max ns"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for r in results:
        cells = [r.name]
        cells += [f"{r.ratios[c]:.2f}" if c in r.ratios else "" for c in columns]
        cells += [f"{r.median_ns:,.0f}", f"{r.low_ns:,.0f}-{r.high_ns:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")

    return "\n".join(lines)
