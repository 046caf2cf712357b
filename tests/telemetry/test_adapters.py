"""
The adapters' life cycle, span events, missing extras and odd events.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar, cast

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from recovery.errors import ConfigurationError
from recovery.events import Event, EventEmitter
from recovery.policies.backoff import constant
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState
from recovery.policies.breaker_events import BreakerOpened
from recovery.policies.bulkhead import BulkheadRejected
from recovery.policies.retry import Retry
from recovery.telemetry import otel, prometheus
from recovery.testing import FakeClock

from .readers import Otel, Prom
from .test_strategies import failing


class TestLifeCycle:
    def test_uninstrument_removes_every_prometheus_metric(
        self, clock: FakeClock
    ) -> None:
        found = Prom().start()
        Retry(backoff=constant(0), clock=clock).call(failing(1))
        assert b"recovery_retry_retries_total" in generate_latest(found.registry)
        assert found.link is not None

        found.link.uninstrument()
        found.link.uninstrument()
        Retry(backoff=constant(0), clock=clock).call(failing(1))

        assert b"recovery" not in generate_latest(found.registry)
        assert not found.link.active

    def test_uninstrument_stops_otel_reporting(self, clock: FakeClock) -> None:
        found = Otel().start()
        CircuitBreaker("b", failure_threshold=1, clock=clock).force_open()
        Retry(backoff=constant(1), clock=clock, name="r").call(failing(1))
        assert found.value("recovery.retry.retries", strategy="r") == 1
        assert found.link is not None

        found.link.uninstrument()
        Retry(backoff=constant(1), clock=clock, name="r").call(failing(1))

        assert found.all_series() == {}
        found.shutdown()

    def test_a_registry_takes_one_instrumentation_at_a_time(self) -> None:
        found = Prom().start()
        assert found.link is not None

        with pytest.raises(ConfigurationError, match="already holds"):
            prometheus.instrument(found.registry)
        found.link.uninstrument()
        with prometheus.instrument(found.registry) as again:
            assert again.active

        assert not again.active

    def test_a_meter_provider_takes_one_instrumentation_at_a_time(self) -> None:
        found = Otel().start()
        assert found.link is not None

        with pytest.raises(ConfigurationError, match="already instrumented"):
            otel.instrument(found.provider)
        found.link.uninstrument()
        otel.instrument(found.provider).uninstrument()
        found.shutdown()

    def test_the_default_registry_is_used_and_left_clean(
        self, clock: FakeClock
    ) -> None:
        with prometheus.instrument():
            Retry(backoff=constant(0), clock=clock, name="dflt").call(failing(1))
            value = REGISTRY.get_sample_value(
                "recovery_retry_retries_total", {"strategy": "dflt", "pipeline": ""}
            )

        assert value == 1
        assert b"recovery_" not in generate_latest(REGISTRY)

    def test_two_backends_at_once_both_count(self, clock: FakeClock) -> None:
        first, second = Prom().start(), Otel().start()

        Retry(attempts=2, backoff=constant(0), clock=clock, name="r").call(failing(1))

        assert first.value("recovery.retry.retries", strategy="r") == 1
        assert second.value("recovery.retry.retries", strategy="r") == 1
        for link in (first.link, second.link):
            assert link is not None
            link.uninstrument()
        second.shutdown()


class TestMissingExtras:
    def test_prometheus_names_its_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "prometheus_client", None)

        with pytest.raises(ImportError, match=r"recovery\[prometheus\]"):
            prometheus.instrument()

    def test_otel_names_its_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "opentelemetry", None)

        with pytest.raises(ImportError, match=r"recovery\[otel\]"):
            otel.instrument()


class TestSpanEvents:
    def test_events_go_to_the_current_span_without_call_arguments(
        self, otel: Otel, clock: FakeClock
    ) -> None:
        policy = Retry(backoff=constant(0.5), clock=clock, name="fetch")
        calls = iter([ConnectionError("password=s3cr3t"), None])

        def fetch(token: str) -> str:
            error = next(calls)
            if error is not None:
                raise error
            return token

        with otel.tracer.start_as_current_span("checkout"):
            assert policy.call(fetch, "s3cr3t-token") == "s3cr3t-token"

        (span,) = otel.spans.get_finished_spans()
        names = [event.name for event in span.events]
        assert names == ["attempt_failed", "retry_scheduled", "recovered"]
        assert dict(span.events[1].attributes or {}) == {
            "source": "fetch",
            "attempt": 1,
            "delay": 0.5,
            "error": "ConnectionError",
            "hinted": False,
        }
        texts = [str(v) for e in span.events for v in (e.attributes or {}).values()]
        assert not [text for text in texts if "s3cr3t" in text]

    def test_enums_become_their_values(self, otel: Otel, clock: FakeClock) -> None:
        breaker = CircuitBreaker("pay", failure_threshold=1, clock=clock)

        with otel.tracer.start_as_current_span("call"):
            breaker.force_open()

        (span,) = otel.spans.get_finished_spans()
        attributes = dict(span.events[0].attributes or {})
        assert (attributes["previous"], attributes["state"]) == (
            "closed",
            "forced_open",
        )

    def test_odd_fields_are_made_safe(self, otel: Otel) -> None:
        with otel.tracer.start_as_current_span("call"):
            EventEmitter().emit(
                OddEvent(source="odd", names=("a", "b"), broken=Unprintable())
            )

        (span,) = otel.spans.get_finished_spans()
        assert dict(span.events[0].attributes or {}) == {
            "source": "odd",
            "names": ("a", "b"),
            "broken": "<Unprintable>",
        }

    def test_without_a_span_only_metrics_are_recorded(
        self, otel: Otel, clock: FakeClock
    ) -> None:
        Retry(backoff=constant(0), clock=clock, name="r").call(failing(1))

        assert otel.value("recovery.retry.retries", strategy="r") == 1
        assert otel.spans.get_finished_spans() == ()

    def test_span_events_can_be_turned_off(self, clock: FakeClock) -> None:
        found = Otel().start(span_events=False)

        with found.tracer.start_as_current_span("call"):
            Retry(backoff=constant(0), clock=clock, name="r").call(failing(1))

        (span,) = found.spans.get_finished_spans()
        assert span.events == ()
        assert found.value("recovery.retry.retries", strategy="r") == 1
        assert found.link is not None
        found.link.uninstrument()
        found.shutdown()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OddEvent(Event):
    names: tuple[str, ...]
    broken: object

    kind: ClassVar[str] = "odd_event_for_tests"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class IncompleteRejection(Event):
    # The kind of a real event, but without its `reason` field.
    kind: ClassVar[str] = "bulkhead_rejected"


class TestOddEvents:
    def test_an_event_missing_a_field_is_skipped(self, backend: Prom | Otel) -> None:
        emitter = EventEmitter()

        emitter.emit(IncompleteRejection(source="db"))
        emitter.emit(BulkheadRejected(source="db", reason="full", active=1, queued=0))

        assert backend.series("recovery.bulkhead.rejections") == {("db", "", "full"): 1}

    def test_an_unknown_state_sets_no_gauge(self, backend: Prom | Otel) -> None:
        event = BreakerOpened(
            source="b",
            previous=BreakerState.CLOSED,
            state=cast(BreakerState, "sideways"),
            reason="test",
            retry_after=1.0,
        )

        EventEmitter().emit(event)

        assert backend.series("recovery.breaker.state") == {}
        assert backend.series("recovery.breaker.transitions") == {("b", "sideways"): 1}

    def test_a_breaker_that_cannot_be_read_is_left_out(
        self, prom: Prom, caplog: pytest.LogCaptureFixture
    ) -> None:
        assert prom.link is not None
        broken = Unreadable()
        prom.link.track(cast(CircuitBreaker, broken))

        with caplog.at_level(logging.ERROR, "recovery.telemetry"):
            assert prom.series("recovery.breaker.calls") == {}

        assert "reading breaker 'broken' for telemetry failed" in caplog.text


class Unreadable:
    name = "broken"

    def metrics(self) -> None:
        raise RuntimeError("store on fire")


def test_threads_counting_at_once_lose_nothing(clock: FakeClock) -> None:
    prom, tel = Prom().start(), Otel().start()
    policy = Retry(attempts=2, backoff=constant(0), clock=clock, name="shared")
    threads, calls = 4, 50

    def work() -> None:
        for _ in range(calls):
            policy.call(failing(1))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    for backend in (prom, tel):
        assert backend.series("recovery.retry.attempts") == {
            ("shared", "", "failure"): threads * calls,
            ("shared", "", "success"): threads * calls,
        }
        assert backend.link is not None
        backend.link.uninstrument()
    tel.shutdown()


@pytest.mark.slow
@pytest.mark.integration
def test_prometheus_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """
    Two worker processes count into the client's multiprocess files.
    """
    worker = Path(__file__).with_name("multiprocess_worker.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(tmp_path), "shared"], env=env
        )
        for _ in range(2)
    ]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0]

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    labels = {"strategy": "shared", "pipeline": ""}

    assert registry.get_sample_value("recovery_retry_retries_total", labels) == 2
    assert (
        registry.get_sample_value("recovery_retry_waited_seconds_total", labels) == 0.5
    )
