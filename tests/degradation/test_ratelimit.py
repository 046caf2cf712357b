"""
RateLimiter and the GCRA core: exact bursts, the bound over any window,
exact retry_after, waiting, and the in-memory store under threads.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.errors import ConfigurationError, RateLimitedError
from recovery.events import Event
from recovery.policies.ratelimit import (
    Gcra,
    RateLimitDecision,
    RateLimited,
    RateLimiter,
)
from recovery.policies.ratelimit_stores import MemoryLimiterStore
from recovery.testing import FakeClock


class TestGcraCore:
    def test_exactly_capacity_from_idle(self) -> None:
        gcra = Gcra(emission_us=100_000, capacity=5)
        tat = None
        admitted = 0
        for _ in range(10):
            decision, new_tat = gcra.decide(tat, 1_000_000, 1)
            if decision.allowed:
                admitted += 1
                tat = new_tat

        assert admitted == 5

    def test_decision_fields(self) -> None:
        gcra = Gcra(emission_us=100_000, capacity=3)

        first, tat = gcra.decide(None, 0, 1)
        assert first == RateLimitDecision(True, 2, 0.0, 0.1)
        second, tat = gcra.decide(tat, 0, 2)
        assert second == RateLimitDecision(True, 0, 0.0, 0.3)
        refused, none = gcra.decide(tat, 50_000, 1)
        assert refused == RateLimitDecision(False, 0, 0.05, 0.25)
        assert none is None

    def test_cost_above_capacity_never_passes(self) -> None:
        decision, tat = Gcra(10, 3).decide(None, 0, 4)

        assert decision == RateLimitDecision(False, 0, None, 0.0)
        assert tat is None

    def test_a_tat_from_a_clock_that_went_back_is_ignored(self) -> None:
        gcra = Gcra(emission_us=1_000, capacity=2)

        decision, tat = gcra.decide(2_000 + 60_000_001, 0, 1)

        assert decision.allowed
        assert tat == 1_000

    def test_a_caller_with_a_slightly_older_clock_is_still_limited(self) -> None:
        """A caller that read its clock before waiting for the lock."""
        gcra = Gcra(emission_us=1_000, capacity=2)
        _, tat = gcra.decide(None, 10_000_000, 2)

        decision, _ = gcra.decide(tat, 9_000_000, 1)

        assert not decision.allowed


@settings(max_examples=80, deadline=None)
@given(
    emission=st.integers(1, 50_000),
    capacity=st.integers(1, 8),
    ops=st.lists(st.tuples(st.integers(0, 120_000), st.integers(1, 4)), max_size=80),
)
def test_never_more_than_the_bound_over_any_window(
    emission: int, capacity: int, ops: list[tuple[int, int]]
) -> None:
    """Admitted units in [t_i, t_j] never exceed capacity + (t_j - t_i) // T."""
    gcra = Gcra(emission, capacity)
    tat = None
    now = 0
    admitted: list[tuple[int, int]] = []
    for step, cost in ops:
        now += step
        decision, new_tat = gcra.decide(tat, now, cost)
        if decision.allowed:
            tat = new_tat
            admitted.append((now, cost))

    for i, (start, _) in enumerate(admitted):
        units = 0
        for end, cost in admitted[i:]:
            units += cost
            assert units <= capacity + (end - start) // emission


@settings(max_examples=80, deadline=None)
@given(
    emission=st.integers(1, 50_000),
    capacity=st.integers(1, 8),
    warmup=st.lists(st.integers(0, 20_000), max_size=30),
    cost=st.integers(1, 8),
)
def test_retry_after_is_exactly_when_the_request_passes(
    emission: int, capacity: int, warmup: list[int], cost: int
) -> None:
    gcra = Gcra(emission, capacity)
    tat = None
    now = 0
    for step in warmup:
        now += step
        decision, new_tat = gcra.decide(tat, now, 1)
        if decision.allowed:
            tat = new_tat

    decision, _ = gcra.decide(tat, now, cost)
    if decision.allowed or decision.retry_after is None:
        return
    wait_us = round(decision.retry_after * 1_000_000)

    assert not gcra.decide(tat, now + wait_us - 1, cost)[0].allowed
    assert gcra.decide(tat, now + wait_us, cost)[0].allowed


class TestRateLimiter:
    def test_burst_then_one_per_emission_interval(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(10, capacity=3, clock=clock)

        assert [limiter.try_acquire().allowed for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]
        clock.advance(0.1)
        assert [limiter.try_acquire().allowed for _ in range(2)] == [True, False]

    def test_capacity_defaults_to_the_rate(self) -> None:
        limiter = RateLimiter(5, clock=FakeClock())

        assert sum(limiter.try_acquire().allowed for _ in range(9)) == 5
        assert limiter.emission_interval == 0.2

    def test_call_raises_with_retry_after(self) -> None:
        clock = FakeClock()
        events: list[Event] = []
        limiter = RateLimiter(
            2, 1, capacity=1, name="api", clock=clock, listeners=(events.append,)
        )
        assert limiter.call(lambda: "ok") == "ok"
        clock.advance(0.1)

        with pytest.raises(RateLimitedError) as caught:
            limiter.call(lambda: "no")

        assert caught.value.retry_after == pytest.approx(0.4, abs=1e-9)
        assert events == [RateLimited(source="api", pipeline=None, retry_after=0.4)]

    def test_call_waits_up_to_max_wait(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(4, capacity=1, max_wait=0.25, clock=clock)
        limiter.call(lambda: None)

        assert limiter.call(lambda: "waited") == "waited"
        assert clock.sleeps == [0.25]
        impatient = RateLimiter(4, capacity=1, max_wait=0.2, clock=clock)
        impatient.call(lambda: None)
        with pytest.raises(RateLimitedError):
            impatient.call(lambda: None)
        assert clock.sleeps == [0.25]

    def test_acquire_sleeps_until_admitted(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(10, capacity=2, clock=clock)

        for _ in range(5):
            limiter.acquire()

        assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])

    def test_acquire_refuses_a_wait_beyond_max_wait_at_once(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(1, capacity=1, clock=clock)
        limiter.acquire()

        with pytest.raises(RateLimitedError) as caught:
            limiter.acquire(max_wait=0.5)

        assert caught.value.retry_after == 1.0
        assert clock.sleeps == []

    def test_impossible_cost_is_refused_without_waiting(self) -> None:
        limiter = RateLimiter(10, capacity=3, clock=FakeClock())

        with pytest.raises(RateLimitedError) as caught:
            limiter.acquire(4)

        assert caught.value.retry_after is None

    async def test_async_twins(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(10, capacity=1, max_wait=1, clock=clock)

        async def work() -> str:
            return "ok"

        assert (await limiter.atry_acquire()).allowed
        assert await limiter.acall(work) == "ok"
        await limiter.aacquire()
        assert clock.sleeps == pytest.approx([0.1, 0.1])

    def test_decorator(self) -> None:
        limiter = RateLimiter(1, capacity=1, clock=FakeClock())

        @limiter
        def ping() -> str:
            return "pong"

        assert ping() == "pong"
        with pytest.raises(RateLimitedError):
            ping()

    def test_limiters_sharing_a_store_are_separate_by_name(self) -> None:
        store = MemoryLimiterStore()
        clock = FakeClock()
        a = RateLimiter(1, capacity=1, store=store, name="a", clock=clock)
        b = RateLimiter(1, capacity=1, store=store, name="b", clock=clock)
        a_again = RateLimiter(1, capacity=1, store=store, name="a", clock=clock)

        assert a.try_acquire().allowed
        assert b.try_acquire().allowed
        assert not a_again.try_acquire().allowed

    @pytest.mark.parametrize(
        ("args", "kwargs", "name"),
        [
            ((0,), {}, "rate"),
            ((1, 0), {}, "period"),
            ((1,), {"capacity": 0}, "capacity"),
            ((1,), {"max_wait": -1}, "max_wait"),
            ((1,), {"on_store_error": "ignore"}, "on_store_error"),
            ((400_000,), {}, "rate 400000"),
            ((1,), {"local_share": 0}, "local_share"),
            ((1,), {"local_share": 1.5}, "local_share"),
        ],
    )
    def test_bad_settings(
        self, args: tuple[float, ...], kwargs: dict[str, object], name: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=name):
            RateLimiter(*args, **kwargs)  # type: ignore[arg-type]


class TestConcurrency:
    def test_threads_get_exactly_the_burst(self) -> None:
        limiter = RateLimiter(1000, capacity=250, clock=FakeClock())
        admitted: list[int] = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            admitted.append(sum(limiter.try_acquire().allowed for _ in range(100)))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sum(admitted) == 250

    async def test_tasks_get_exactly_the_burst(self) -> None:
        limiter = RateLimiter(100, capacity=30, clock=FakeClock())

        async def worker() -> int:
            admitted = 0
            for _ in range(20):
                admitted += (await limiter.atry_acquire()).allowed
                await asyncio.sleep(0)
            return admitted

        assert sum(await asyncio.gather(*(worker() for _ in range(10)))) == 30
