"""
The catalog: its table in the docs, its rules against the real events, and
the agreement of both backends on any sequence of events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import io
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.events import Event, EventEmitter
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerState
from recovery.policies.breaker_events import BreakerClosed, BreakerOpened, CallRejected
from recovery.policies.fallback import FallbackUsed
from recovery.policies.retry_events import AttemptFailed, GaveUp, RetryScheduled
from recovery.telemetry import BREAKER_STATE_CODES, METRICS
from recovery.telemetry._catalog import RULES, Rule, label_text

from .readers import Otel, Prom

DOCS = Path(__file__).parents[2] / "docs" / "telemetry.md"

EVENT_MODULES = (
    "recovery.policies.retry_events",
    "recovery.policies.breaker_events",
    "recovery.policies.fallback",
    "recovery.policies.timeout",
    "recovery.policies.bulkhead",
    "recovery.policies.ratelimit",
    "recovery.policies.hedging",
    "recovery.discovery.events",
    "recovery.transactions.saga_events",
    "recovery.backup.events",
)


def event_classes() -> dict[str, type[Event]]:
    """
    Return every event class of the package by kind.
    """
    for name in EVENT_MODULES:
        importlib.import_module(name)
    found: dict[str, type[Event]] = {}
    todo = list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("recovery."):
            found[cls.kind] = cls
    return found


class TestCatalog:
    def test_the_docs_table_lists_exactly_the_catalog(self) -> None:
        rows = re.findall(
            r"^\| `(recovery\.[a-z_.]+)` \| `([a-z_]+)` \| (\w+) \| (\w+) \| "
            r"([a-z, ]+) \| (.+) \|$",
            DOCS.read_text(),
            re.MULTILINE,
        )

        assert rows == [
            (
                m.name,
                m.prometheus_sample,
                m.instrument,
                m.unit,
                ", ".join(m.attributes),
                m.description,
            )
            for m in METRICS
        ]

    def test_names_are_unique_and_valid_in_both_forms(self) -> None:
        names = [m.name for m in METRICS]
        samples = [m.prometheus_sample for m in METRICS]

        assert len(set(names)) == len(names)
        assert len(set(samples)) == len(samples)
        assert all(re.fullmatch(r"recovery(\.[a-z_]+)+", n) for n in names)
        assert all(re.fullmatch(r"[a-z_]+", s) for s in samples)

    def test_every_rule_names_a_real_event_and_its_fields(self) -> None:
        classes = event_classes()

        for kind, rules in RULES.items():
            assert kind in classes, f"no event of kind {kind!r}"
            fields = {f.name for f in dataclasses.fields(classes[kind])}
            for rule in rules:
                assert set(rule.fields) <= fields, (kind, rule.metric.name)

    def test_every_metric_but_tracked_calls_is_fed_by_an_event(self) -> None:
        fed = {rule.metric.name for rules in RULES.values() for rule in rules}

        assert {m.name for m in METRICS} - fed == {"recovery.breaker.calls"}

    def test_every_breaker_state_has_a_code(self) -> None:
        assert {label_text(s) for s in BreakerState} == set(BREAKER_STATE_CODES)

    def test_a_rule_must_label_every_attribute(self) -> None:
        with pytest.raises(ValueError, match="attributes"):
            Rule("gave_up", "recovery.retry.gave_up", {"strategy": "source"})

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ("x", "x"),
            (None, ""),
            (True, "true"),
            (False, "false"),
            (BreakerState.HALF_OPEN, "half_open"),
            (3, "3"),
        ],
    )
    def test_label_text(self, value: object, text: str) -> None:
        assert label_text(value) == text


def test_the_docs_example_prints_what_the_docs_say() -> None:
    text = DOCS.read_text()
    example = text.split("## Example", 1)[1]
    code = re.findall(r"```python(?: runnable)?\n(.*?)```", example, re.DOTALL)[0]
    printed = re.findall(r"```text\n(.*?)```", example, re.DOTALL)[0]

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOCS), "exec"), {})

    assert out.getvalue() == printed


def test_a_tracked_breaker_is_held_weakly(prom: Prom) -> None:
    assert prom.link is not None
    breaker = CircuitBreaker("short-lived")
    prom.link.track(breaker)
    assert prom.series("recovery.breaker.calls") != {}

    del breaker
    gc.collect()

    assert prom.series("recovery.breaker.calls") == {}


def opened(name: str) -> BreakerOpened:
    return BreakerOpened(
        source=name,
        previous=BreakerState.CLOSED,
        state=BreakerState.OPEN,
        reason="r",
        retry_after=1.0,
    )


def closed(name: str) -> BreakerClosed:
    return BreakerClosed(
        source=name,
        previous=BreakerState.HALF_OPEN,
        state=BreakerState.CLOSED,
        reason="r",
    )


NAMES = st.sampled_from(["a", "b"])
PIPELINES = st.sampled_from([None, "p"])
EVENTS = st.one_of(
    st.builds(AttemptFailed, source=NAMES, pipeline=PIPELINES, attempt=st.just(1),
              error=st.just("E"), elapsed=st.just(0.0)),
    st.builds(RetryScheduled, source=NAMES, pipeline=PIPELINES, attempt=st.just(1),
              delay=st.sampled_from([0.25, 1.5]), error=st.just("E"),
              hinted=st.booleans()),
    st.builds(GaveUp, source=NAMES, pipeline=PIPELINES, attempts=st.just(2),
              elapsed=st.just(1.0), waited=st.just(1.0), error=st.just("E"),
              reason=st.just("r")),
    st.builds(CallRejected, source=NAMES, pipeline=PIPELINES,
              state=st.just(BreakerState.OPEN), retry_after=st.none()),
    st.builds(FallbackUsed, source=NAMES, pipeline=PIPELINES,
              tier=st.sampled_from(["alternative", "default"]),
              alternative=st.none(), staleness=st.just(0.0), error=st.just("E")),
    st.builds(opened, NAMES),
    st.builds(closed, NAMES),
)  # fmt: skip


def expected(events: list[Event]) -> dict[str, dict[tuple[str, ...], float]]:
    """
    Count *events* by hand, the way the docs describe each metric.
    """
    counts: dict[str, dict[tuple[str, ...], float]] = {}
    state: dict[tuple[str, ...], float] = {}

    def add(name: str, key: tuple[str, ...], value: float = 1) -> None:
        series = counts.setdefault(name, {})
        series[key] = series.get(key, 0) + value

    for e in events:
        pipe = e.pipeline or ""
        if isinstance(e, AttemptFailed):
            add("recovery.retry.attempts", (e.source, pipe, "failure"))
        elif isinstance(e, RetryScheduled):
            add("recovery.retry.retries", (e.source, pipe))
            add("recovery.retry.waited", (e.source, pipe), e.delay)
        elif isinstance(e, GaveUp):
            add("recovery.retry.gave_up", (e.source, pipe))
        elif isinstance(e, CallRejected):
            add("recovery.breaker.rejections", (e.source, pipe, "open"))
        elif isinstance(e, FallbackUsed):
            add("recovery.fallback.used", (e.source, pipe, e.tier))
        elif isinstance(e, BreakerOpened | BreakerClosed):
            entered = "open" if isinstance(e, BreakerOpened) else "closed"
            add("recovery.breaker.transitions", (e.source, entered))
            state[(e.source,)] = 2 if entered == "open" else 0
    return {**counts, "recovery.breaker.state": state}


def test_both_backends_count_any_sequence_of_events_as_by_hand() -> None:
    # One instrumentation for every example: each example uses its own
    # strategy names, so the series of earlier examples do not interfere.
    prom, tel = Prom().start(), Otel().start()
    examples = itertools.count()

    @settings(max_examples=20, deadline=None)
    @given(st.lists(EVENTS, max_size=30))
    def check(drawn: list[Event]) -> None:
        prefix = f"x{next(examples)}-"
        events = [dataclasses.replace(e, source=prefix + e.source) for e in drawn]
        emitter = EventEmitter()
        for event in events:
            emitter.emit(event)

        want = expected(events)
        for backend in (prom, tel):
            everything = {
                name: {k: v for k, v in series.items() if k[0].startswith(prefix)}
                for name, series in backend.all_series().items()
            }
            for name, series in want.items():
                assert everything.get(name, {}) == series, name

    try:
        check()
    finally:
        for backend in (prom, tel):
            assert backend.link is not None
            backend.link.uninstrument()
        tel.shutdown()
