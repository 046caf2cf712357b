"""
RetryBudget: retries within a ratio of recent successes plus a reserve.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.errors import ConfigurationError
from recovery.policies.budget import RetryBudget
from recovery.policies.retry import Retry
from recovery.testing import FakeClock


def spend(budget: RetryBudget) -> int:
    """Withdraw until refused; return how many retries were granted."""
    granted = 0
    while budget.try_withdraw():
        granted += 1
    return granted


class TestAllowance:
    def test_ratio_of_successes(self) -> None:
        budget = RetryBudget(ratio=0.2, min_per_second=0, clock=FakeClock())
        for _ in range(100):
            budget.record_success()

        assert budget.available() == 20
        assert spend(budget) == 20
        assert budget.available() == 0

    def test_reserve_without_successes(self) -> None:
        budget = RetryBudget(ratio=0.2, min_per_second=1.5, window=4, clock=FakeClock())

        assert spend(budget) == 6

    def test_defaults_allow_ten_per_second_over_ten_seconds(self) -> None:
        assert spend(RetryBudget(clock=FakeClock())) == 100

    def test_successes_and_reserve_add_up(self) -> None:
        budget = RetryBudget(
            ratio=0.5, min_per_second=0.1, window=10, clock=FakeClock()
        )
        for _ in range(7):
            budget.record_success()

        assert spend(budget) == 4  # floor(7 * 0.5 + 1)


class TestWindow:
    def test_deposits_expire_after_the_window(self) -> None:
        clock = FakeClock()
        budget = RetryBudget(
            ratio=1, min_per_second=0, window=10, slots=10, clock=clock
        )
        for _ in range(5):
            budget.record_success()

        clock.advance(9.999)
        assert budget.available() == 5
        clock.advance(0.001)
        assert budget.available() == 0

    def test_withdrawals_expire_too(self) -> None:
        clock = FakeClock()
        budget = RetryBudget(ratio=0, min_per_second=0.3, window=10, clock=clock)
        assert spend(budget) == 3

        clock.advance(5)
        assert spend(budget) == 0
        clock.advance(5)
        assert spend(budget) == 3

    def test_old_slots_drop_one_at_a_time(self) -> None:
        clock = FakeClock()
        budget = RetryBudget(ratio=1, min_per_second=0, window=2, slots=2, clock=clock)
        budget.record_success()
        clock.advance(1)
        budget.record_success()
        budget.record_success()

        assert budget.available() == 3
        clock.advance(1)
        assert budget.available() == 2
        clock.advance(1)
        assert budget.available() == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["success", "retry"]), st.integers(0, 3000)),
        max_size=120,
    ),
    st.sampled_from([0.0, 0.1, 0.25, 1.0]),
    st.sampled_from([0.0, 0.5, 2.0]),
)
def test_matches_a_model_that_keeps_every_event(
    ops: list[tuple[str, int]], ratio: float, per_second: float
) -> None:
    """Each answer equals a count over all events in the last 10 whole slots."""
    clock = FakeClock()
    budget = RetryBudget(
        ratio=ratio, min_per_second=per_second, window=5, slots=10, clock=clock
    )
    events: list[tuple[int, str]] = []  # (slot index of 0.5 s, kind)
    now_ms = 0
    for kind, step_ms in ops:
        now_ms += step_ms
        clock.advance(step_ms / 1000)
        slot = int(clock.now() / 0.5)
        live = [k for s, k in events if s > slot - 10]
        allowance = int(live.count("success") * ratio + per_second * 5 + 1e-9)
        if kind == "success":
            budget.record_success()
            events.append((slot, "success"))
        else:
            expected = live.count("retry") < allowance
            assert budget.try_withdraw() is expected
            if expected:
                events.append((slot, "retry"))


def test_concurrent_withdrawals_never_overdraw() -> None:
    budget = RetryBudget(ratio=0, min_per_second=50, window=10, clock=FakeClock())
    granted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        granted.append(sum(budget.try_withdraw() for _ in range(200)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(granted) == 500


def test_retry_gives_up_when_the_budget_is_spent() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0, min_per_second=0.1, window=10, clock=clock)
    policy = Retry(on=ConnectionError, attempts=5, budget=budget, clock=clock)
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    with pytest.raises(ConnectionError):
        policy.call(flaky)
    assert calls == 2  # the first attempt and the one retry the budget held

    with pytest.raises(ConnectionError):
        policy.call(flaky)
    assert calls == 3


def test_retry_deposits_on_success() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.5, min_per_second=0, clock=clock)
    policy = Retry(on=ConnectionError, attempts=3, budget=budget, clock=clock)

    for _ in range(4):
        policy.call(lambda: None)

    assert budget.available() == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"window": 0}, "window"),
        ({"slots": 0}, "slots"),
    ],
)
def test_bad_settings(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        RetryBudget(**kwargs)  # type: ignore[arg-type]
