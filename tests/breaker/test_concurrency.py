"""
Many threads and tasks through one breaker: no lock around the call, exact
counters, and exactly `half_open_calls` trials at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from recovery.errors import CircuitOpenError
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState
from recovery.policies.windows import CountWindow, TimeWindow
from recovery.testing import FakeClock

from .helpers import BoomError, fail_times, state_of

THREADS = 8


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads far more often, to shake out races."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def run_threads(target: Callable[[int], None], count: int = THREADS) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 5},
        {"window": CountWindow(20), "min_calls": 20, "failure_rate": 1.0},
        {"window": CountWindow(20), "slow_call": 10.0},
    ],
    ids=["lock-free path", "window", "timed"],
)
def test_calls_run_at_the_same_time(settings: dict[str, object]) -> None:
    """All eight calls are inside the protected function at once."""
    breaker = CircuitBreaker("t", **settings)  # type: ignore[arg-type]
    barrier = threading.Barrier(THREADS, timeout=10)
    results: list[int] = []

    def call(i: int) -> None:
        # The barrier breaks (BrokenBarrierError) unless all 8 are inside.
        results.append(breaker.call(barrier.wait))

    run_threads(call)

    assert sorted(results) == list(range(THREADS))
    assert breaker.metrics().successful_calls == THREADS


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 10_000},
        {"window": CountWindow(100), "min_calls": 100, "failure_rate": 1.0},
    ],
    ids=["lock-free path", "window"],
)
@pytest.mark.usefixtures("fast_switching")
def test_counters_are_exact_under_contention(settings: dict[str, object]) -> None:
    breaker = CircuitBreaker("t", ignore=KeyError, **settings)  # type: ignore[arg-type]
    per_thread = 1000

    def hammer(i: int) -> None:
        for n in range(per_thread):
            kind = n % 4
            try:
                if kind == 0:
                    breaker.call(_raise, BoomError())
                elif kind == 1:
                    breaker.call(_raise, KeyError())
                else:
                    breaker.call(int)
            except (BoomError, KeyError):
                pass

    run_threads(hammer)

    m = breaker.metrics()
    total = THREADS * per_thread
    assert m.state is BreakerState.CLOSED
    assert (m.failed_calls, m.ignored_calls, m.successful_calls) == (
        total // 4,
        total // 4,
        total // 2,
    )
    assert m.total_calls == total


@pytest.mark.usefixtures("fast_switching")
def test_rejections_are_counted_exactly() -> None:
    breaker = CircuitBreaker("t", failure_threshold=1, reset_timeout=1e6)
    fail_times(breaker, 1)
    per_thread = 1000

    def hammer(i: int) -> None:
        for _ in range(per_thread):
            with contextlib.suppress(CircuitOpenError):
                breaker.call(int)

    run_threads(hammer)

    assert breaker.metrics().rejected_calls == THREADS * per_thread


@pytest.mark.parametrize("permits", [1, 3])
def test_half_open_admits_exactly_the_permitted_trials(permits: int) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "t", failure_threshold=1, reset_timeout=5, half_open_calls=permits, clock=clock
    )
    fail_times(breaker, 1)
    clock.advance(5)
    contenders = 16
    start = threading.Barrier(contenders, timeout=10)
    release = threading.Event()
    admitted: list[int] = []
    rejected: list[int] = []
    decided = threading.Semaphore(0)

    def trial() -> None:
        admitted.append(1)
        decided.release()
        release.wait(timeout=10)

    def contender(i: int) -> None:
        start.wait()
        try:
            breaker.call(trial)
        except CircuitOpenError:
            rejected.append(1)
            decided.release()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for _ in range(contenders):
        assert decided.acquire(timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert (len(admitted), len(rejected)) == (permits, contenders - permits)
    assert state_of(breaker) is BreakerState.CLOSED


async def test_half_open_bounds_concurrent_tasks() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "t", failure_threshold=1, reset_timeout=5, half_open_calls=2, clock=clock
    )
    fail_times(breaker, 1)
    clock.advance(5)
    gate = asyncio.Event()
    ran: list[int] = []

    async def trial() -> None:
        ran.append(1)
        await gate.wait()

    tasks = [asyncio.ensure_future(breaker.acall(trial)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    rejected = [r for r in results if isinstance(r, CircuitOpenError)]
    assert (len(ran), len(rejected)) == (2, 18)
    assert state_of(breaker) is BreakerState.CLOSED


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.usefixtures("fast_switching")
def test_lock_free_window_successes_keep_the_window_exact() -> None:
    breaker = CircuitBreaker(
        "t", window=CountWindow(100), failure_rate=0.5, min_calls=100
    )

    def succeed(i: int) -> None:
        for _ in range(500):
            breaker.call(int)

    run_threads(succeed)
    fail_times(breaker, 49)

    metrics = breaker.metrics()
    assert metrics.successful_calls == THREADS * 500
    assert (metrics.window_calls, metrics.window_failures) == (100, 49)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_times(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


@pytest.mark.usefixtures("fast_switching")
def test_lock_free_time_window_successes_are_all_counted() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "t", window=TimeWindow(10), failure_rate=0.5, min_calls=10, clock=clock
    )

    def succeed(i: int) -> None:
        for _ in range(500):
            breaker.call(int)

    run_threads(succeed)
    fail_times(breaker, THREADS * 500 - 1)

    metrics = breaker.metrics()
    assert (metrics.window_calls, metrics.window_failures) == (
        THREADS * 1000 - 1,
        THREADS * 500 - 1,
    )
    assert state_of(breaker) is BreakerState.CLOSED
    fail_times(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN
