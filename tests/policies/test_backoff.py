"""
Delay schedules: exact values without jitter, bounds and spread with it.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery import ConfigurationError, Jitter, constant, exponential, linear
from recovery.policies.backoff import Backoff

JITTERED = [j for j in Jitter if j is not Jitter.NONE]


class TestWithoutJitter:
    def test_exponential_doubles_up_to_the_cap(self) -> None:
        backoff = exponential(initial=1, multiplier=2, cap=2, minimum=0.5)

        delays = [backoff.delay(n) for n in range(1, 6)]

        assert delays == [1.0, 2.0, 2.0, 2.0, 2.0]

    def test_exponential_values(self) -> None:
        backoff = exponential(initial=0.1, multiplier=3, cap=5)

        delays = [backoff.delay(n) for n in range(1, 6)]

        assert delays == pytest.approx([0.1, 0.3, 0.9, 2.7, 5.0])

    def test_linear_adds_the_increment_up_to_the_cap(self) -> None:
        backoff = linear(initial=1, increment=0.5, cap=2.2)

        delays = [backoff.delay(n) for n in range(1, 6)]

        assert delays == [1.0, 1.5, 2.0, 2.2, 2.2]

    def test_constant_never_changes(self) -> None:
        backoff = constant(0.25)

        assert {backoff.delay(n) for n in (1, 2, 100, 10_000)} == {0.25}

    def test_minimum_lifts_small_delays(self) -> None:
        backoff = exponential(initial=0.01, multiplier=2, cap=1, minimum=0.05)

        assert backoff.delay(1) == 0.05
        assert backoff.delay(3) == 0.05
        assert backoff.delay(4) == pytest.approx(0.08)

    @pytest.mark.parametrize("attempt", [1_000, 10_000, 10**9])
    def test_huge_attempt_numbers_do_not_overflow(self, attempt: int) -> None:
        backoff = exponential(initial=1, multiplier=10, cap=30)

        assert backoff.delay(attempt) == 30.0

    def test_delays_iterator_yields_the_schedule(self) -> None:
        backoff = exponential(initial=1, multiplier=2, cap=5)
        it = backoff.delays()

        assert [next(it) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


class TestJitter:
    @pytest.mark.parametrize("jitter", JITTERED)
    def test_capped_delays_stay_in_bounds_and_spread(self, jitter: Jitter) -> None:
        """
        10,000 seeded samples per attempt lie in [0.5, 2]; at attempt 30
        (long past the cap) they still take at least 100 distinct values.
        """
        backoff = exponential(1, 2, 2, minimum=0.5, jitter=jitter)
        rng = random.Random(1234)

        for attempt in (1, 2, 3, 30, 10_000):
            previous = None
            samples = []
            for _ in range(10_000):
                previous = backoff.delay(attempt, rng, previous)
                samples.append(previous)

            assert min(samples) >= 0.5
            assert max(samples) <= 2.0
            if attempt == 30:
                assert len(set(samples)) >= 100

    def test_proportional_stays_within_the_factor(self) -> None:
        backoff = exponential(1, 2, 100, jitter="proportional", jitter_factor=0.1)
        rng = random.Random(7)

        samples = [backoff.delay(3, rng) for _ in range(2_000)]

        assert 3.6 <= min(samples) < 3.7
        assert 4.3 < max(samples) <= 4.4

    def test_full_jitter_spans_zero_to_base(self) -> None:
        backoff = exponential(1, 2, 100, jitter="full")
        rng = random.Random(7)

        samples = [backoff.delay(3, rng) for _ in range(2_000)]

        assert 0 <= min(samples) < 0.1
        assert 3.9 < max(samples) <= 4.0

    def test_equal_jitter_keeps_half_the_base(self) -> None:
        backoff = exponential(1, 2, 100, jitter="equal")
        rng = random.Random(7)

        samples = [backoff.delay(3, rng) for _ in range(2_000)]

        assert 2.0 <= min(samples) < 2.1
        assert 3.9 < max(samples) <= 4.0

    def test_decorrelated_grows_from_the_previous_delay(self) -> None:
        backoff = exponential(1, 2, 1000, jitter="decorrelated")
        rng = random.Random(7)

        samples = [backoff.delay(5, rng, previous=10.0) for _ in range(2_000)]

        assert 1.0 <= min(samples) < 1.5
        assert 29.0 < max(samples) <= 30.0

    def test_same_seed_same_delays(self) -> None:
        backoff = exponential(0.1, 2, 10, jitter="full")

        first = list(zip(range(20), backoff.delays(random.Random(5)), strict=False))
        second = list(zip(range(20), backoff.delays(random.Random(5)), strict=False))

        assert first == second


shapes = st.one_of(
    st.builds(
        exponential,
        initial=st.floats(0, 100),
        multiplier=st.floats(1, 1000),
        cap=st.floats(0, 1e6),
        jitter=st.sampled_from(list(Jitter)),
        jitter_factor=st.floats(0, 1),
    ),
    st.builds(
        linear,
        initial=st.floats(0, 100),
        increment=st.floats(0, 1e6),
        cap=st.floats(0, 1e6),
        jitter=st.sampled_from(list(Jitter)),
    ),
    st.builds(constant, st.floats(0, 1e6), jitter=st.sampled_from(list(Jitter))),
)


@given(
    backoff=shapes,
    attempt=st.integers(1, 100_000),
    seed=st.integers(0, 2**32),
    previous=st.none() | st.floats(0, 1e7),
)
def test_every_delay_is_finite_and_within_bounds(
    backoff: Backoff, attempt: int, seed: int, previous: float | None
) -> None:
    delay = backoff.delay(attempt, random.Random(seed), previous)

    assert math.isfinite(delay)
    assert backoff.minimum <= delay <= backoff.cap


@given(backoff=shapes, attempt=st.integers(1, 10_000))
def test_without_jitter_delays_never_decrease(backoff: Backoff, attempt: int) -> None:
    plain = Backoff(
        shape=backoff.shape,
        initial=backoff.initial,
        step=backoff.step,
        cap=backoff.cap,
        minimum=backoff.minimum,
        jitter=Jitter.NONE,
        jitter_factor=0.0,
    )

    assert plain.delay(attempt) <= plain.delay(attempt + 1)


class TestBadSettings:
    @pytest.mark.parametrize(
        ("build", "names"),
        [
            (lambda: exponential(initial=-1), "initial"),
            (lambda: exponential(multiplier=0.5), "multiplier"),
            (lambda: exponential(cap=math.inf), "cap"),
            (lambda: exponential(cap=math.nan), "cap"),
            (lambda: exponential(cap=1, minimum=2), "minimum"),
            (lambda: exponential(jitter="wild"), "jitter"),
            (lambda: exponential(jitter_factor=1.5), "jitter_factor"),
            (lambda: linear(1, -1, 5), "increment"),
            (lambda: constant(-0.1), "delay"),
            (lambda: constant("1"), "delay"),  # type: ignore[arg-type]
        ],
    )
    def test_bad_values_fail_at_construction(self, build: object, names: str) -> None:
        with pytest.raises(ConfigurationError, match=names):
            build()  # type: ignore[operator]

    def test_configuration_errors_are_value_errors(self) -> None:
        with pytest.raises(ValueError, match="must be >= 1"):
            exponential(multiplier=0.9)


@pytest.mark.parametrize("jitter", JITTERED)
def test_a_zero_base_delay_stays_zero(jitter: Jitter) -> None:
    rng = random.Random(3)

    assert exponential(0, 2, 30, jitter=jitter).delay(1, rng) == 0.0
    assert linear(0, 0, 5, jitter=jitter).delay(4, rng) == 0.0
