"""
Pipelines: stage order, events carrying the pipeline's name, decorators,
the order checks and their warnings, and a full fallback-retry-breaker-
timeout chain on the fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import pytest

from recovery.errors import CircuitOpenError, ConfigurationError
from recovery.events import Event, current_pipeline
from recovery.policies.backoff import constant
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.bulkhead import Bulkhead
from recovery.policies.fallback import (
    Fallback,
    FallbackTier,
    FallbackUsed,
    fallback_info,
)
from recovery.policies.pipeline import Pipeline, RecoveryWarning, Strategy
from recovery.policies.ratelimit import RateLimiter
from recovery.policies.retry import Retry
from recovery.policies.timeout import Timeout
from recovery.testing import FakeClock

P = ParamSpec("P")
R = TypeVar("R")


class Tracer:
    """A stage that records when calls enter and leave it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.log.append(f"enter {self.name} in {current_pipeline()}")
        try:
            return fn(*args, **kwargs)
        finally:
            self.log.append(f"leave {self.name}")

    async def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        self.log.append(f"enter {self.name} in {current_pipeline()}")
        try:
            return await fn(*args, **kwargs)
        finally:
            self.log.append(f"leave {self.name}")


def tracers(log: list[str], *names: str) -> list[Strategy]:
    return [Tracer(name, log) for name in names]


class TestComposition:
    def test_stages_run_outermost_first(self) -> None:
        log: list[str] = []
        pipeline = Pipeline(*tracers(log, "a", "b", "c"), name="p")

        def work(x: int, *, y: int) -> int:
            log.append("work")
            return x + y

        assert pipeline.call(work, 1, y=2) == 3
        assert log == [
            "enter a in p",
            "enter b in p",
            "enter c in p",
            "work",
            "leave c",
            "leave b",
            "leave a",
        ]
        assert current_pipeline() is None

    async def test_async_stages_run_outermost_first(self) -> None:
        log: list[str] = []
        pipeline = Pipeline(*tracers(log, "a", "b"), name="p")

        async def work(x: int) -> int:
            log.append(f"work in {current_pipeline()}")
            return x * 2

        assert await pipeline.acall(work, 4) == 8
        assert log == [
            "enter a in p",
            "enter b in p",
            "work in p",
            "leave b",
            "leave a",
        ]

    def test_bound_methods_reuse_their_chain(self) -> None:
        class Account:
            def __init__(self, balance: int) -> None:
                self.balance = balance

            def read(self) -> int:
                return self.balance

        pipeline = Pipeline(*tracers([], "a"))
        first, second = Account(1), Account(2)

        assert pipeline.call(first.read) == 1
        chain = pipeline._last[1]
        assert pipeline.call(first.read) == 1
        assert pipeline._last[1] is chain
        assert pipeline.call(second.read) == 2

    def test_calls_with_different_functions_keep_apart(self) -> None:
        pipeline = Pipeline(*tracers([], "a"))

        assert [pipeline.call(f, 3) for f in (abs, str, abs, str)] == [3, "3", 3, "3"]

    async def test_async_calls_with_different_functions_keep_apart(self) -> None:
        pipeline = Pipeline(*tracers([], "a"))

        async def one() -> int:
            return 1

        async def two() -> int:
            return 2

        assert [await pipeline.acall(f) for f in (one, two, one)] == [1, 2, 1]

    def test_decorators(self) -> None:
        log: list[str] = []
        pipeline = Pipeline(*tracers(log, "a"), name="deco")

        @pipeline
        def double(x: int) -> int:
            return x * 2

        assert double(5) == 10
        assert double.__name__ == "double"
        assert log == ["enter a in deco", "leave a"]

    async def test_async_decorator_names_the_pipeline_in_events(self) -> None:
        seen: list[Event] = []
        policy = Retry(
            attempts=2, backoff=constant(0), clock=FakeClock(), listeners=[seen.append]
        )
        calls: list[int] = []

        @Pipeline(policy, name="deco")
        async def flaky() -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("once")
            return 7

        assert await flaky() == 7
        assert seen
        assert {event.pipeline for event in seen} == {"deco"}

    def test_a_shared_strategy_reports_each_pipeline(self) -> None:
        seen: list[Event] = []
        policy = Retry(
            attempts=2, backoff=constant(0), clock=FakeClock(), listeners=[seen.append]
        )
        first = Pipeline(policy, name="first")
        second = Pipeline(policy, name="second")

        for pipeline in (first, second):
            attempts: list[int] = []

            def flaky(attempts: list[int] = attempts) -> int:
                attempts.append(1)
                if len(attempts) == 1:
                    raise ValueError("once")
                return 1

            pipeline.call(flaky)

        assert [
            event.pipeline for event in seen if event.kind == "retry_scheduled"
        ] == [
            "first",
            "second",
        ]

    def test_nested_pipelines(self) -> None:
        log: list[str] = []
        inner = Pipeline(*tracers(log, "b"), name="inner")
        outer = Pipeline(*tracers(log, "a"), inner, name="outer")

        outer.call(lambda: None)

        assert log == ["enter a in outer", "enter b in inner", "leave b", "leave a"]

    def test_is_a_strategy_and_a_sequence(self) -> None:
        stages = tracers([], "a", "b")
        pipeline = Pipeline(*stages)

        assert isinstance(pipeline, Strategy)
        assert list(pipeline) == stages
        assert len(pipeline) == 2
        assert repr(pipeline) == "Pipeline('a', 'b', name='pipeline')"

    def test_bad_stages(self) -> None:
        with pytest.raises(ConfigurationError, match="at least one"):
            Pipeline()
        with pytest.raises(ConfigurationError, match=r"strategies\[1\]"):
            Pipeline(Bulkhead(1), print)  # type: ignore[arg-type]


