"""
CircuitBreaker on shared stores: adoption, the local cache, store outages,
and real processes sharing one SQLite file or one Redis.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recovery.errors import CircuitOpenError, StoreUnavailableError
from recovery.events import Event
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import (
    Admission,
    AdmissionKind,
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
)
from recovery.policies.breaker_events import (
    BreakerStoreRestored,
    BreakerStoreUnavailable,
)
from recovery.policies.windows import CountWindow
from recovery.stores.base import BreakerStore
from recovery.stores.redis import RedisStore
from recovery.stores.sqlite import SqliteStore
from recovery.testing import FakeClock

from .conftest import redis_cleanup

pytestmark = pytest.mark.integration


class BoomError(Exception):
    pass


def fail() -> None:
    raise BoomError


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


StoreMaker = Callable[..., BreakerStore]


@pytest.fixture(params=["sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[StoreMaker]:
    """Open a new store object on one shared backend (as another process would)."""
    opened: list[BreakerStore] = []

    if request.param == "sqlite":

        def make(**kwargs: Any) -> BreakerStore:
            store = SqliteStore(tmp_path / "state.db", **kwargs)
            opened.append(store)
            return store

    else:
        url: str = request.getfixturevalue("redis_url")

        def make(**kwargs: Any) -> BreakerStore:
            store = RedisStore(url, prefix=unique_name, **kwargs)
            opened.append(store)
            return store

    yield make
    for store in opened:
        store.close()
    if request.param == "redis":
        redis_cleanup(request.getfixturevalue("redis_url"), unique_name)


class TestAdoption:
    def test_a_new_breaker_adopts_an_open_state(self, make_store: StoreMaker) -> None:
        clock = FakeClock()
        first = CircuitBreaker(
            "svc",
            failure_threshold=2,
            reset_timeout=10,
            store=make_store(clock=clock),
            clock=clock,
        )
        for _ in range(2):
            with pytest.raises(BoomError):
                first.call(fail)
        clock.advance(4)

        second = CircuitBreaker(
            "svc",
            failure_threshold=2,
            reset_timeout=10,
            store=make_store(clock=clock),
            clock=clock,
        )

        with pytest.raises(CircuitOpenError) as info:
            second.call(int)
        assert info.value.retry_after == pytest.approx(6, abs=1e-3)
        metrics = second.metrics()
        assert (metrics.failed_calls, metrics.times_opened) == (2, 1)
        assert metrics.since == pytest.approx(first.metrics().since)

    def test_trip_in_one_breaker_reaches_the_other_on_its_next_report(
        self, make_store: StoreMaker
    ) -> None:
        clock = FakeClock()
        a = CircuitBreaker(
            "svc", failure_threshold=1, store=make_store(clock=clock), clock=clock
        )
        b = CircuitBreaker(
            "svc", failure_threshold=1, store=make_store(clock=clock), clock=clock
        )
        b.call(int)  # b caches "closed"
        with pytest.raises(BoomError):
            a.call(fail)

        b.call(int)  # admitted from the cache; its report learns "open"

        with pytest.raises(CircuitOpenError):
            b.call(int)
        assert b.metrics().successful_calls == 2

    async def test_async_calls_share_the_state(self, make_store: StoreMaker) -> None:
        clock = FakeClock()
        store = make_store(clock=clock)
        breaker = CircuitBreaker("svc", failure_threshold=2, store=store, clock=clock)

        async def afail() -> None:
            raise BoomError

        for _ in range(2):
            with pytest.raises(BoomError):
                await breaker.acall(afail)
        with pytest.raises(CircuitOpenError):
            await breaker.acall(asyncio.sleep, 0)

        assert state_of(breaker) is BreakerState.OPEN
        if isinstance(store, RedisStore):
            await store.aclose()

    def test_operator_controls_go_to_the_store(self, make_store: StoreMaker) -> None:
        clock = FakeClock()
        a = CircuitBreaker("svc", store=make_store(clock=clock), clock=clock)
        b = CircuitBreaker("svc", store=make_store(clock=clock), clock=clock)

        a.force_open()

        assert state_of(b) is BreakerState.FORCED_OPEN
        a.reset()
        assert state_of(b) is BreakerState.CLOSED


class CountingStore:
    """A store wrapper that counts operations and can be switched off."""

    def __init__(self, inner: BreakerStore) -> None:
        self.inner = inner
        self.calls = 0
        self.down = False

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("switched off by the test")

    def acquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        self._check()
        return self.inner.acquire(name, config, permit, rejected=rejected)

    def record(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        self._check()
        return self.inner.record(
            name, config, generation, permit, outcome, duration, rejected=rejected
        )

    def force(self, name: str, config: BreakerConfig, state: BreakerState) -> StateView:
        self._check()
        return self.inner.force(name, config, state)

    def metrics(
        self, name: str, config: BreakerConfig | None = None
    ) -> BreakerMetrics | None:
        self._check()
        return self.inner.metrics(name, config)

    def reset_metrics(self, name: str, config: BreakerConfig) -> None:
        self._check()
        self.inner.reset_metrics(name, config)

    def names(self) -> list[str]:
        return self.inner.names()

    def describe(self) -> str:
        return "counting:" + self.inner.describe()

    def close(self) -> None:
        self.inner.close()

    async def aacquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        return self.acquire(name, config, permit, rejected=rejected)

    async def arecord(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        return self.record(
            name, config, generation, permit, outcome, duration, rejected=rejected
        )


class TestCacheAndOutages:
    def test_closed_calls_cost_one_store_operation(
        self, make_store: StoreMaker
    ) -> None:
        clock = FakeClock()
        store = CountingStore(make_store(clock=clock))
        breaker = CircuitBreaker("svc", store=store, clock=clock, sync_interval=1.0)
        for _ in range(10):
            breaker.call(int)
        assert store.calls == 11  # one acquire to fill the cache, ten records

        clock.advance(1.0)  # the cache is stale after sync_interval without reports
        breaker.call(int)
        assert store.calls == 13

    def test_local_rejections_reach_the_shared_counter(
        self, make_store: StoreMaker
    ) -> None:
        clock = FakeClock()
        store = CountingStore(make_store(clock=clock))
        breaker = CircuitBreaker(
            "svc", failure_threshold=1, reset_timeout=10, store=store, clock=clock
        )
        with pytest.raises(BoomError):
            breaker.call(fail)
        before = store.calls
        for _ in range(3):
            with pytest.raises(CircuitOpenError):
                breaker.call(int)
        assert store.calls == before  # rejected from the cache

        assert breaker.metrics().rejected_calls == 0
        clock.advance(10)
        breaker.call(int)  # the trial's acquire carries the three rejections
        assert breaker.metrics().rejected_calls == 3

    def test_an_outage_falls_back_to_a_local_breaker_and_logs_once(
        self, make_store: StoreMaker
    ) -> None:
        clock = FakeClock()
        store = CountingStore(make_store(clock=clock))
        events: list[Event] = []
        breaker = CircuitBreaker(
            "svc",
            failure_threshold=2,
            store=store,
            clock=clock,
            store_retry=5.0,
            listeners=[events.append],
        )
        breaker.call(int)
        store.down = True

        assert breaker.call(int) == 0  # the report fails; the call does not
        for _ in range(2):
            with pytest.raises(BoomError):
                breaker.call(fail)
        with pytest.raises(CircuitOpenError):
            breaker.call(int)  # the local breaker tripped
        attempts = store.calls

        unavailable = [e for e in events if isinstance(e, BreakerStoreUnavailable)]
        assert len(unavailable) == 1
        assert attempts == 3  # acquire, then the failed record; then no more tries

        store.down = False
        clock.advance(5.0)
        assert breaker.call(int) == 0  # the shared state (closed) is used again
        assert [type(e) for e in events][-1] is BreakerStoreRestored

    @pytest.mark.parametrize(("policy", "allowed"), [("allow", True), ("deny", False)])
    def test_allow_and_deny_policies(
        self, make_store: StoreMaker, policy: str, allowed: bool
    ) -> None:
        clock = FakeClock()
        store = CountingStore(make_store(clock=clock))
        store.down = True
        breaker = CircuitBreaker(
            "svc",
            store=store,
            clock=clock,
            on_store_error=policy,  # type: ignore[arg-type]
        )

        if allowed:
            for _ in range(10):
                with pytest.raises(BoomError):
                    breaker.call(fail)
        else:
            with pytest.raises(CircuitOpenError):
                breaker.call(int)
        assert store.calls == 1


def test_a_killed_redis_server_is_survived(private_redis: Any) -> None:
    """Kill the real server mid-run, then bring it back."""
    clock = FakeClock()
    events: list[Event] = []
    store = RedisStore(private_redis.url, prefix="outage")
    breaker = CircuitBreaker(
        "svc",
        failure_threshold=3,
        store=store,
        clock=clock,
        store_retry=1.0,
        listeners=[events.append],
    )
    breaker.call(int)

    private_redis.stop()
    started = time.monotonic()
    for _ in range(20):
        breaker.call(int)
    assert time.monotonic() - started < 2.0  # no timeout paid per call
    assert [e.kind for e in events] == ["breaker_store_unavailable"]

    private_redis.start()
    clock.advance(1.0)
    breaker.call(int)

    assert [e.kind for e in events] == [
        "breaker_store_unavailable",
        "breaker_store_restored",
    ]
    assert breaker.metrics().successful_calls == 1  # a fresh server: only the last
    store.close()


# -- real processes -------------------------------------------------------------


def _open_store(kind: str, target: str, prefix: str) -> BreakerStore:
    if kind == "sqlite":
        return SqliteStore(target)
    return RedisStore(target, prefix=prefix)


def _hammer(kind: str, target: str, prefix: str, calls: int) -> None:
    store = _open_store(kind, target, prefix)
    breaker = CircuitBreaker(
        "svc",
        window=CountWindow(10_000),
        failure_rate=1.0,
        min_calls=10_000,
        store=store,
        sync_interval=0.001,
    )
    for n in range(calls):
        if n % 2:
            breaker.call(int)
        else:
            with pytest.raises(BoomError):
                breaker.call(fail)
    store.close()


def _race(kind: str, target: str, prefix: str, barrier: Any, results: Any) -> None:
    store = _open_store(kind, target, prefix)
    barrier.wait()
    admission = store.acquire(
        "svc", RACE_CONFIG, f"pid-{multiprocessing.current_process().pid}"
    )
    results.put(admission.kind.value)
    store.close()


RACE_CONFIG = BreakerConfig(failure_threshold=1, reset_timeout=10, half_open_calls=2)


@pytest.fixture(params=["sqlite", "redis"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[tuple[str, str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "state.db"), unique_name
        return
    url: str = request.getfixturevalue("redis_url")
    yield "redis", url, unique_name
    redis_cleanup(url, unique_name)


def test_processes_keep_exact_shared_counters(backend: tuple[str, str, str]) -> None:
    kind, target, prefix = backend
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_hammer, args=(kind, target, prefix, 60))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    metrics = _open_store(kind, target, prefix).metrics("svc")
    assert metrics is not None
    assert (metrics.successful_calls, metrics.failed_calls) == (120, 120)
    assert metrics.state is BreakerState.CLOSED


def test_processes_race_for_half_open_permits(backend: tuple[str, str, str]) -> None:
    kind, target, prefix = backend
    # Trip it with a clock 100 s in the past: it is already due for trials.
    past = FakeClock(wall=time.time() - 100)
    if kind == "sqlite":
        tripper: BreakerStore = SqliteStore(target, clock=past)
    else:
        tripper = RedisStore(target, prefix=prefix, clock=past)
    view = tripper.record("svc", RACE_CONFIG, 0, None, Outcome.FAILURE, 0.0)
    assert view.state is BreakerState.OPEN
    tripper.close()

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(8)
    results = context.Queue()
    workers = [
        context.Process(target=_race, args=(kind, target, prefix, barrier, results))
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    kinds = sorted(results.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)

    assert kinds == sorted(["trial"] * 2 + ["reject"] * 6)
    assert AdmissionKind.TRIAL.value == "trial"
