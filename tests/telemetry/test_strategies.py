"""
Real strategies, driven on a fake clock, read back through each backend.

Every expected value is counted from the scenario itself (how many calls
failed, how long the constant backoff sleeps), not from the events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from recovery.backup import BackupRepository
from recovery.discovery import OutlierDetection, ServiceRegistry
from recovery.errors import (
    BulkheadFullError,
    CallTimeoutError,
    CircuitOpenError,
    RateLimitedError,
)
from recovery.policies.backoff import constant
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.bulkhead import Bulkhead
from recovery.policies.fallback import Fallback
from recovery.policies.pipeline import Pipeline
from recovery.policies.ratelimit import RateLimiter
from recovery.policies.retry import Retry
from recovery.policies.timeout import Timeout
from recovery.testing import FakeClock
from recovery.transactions import Saga, SagaFailedError, Step

from .readers import Otel, Prom

Backend = Prom | Otel


def failing(times: int, result: str = "ok") -> Callable[[], str]:
    """
    Return a function that raises ConnectionError *times* times, then answers.
    """
    left = [times]

    def call() -> str:
        if left[0] > 0:
            left[0] -= 1
            raise ConnectionError("refused")
        return result

    return call


class TestRetry:
    def test_recovery_after_two_failures(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        policy = Retry(attempts=5, backoff=constant(0.5), clock=clock, name="fetch")

        assert policy.call(failing(2)) == "ok"

        assert backend.series("recovery.retry.attempts") == {
            ("fetch", "", "failure"): 2,
            ("fetch", "", "success"): 1,
        }
        assert backend.value("recovery.retry.retries", strategy="fetch") == 2
        assert backend.value("recovery.retry.recovered", strategy="fetch") == 1
        assert backend.value("recovery.retry.gave_up", strategy="fetch") is None
        assert backend.value("recovery.retry.waited", strategy="fetch") == 1.0

    def test_giving_up_counts_every_attempt_and_one_give_up(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        policy = Retry(attempts=3, backoff=constant(2), clock=clock, name="fetch")

        with pytest.raises(ConnectionError):
            policy.call(failing(10))

        assert backend.series("recovery.retry.attempts") == {
            ("fetch", "", "failure"): 3
        }
        assert backend.value("recovery.retry.retries", strategy="fetch") == 2
        assert backend.value("recovery.retry.gave_up", strategy="fetch") == 1
        assert backend.value("recovery.retry.waited", strategy="fetch") == 4.0

    def test_a_first_try_success_emits_nothing_to_count(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        Retry(clock=clock, name="fetch").call(failing(0))

        assert backend.series("recovery.retry.attempts") == {}

    def test_the_pipeline_name_becomes_an_attribute(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        retry = Retry(attempts=2, backoff=constant(0.1), clock=clock, name="fetch")
        pipeline = Pipeline(retry, name="checkout")

        pipeline.call(failing(1))

        assert backend.series("recovery.retry.retries") == {("fetch", "checkout"): 1}


class TestBreaker:
    def test_a_full_cycle_sets_the_state_and_counts_transitions(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        breaker = CircuitBreaker(
            "payments", failure_threshold=2, reset_timeout=10, clock=clock
        )
        for _ in range(2):
            with pytest.raises(ConnectionError):
                breaker.call(failing(1))
        assert backend.value("recovery.breaker.state", breaker="payments") == 2

        with pytest.raises(CircuitOpenError):
            breaker.call(failing(0))
        clock.advance(10)
        assert breaker.call(failing(0)) == "ok"

        assert backend.value("recovery.breaker.state", breaker="payments") == 0
        assert backend.series("recovery.breaker.transitions") == {
            ("payments", "open"): 1,
            ("payments", "half_open"): 1,
            ("payments", "closed"): 1,
        }
        assert backend.series("recovery.breaker.rejections") == {
            ("payments", "", "open"): 1
        }

    @pytest.mark.parametrize(
        ("action", "code"), [("force_open", 3), ("disable", 4), ("reset", 0)]
    )
    def test_operator_states_have_their_codes(
        self, backend: Backend, clock: FakeClock, action: str, code: int
    ) -> None:
        breaker = CircuitBreaker("payments", clock=clock)
        breaker.force_open()

        getattr(breaker, action)()

        assert backend.value("recovery.breaker.state", breaker="payments") == code

    def test_tracked_breakers_report_calls_and_state_without_events(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        breaker = CircuitBreaker("search", failure_threshold=3, clock=clock)
        assert backend.link is not None
        backend.link.track(breaker)
        for answer in (failing(0), failing(1), failing(0)):
            with contextlib.suppress(ConnectionError):
                breaker.call(answer)

        assert backend.series("recovery.breaker.calls") == {
            ("search", "success"): 2,
            ("search", "failure"): 1,
            ("search", "ignored"): 0,
            ("search", "rejected"): 0,
        }
        assert backend.value("recovery.breaker.state", breaker="search") == 0

    def test_a_tracked_open_breaker_reads_half_open_once_its_time_is_up(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        breaker = CircuitBreaker(
            "search", failure_threshold=1, reset_timeout=5, clock=clock
        )
        assert backend.link is not None
        backend.link.track(breaker)
        with pytest.raises(ConnectionError):
            breaker.call(failing(1))
        clock.advance(5)

        assert backend.value("recovery.breaker.state", breaker="search") == 1


class TestDegradation:
    def test_fallback_tiers(self, backend: Backend, clock: FakeClock) -> None:
        def alternative(failure: Exception) -> str:
            return "alt"

        def broken_alternative(failure: Exception) -> str:
            raise failure

        chain = Fallback(alternative, default="plain", name="menu", clock=clock)
        broken = Fallback(broken_alternative, default="plain", name="menu", clock=clock)

        assert chain.call(failing(1)) == "alt"
        assert chain.call(failing(1)) == "alt"
        assert chain.call(failing(0)) == "ok"
        assert broken.call(failing(1)) == "plain"

        assert backend.series("recovery.fallback.used") == {
            ("menu", "", "alternative"): 2,
            ("menu", "", "default"): 1,
        }

    def test_bulkhead_and_limiter_rejections(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        bulkhead = Bulkhead(1, name="db", clock=clock)
        limiter = RateLimiter(1, 60, name="api", clock=clock)

        with pytest.raises(BulkheadFullError):
            bulkhead.call(lambda: bulkhead.call(lambda: None))
        limiter.call(lambda: None)
        for _ in range(3):
            with pytest.raises(RateLimitedError):
                limiter.call(lambda: None)

        assert backend.series("recovery.bulkhead.rejections") == {("db", "", "full"): 1}
        assert backend.series("recovery.limiter.rejections") == {("api", ""): 3}

    def test_a_late_cooperative_call_counts_as_expired(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        limit = Timeout(1.0, mode="cooperative", name="quote", clock=clock)

        def slow() -> str:
            clock.advance(1.5)
            return "late"

        with pytest.raises(CallTimeoutError):
            limit.call(slow)
        limit.call(lambda: "fast")

        assert backend.series("recovery.timeout.expired") == {
            ("quote", "", "cooperative"): 1
        }


class TestAsync:
    async def test_async_calls_count_and_reach_the_current_span(
        self, otel: Otel, clock: FakeClock
    ) -> None:
        policy = Retry(attempts=3, backoff=constant(0.5), clock=clock, name="afetch")
        flaky = failing(2)

        async def fetch() -> str:
            return flaky()

        with otel.tracer.start_as_current_span("request"):
            assert await policy.acall(fetch) == "ok"

        (span,) = otel.spans.get_finished_spans()
        assert [e.name for e in span.events].count("retry_scheduled") == 2
        assert otel.value("recovery.retry.waited", strategy="afetch") == 1.0


class TestSagas:
    def test_a_failed_step_and_its_compensation(self, backend: Backend) -> None:
        undone: list[str] = []
        saga = Saga(
            "signup",
            [
                Step("account", lambda ctx: 1, lambda ctx, result: undone.append("a")),
                Step("email", lambda ctx: 1 / 0),
            ],
            compensation_retry=None,
        )
        ok = Saga("welcome", [Step("send", lambda ctx: 2)])

        with pytest.raises(SagaFailedError):
            saga.run(saga_id="s1")
        ok.run(saga_id="s2")
        ok.run(saga_id="s3")

        assert undone == ["a"]
        assert backend.series("recovery.saga.steps") == {
            ("signup", "account", "completed"): 1,
            ("signup", "email", "failed"): 1,
            ("welcome", "send", "completed"): 2,
        }
        assert backend.series("recovery.saga.compensations") == {
            ("signup", "account", "completed"): 1
        }
        assert backend.series("recovery.saga.runs") == {
            ("signup", "compensated"): 1,
            ("welcome", "completed"): 2,
        }


class TestDiscovery:
    def test_ejection_restore_health_and_removal(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        registry = ServiceRegistry(name="main", clock=clock)
        outlier = OutlierDetection(
            consecutive_failures=2, base_ejection_time=10, max_ejection_percent=100
        )
        a, b = registry.register("orders", ["a:1", "b:2"], outlier=outlier)

        registry.record_failure(a)
        registry.record_failure(a)
        assert backend.series("recovery.discovery.endpoint.ejected") == {
            ("main", "orders", "a:1"): 1,
            ("main", "orders", "b:2"): 0,
        }
        clock.advance(10)
        registry.endpoint("orders")
        registry.report_check(b, False)

        assert backend.series("recovery.discovery.ejections") == {("main", "orders"): 1}
        assert backend.series("recovery.discovery.endpoint.ejected") == {
            ("main", "orders", "a:1"): 0,
            ("main", "orders", "b:2"): 0,
        }
        assert backend.series("recovery.discovery.endpoint.healthy") == {
            ("main", "orders", "a:1"): 1,
            ("main", "orders", "b:2"): 0,
        }
        registry.deregister("orders", "a:1")
        assert backend.series("recovery.discovery.endpoint.healthy") == {
            ("main", "orders", "b:2"): 0,
        }


class TestBackup:
    def test_a_snapshot_counts_files_and_bytes(
        self, backend: Backend, tmp_path: Path, clock: FakeClock
    ) -> None:
        source = tmp_path / "data"
        source.mkdir()
        (source / "a.txt").write_bytes(b"x" * 1000)
        (source / "b.txt").write_bytes(b"y" * 234)
        repo = BackupRepository(tmp_path / "repo", clock=clock, host="h")
        repo.init()

        result = repo.backup(source, series="daily")

        labels = {"repository": repo.path, "series": "daily"}
        assert backend.value("recovery.backup.snapshots", **labels) == 1
        assert backend.value("recovery.backup.files", **labels) == 2
        assert (
            backend.value("recovery.backup.bytes", **labels, direction="read") == 1234
        )
        stored = backend.value("recovery.backup.bytes", **labels, direction="stored")
        assert stored == result.summary.bytes_stored > 0