class TestEvents:
    def test_events_carry_the_pipeline_and_the_stage(self) -> None:
        events: list[Event] = []
        fallback = Fallback(default=0, name="zero", listeners=(events.append,))
        pipeline = Pipeline(fallback, Bulkhead(1), name="checkout")

        def fails() -> int:
            raise ConnectionError

        pipeline.call(fails)

        assert len(events) == 1
        assert isinstance(events[0], FallbackUsed)
        assert (events[0].pipeline, events[0].source) == ("checkout", "zero")

    def test_fallback_info_is_readable_after_the_pipeline(self) -> None:
        pipeline = Pipeline(Fallback(default=0), Bulkhead(1))

        def fails() -> int:
            raise ConnectionError

        pipeline.call(fails)

        info = fallback_info()
        assert info is not None
        assert info.tier is FallbackTier.DEFAULT


class TestOrderChecks:
    def test_retry_inside_a_breaker(self) -> None:
        with pytest.warns(RecoveryWarning, match="put the Retry before"):
            Pipeline(CircuitBreaker("b"), Retry())

    def test_timeout_outside_a_retry_only(self) -> None:
        with pytest.warns(RecoveryWarning, match="per-attempt limit"):
            Pipeline(Timeout(5), Retry())

    def test_timeouts_inside_and_outside_a_retry_are_fine(self) -> None:
        Pipeline(Timeout(30), Retry(), Timeout(5))

    def test_rate_limiter_outside_a_retry(self) -> None:
        with pytest.warns(RecoveryWarning, match="retries bypass the limit"):
            Pipeline(RateLimiter(10), Retry())

    def test_fallback_not_outermost(self) -> None:
        with pytest.warns(RecoveryWarning, match="put the Fallback first"):
            Pipeline(Bulkhead(1), Fallback(default=None))

    def test_the_same_object_twice(self) -> None:
        bulkhead = Bulkhead(1)
        with pytest.warns(RecoveryWarning, match="appears twice"):
            Pipeline(bulkhead, bulkhead)

    def test_the_recommended_order_is_quiet(self) -> None:
        Pipeline(
            Fallback(default=None),
            Retry(),
            CircuitBreaker("b"),
            RateLimiter(10),
            Bulkhead(4),
            Timeout(1),
        )

    def test_check_order_false_silences(self) -> None:
        Pipeline(Timeout(5), Retry(), check_order=False)

    def test_warning_points_at_the_caller(self) -> None:
        with pytest.warns(RecoveryWarning) as record:
            Pipeline(Bulkhead(1), Fallback(default=None))

        assert record[0].filename == __file__


class TestFullChain:
    def build(self, clock: FakeClock) -> tuple[Pipeline, CircuitBreaker]:
        breaker = CircuitBreaker(
            "payments", failure_threshold=2, reset_timeout=30, clock=clock
        )
        pipeline = Pipeline(
            Fallback(lambda failure: f"queued after {type(failure).__name__}"),
            Retry(on=ConnectionError, attempts=3, backoff=constant(1.0), clock=clock),
            breaker,
            Timeout(5, mode="cooperative", clock=clock),
            name="pay",
        )
        return pipeline, breaker

    def test_retries_then_succeeds(self) -> None:
        clock = FakeClock()
        pipeline, _ = self.build(clock)
        outcomes: list[Exception | str] = [ConnectionError(), "paid"]

        def pay() -> str:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        assert pipeline.call(pay) == "paid"
        assert clock.sleeps == [1.0]

    def test_open_breaker_reaches_the_fallback(self) -> None:
        clock = FakeClock()
        pipeline, _ = self.build(clock)
        calls = 0

        def down() -> str:
            nonlocal calls
            calls += 1
            raise ConnectionError

        result = pipeline.call(down)

        # Two failures open the breaker; the third attempt is rejected
        # without a call, and the fallback receives that rejection.
        assert calls == 2
        assert result == "queued after CircuitOpenError"
        info = fallback_info()
        assert info is not None
        assert isinstance(info.errors[0], CircuitOpenError)

    async def test_async_chain(self) -> None:
        clock = FakeClock()
        pipeline, _ = self.build(clock)
        attempts = 0

        async def pay() -> str:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise ConnectionError
            await asyncio.sleep(0)
            return "paid"

        assert await pipeline.acall(pay) == "paid"
        assert clock.sleeps == [1.0]
