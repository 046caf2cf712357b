"""
The catalog: every metric `recovery` exports, and which events feed it.

This is the single table the OpenTelemetry and Prometheus adapters both read,
so the two always export the same metrics with the same attributes. Events
are matched by their `kind` string, never by class: a family whose events
are absent (not installed, not imported, renamed) simply feeds nothing, and
a field an event lacks makes its rule skip that event instead of failing.

Names use OpenTelemetry's dotted form (``recovery.retry.attempts``); the
Prometheus form replaces the dots with underscores, adds the unit
(``_seconds``, ``_bytes``) and, for counters, ``_total``.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable, Mapping
from typing import Literal

from ..events import Event

__all__ = [
    "BREAKER_STATE_CODES",
    "METRICS",
    "RULES",
    "InstrumentKind",
    "Measurement",
    "Metric",
    "Rule",
    "Sink",
    "label_text",
    "metric",
]

InstrumentKind = Literal["counter", "gauge"]

_UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes"}


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    """
    One exported metric: its name, instrument, unit and attribute names.
    """

    name: str
    instrument: InstrumentKind
    unit: str
    attributes: tuple[str, ...]
    description: str

    @property
    def prometheus_name(self) -> str:
        """
        The Prometheus metric name, without the ``_total`` of counters.
        """
        base = self.name.replace(".", "_")
        suffix = _UNIT_SUFFIX.get(self.unit, "")
        return base if base.endswith(suffix) else base + suffix

    @property
    def prometheus_sample(self) -> str:
        """
        The name of the sample Prometheus scrapes (``..._total`` for counters).
        """
        name = self.prometheus_name
        return name + "_total" if self.instrument == "counter" else name


def _m(
    name: str, instrument: InstrumentKind, unit: str, attrs: str, description: str
) -> Metric:
    return Metric(name, instrument, unit, tuple(attrs.split()), description)


# The order here is the order of the table in docs/telemetry.md.
METRICS: tuple[Metric, ...] = (
    _m("recovery.retry.attempts", "counter", "1", "strategy pipeline outcome",
       "Attempts that failed, and attempts that succeeded after a failure."),
    _m("recovery.retry.retries", "counter", "1", "strategy pipeline",
       "Retries scheduled: a failed attempt that will be tried again."),
    _m("recovery.retry.waited", "counter", "s", "strategy pipeline",
       "Seconds slept before retries, in total."),
    _m("recovery.retry.recovered", "counter", "1", "strategy pipeline",
       "Calls that succeeded after at least one failed attempt."),
    _m("recovery.retry.gave_up", "counter", "1", "strategy pipeline",
       "Calls that failed for good after retrying."),
    _m("recovery.breaker.state", "gauge", "1", "breaker",
       "Breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled."),
    _m("recovery.breaker.transitions", "counter", "1", "breaker state",
       "State changes, by the state entered."),
    _m("recovery.breaker.rejections", "counter", "1", "breaker pipeline state",
       "Calls a breaker refused without running them."),
    _m("recovery.breaker.calls", "counter", "1", "breaker outcome",
       "Calls through a tracked breaker, read from its metrics()."),
    _m("recovery.fallback.used", "counter", "1", "strategy pipeline tier",
       "Answers served by a fallback tier instead of the primary."),
    _m("recovery.timeout.expired", "counter", "1", "strategy pipeline mode",
       "Calls abandoned or cancelled at their time limit."),
    _m("recovery.bulkhead.rejections", "counter", "1", "strategy pipeline reason",
       "Calls a bulkhead refused: no free slot, or the queue wait ran out."),
    _m("recovery.limiter.rejections", "counter", "1", "strategy pipeline",
       "Calls a rate limiter refused."),
    _m("recovery.hedging.hedges", "counter", "1", "strategy pipeline reason",
       "Extra attempts a hedging policy started."),
    _m("recovery.store.outages", "counter", "1", "strategy family",
       "Times a strategy lost its shared store and fell back to local state."),
    _m("recovery.discovery.endpoint.healthy", "gauge", "1",
       "registry service endpoint",
       "1 while an endpoint passes its active health checks, else 0."),
    _m("recovery.discovery.endpoint.ejected", "gauge", "1",
       "registry service endpoint",
       "1 while an endpoint is ejected for failed calls, else 0."),
    _m("recovery.discovery.ejections", "counter", "1", "registry service",
       "Endpoints ejected after consecutive failed calls."),
    _m("recovery.discovery.ejections_skipped", "counter", "1", "registry service",
       "Ejections refused because too many endpoints were already out."),
    _m("recovery.discovery.outages", "counter", "1", "registry service",
       "Times every endpoint of a service was down."),
    _m("recovery.discovery.failovers", "counter", "1", "registry service fallback",
       "Lookups served by a fallback service."),
    _m("recovery.saga.steps", "counter", "1", "saga step outcome",
       "Saga steps that completed or failed for good."),
    _m("recovery.saga.compensations", "counter", "1", "saga step outcome",
       "Compensations that completed or gave up."),
    _m("recovery.saga.runs", "counter", "1", "saga outcome",
       "Sagas that completed, were compensated, failed or got stuck."),
    _m("recovery.saga.recovered", "counter", "1", "saga",
       "Abandoned sagas claimed and finished by a recovery worker."),
    _m("recovery.backup.snapshots", "counter", "1", "repository series",
       "Snapshots written."),
    _m("recovery.backup.files", "counter", "1", "repository series",
       "Files in the snapshots written."),
    _m("recovery.backup.bytes", "counter", "By", "repository series direction",
       "Bytes read from the source, and bytes stored after deduplication."),
    _m("recovery.backup.restored_files", "counter", "1", "repository outcome",
       "Files a restore wrote (or found identical), refused or failed."),
    _m("recovery.backup.skipped_entries", "counter", "1", "repository",
       "Source entries left out of a snapshot."),
    _m("recovery.backup.corruptions", "counter", "1", "repository object",
       "Stored objects that failed their check and were not used."),
    _m("recovery.backup.forgotten_snapshots", "counter", "1", "repository",
       "Snapshots removed by forget."),
    _m("recovery.backup.pruned_bytes", "counter", "By", "repository",
       "Bytes freed by prune."),
    _m("recovery.backup.stale_locks", "counter", "1", "repository",
       "Locks of dead processes that were removed."),
)  # fmt: skip

_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """
    Return the catalog entry named *name* (raises KeyError if there is none).
    """
    return _BY_NAME[name]


BREAKER_STATE_CODES: Mapping[str, float] = {
    "closed": 0.0,
    "half_open": 1.0,
    "open": 2.0,
    "forced_open": 3.0,
    "disabled": 4.0,
}

# None as a measurement's value removes the gauge series of those labels.
Measurement = tuple[float | None, tuple[str, ...]]


def label_text(value: object) -> str:
    """
    Return *value* as a metric label: enums by value, None as the empty string.
    """
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


_MISSING = object()
_NUMBERS = (int, float)
# Label tuples remembered per rule; beyond this the values are too varied.
_LIMIT = 4096


class Rule:
    """
    How one event kind feeds one metric: which fields become which attributes.

    `labels` maps each of the metric's attributes to an event field, or to
    a fixed text when written ``"=text"``. `value` is a number, or the name
    of a numeric field; with `codes`, the field's label text is looked up
    there instead (gauges of states). `remove` makes the rule delete the
    gauge series instead of setting it.
    """

    __slots__ = (
        "_codes",
        "_const",
        "_fields",
        "_labels",
        "_read",
        "_value",
        "kind",
        "metric",
        "remove",
    )

    def __init__(
        self,
        kind: str,
        metric_name: str,
        labels: Mapping[str, str],
        *,
        value: float | str = 1,
        codes: Mapping[str, float] | None = None,
        remove: bool = False,
    ) -> None:
        self.kind = kind
        self.metric = _BY_NAME[metric_name]
        if set(labels) != set(self.metric.attributes):
            raise ValueError(
                f"rule for {kind!r} labels {sorted(labels)}, but "
                f"{metric_name} has attributes {sorted(self.metric.attributes)}"
            )

        # (field, "") reads a field; (None, text) is a fixed label.
        self._fields: tuple[tuple[str | None, str], ...] = tuple(
            (None, spec[1:]) if spec.startswith("=") else (spec, "")
            for spec in (labels[name] for name in self.metric.attributes)
        )
        self._value = value
        self._const = None if isinstance(value, str) else value
        self._codes = codes
        self.remove = remove
        # A tuple of every label field (a lone value when there is one).
        names = [n for n, _ in self._fields if n]
        if not names:
            raise ValueError(f"rule for {kind!r} reads no field of the event")
        self._read = operator.attrgetter(*names)
        self._labels: dict[object, tuple[str, ...]] = {}

    @property
    def fields(self) -> tuple[str, ...]:
        """
        The event fields this rule reads.
        """
        names = [name for name, _ in self._fields if name is not None]
        if isinstance(self._value, str):
            names.append(self._value)
        return tuple(names)

    def measure(self, event: Event) -> Measurement | None:
        """
        Return the value and label values for *event*, or None to skip it.
        """
        # The label fields, read in one C call, key a cache of finished
        # labels: events of one strategy repeat the same few values.
        try:
            key = self._read(event)
            labels = self._labels.get(key)
        except (AttributeError, TypeError):
            # A missing field skips the event; an unhashable one (no event
            # of the package has one) is labelled without the cache.
            key, labels = None, self._label(event)
        if labels is None:
            labels = self._label(event)
            if labels is not None and key is not None and len(self._labels) < _LIMIT:
                self._labels[key] = labels
        if labels is None:
            return None

        if self.remove:
            return None, labels
        if self._const is not None:
            return self._const, labels
        value = self._number(event)
        return None if value is None else (value, labels)

    def _label(self, event: Event) -> tuple[str, ...] | None:
        labels: list[str] = []
        for name, text in self._fields:
            if name is None:
                labels.append(text)
                continue
            found = getattr(event, name, _MISSING)
            if found is _MISSING:
                return None
            labels.append(label_text(found))
        return tuple(labels)

    def _number(self, event: Event) -> float | None:
        spec = self._value
        if not isinstance(spec, str):
            return spec

        found = getattr(event, spec, None)
        if self._codes is not None:
            return self._codes.get(label_text(found))
        kind = type(found)
        if kind is float or kind is int:
            return found
        # A numeric subclass is fine; a bool is a flag, not a quantity.
        if isinstance(found, _NUMBERS) and kind is not bool:
            return found
        return None


_POLICY = {"strategy": "source", "pipeline": "pipeline"}
_BREAKER_STATE_KINDS = (
    "breaker_state_changed",
    "breaker_opened",
    "breaker_half_opened",
    "breaker_closed",
    "breaker_forced_open",
    "breaker_disabled",
    "breaker_reset",
)


# An endpoint gauge is set to a number, left alone (None), or removed.
_Gauge = float | Literal["remove"] | None


def _endpoint(kind: str, *, healthy: _Gauge, ejected: _Gauge) -> list[Rule]:
    labels = {"registry": "source", "service": "service", "endpoint": "address"}
    rules = []
    for name, value in (
        ("recovery.discovery.endpoint.healthy", healthy),
        ("recovery.discovery.endpoint.ejected", ejected),
    ):
        if value == "remove":
            rules.append(Rule(kind, name, labels, remove=True))
        elif value is not None:
            rules.append(Rule(kind, name, labels, value=value))
    return rules


def _rules() -> list[Rule]:
    reg = {"registry": "source", "service": "service"}
    rules = [
        Rule("attempt_failed", "recovery.retry.attempts",
             {**_POLICY, "outcome": "=failure"}),
        Rule("recovered", "recovery.retry.attempts",
             {**_POLICY, "outcome": "=success"}),
        Rule("recovered", "recovery.retry.recovered", _POLICY),
        Rule("retry_scheduled", "recovery.retry.retries", _POLICY),
        Rule("retry_scheduled", "recovery.retry.waited", _POLICY, value="delay"),
        Rule("gave_up", "recovery.retry.gave_up", _POLICY),
        Rule("breaker_call_rejected", "recovery.breaker.rejections",
             {"breaker": "source", "pipeline": "pipeline", "state": "state"}),
        Rule("breaker_store_unavailable", "recovery.store.outages",
             {"strategy": "source", "family": "=breaker"}),
        Rule("fallback_used", "recovery.fallback.used", {**_POLICY, "tier": "tier"}),
        Rule("call_timed_out", "recovery.timeout.expired",
             {**_POLICY, "mode": "mode"}),
        Rule("bulkhead_rejected", "recovery.bulkhead.rejections",
             {**_POLICY, "reason": "reason"}),
        Rule("rate_limited", "recovery.limiter.rejections", _POLICY),
        Rule("limiter_store_failed", "recovery.store.outages",
             {"strategy": "source", "family": "=limiter"}),
        Rule("hedge_started", "recovery.hedging.hedges",
             {**_POLICY, "reason": "reason"}),
        Rule("endpoint_ejected", "recovery.discovery.ejections", reg),
        Rule("ejection_skipped", "recovery.discovery.ejections_skipped", reg),
        Rule("all_endpoints_down", "recovery.discovery.outages", reg),
        Rule("service_failed_over", "recovery.discovery.failovers",
             {**reg, "fallback": "fallback"}),
        Rule("shared_state_unavailable", "recovery.store.outages",
             {"strategy": "source", "family": "=discovery"}),
        *_endpoint("endpoint_registered", healthy=1.0, ejected=0.0),
        *_endpoint("endpoint_healthy", healthy=1.0, ejected=None),
        *_endpoint("endpoint_unhealthy", healthy=0.0, ejected=None),
        *_endpoint("endpoint_ejected", healthy=None, ejected=1.0),
        *_endpoint("endpoint_restored", healthy=None, ejected=0.0),
        *_endpoint("endpoint_removed", healthy="remove", ejected="remove"),
        *_endpoint("endpoint_expired", healthy="remove", ejected="remove"),
    ]  # fmt: skip

    for kind in _BREAKER_STATE_KINDS:
        rules.append(Rule(kind, "recovery.breaker.state", {"breaker": "source"},
                          value="state", codes=BREAKER_STATE_CODES))  # fmt: skip
        rules.append(Rule(kind, "recovery.breaker.transitions",
                          {"breaker": "source", "state": "state"}))  # fmt: skip

    saga = {"saga": "source"}
    for kind, name, outcome in (
        ("saga_step_completed", "recovery.saga.steps", "completed"),
        ("saga_step_failed", "recovery.saga.steps", "failed"),
        ("saga_compensation_ran", "recovery.saga.compensations", "completed"),
        ("saga_compensation_failed", "recovery.saga.compensations", "failed"),
    ):
        labels = {**saga, "step": "step", "outcome": "=" + outcome}
        rules.append(Rule(kind, name, labels))
    for kind, outcome in (
        ("saga_completed", "completed"),
        ("saga_compensated", "compensated"),
        ("saga_failed", "failed"),
        ("saga_stuck", "stuck"),
    ):
        labels = {**saga, "outcome": "=" + outcome}
        rules.append(Rule(kind, "recovery.saga.runs", labels))
    rules.append(Rule("saga_recovered", "recovery.saga.recovered", saga))

    return rules + _backup_rules()


def _backup_rules() -> list[Rule]:
    repo = {"repository": "source"}
    series = {**repo, "series": "series"}
    written = "backup_snapshot_written"
    restored = "backup_restore_completed"
    return [
        Rule(written, "recovery.backup.snapshots", series),
        Rule(written, "recovery.backup.files", series, value="files"),
        Rule(written, "recovery.backup.bytes", {**series, "direction": "=read"},
             value="bytes_read"),
        Rule(written, "recovery.backup.bytes", {**series, "direction": "=stored"},
             value="bytes_stored"),
        Rule(restored, "recovery.backup.restored_files",
             {**repo, "outcome": "=restored"}, value="files"),
        Rule(restored, "recovery.backup.restored_files",
             {**repo, "outcome": "=refused"}, value="refused"),
        Rule(restored, "recovery.backup.restored_files",
             {**repo, "outcome": "=failed"}, value="failed"),
        Rule("backup_entry_skipped", "recovery.backup.skipped_entries", repo),
        Rule("backup_corrupt_data_found", "recovery.backup.corruptions",
             {**repo, "object": "object_kind"}),
        Rule("backup_snapshots_forgotten", "recovery.backup.forgotten_snapshots",
             repo, value="removed"),
        Rule("backup_prune_completed", "recovery.backup.pruned_bytes", repo,
             value="bytes_freed"),
        Rule("backup_stale_lock_removed", "recovery.backup.stale_locks", repo),
    ]  # fmt: skip


def _by_kind(rules: list[Rule]) -> dict[str, tuple[Rule, ...]]:
    table: dict[str, list[Rule]] = {}
    for rule in rules:
        table.setdefault(rule.kind, []).append(rule)
    return {kind: tuple(found) for kind, found in table.items()}


RULES: Mapping[str, tuple[Rule, ...]] = _by_kind(_rules())

# Measurements are routed to a sink per metric: a function of value and labels.
Sink = Callable[[float | None, tuple[str, ...]], None]
