"""
Retention policies: which snapshots `forget` keeps, and why.

The rules follow restic's semantics, applied to each series on its own:

- `keep_last` *n* keeps the *n* newest snapshots;
- `keep_within` *seconds* keeps every snapshot created within that long of
  the series' newest snapshot (not of "now", so a paused schedule does not
  empty a series);
- `keep_hourly`, `keep_daily`, `keep_weekly` (ISO weeks), `keep_monthly`
  and `keep_yearly` *n* walk the series from newest to oldest and keep a
  snapshot whenever its calendar bucket differs from the last bucket that
  rule kept, until *n* buckets are kept: the newest snapshot of each of the
  last *n* distinct buckets;
- `keep_tags` keeps every snapshot carrying any of the tags.

A snapshot is kept if any rule keeps it, and lists every rule that did.
The newest snapshot of each series is always kept. Calendar buckets are
computed in the policy's time zone (UTC unless told otherwise) from the
snapshot's recorded creation time, so the machine's zone and its daylight
saving rules never change the answer. Hourly buckets follow real hours:
the hour repeated when clocks go back counts twice.

`RetentionPolicy.plan` is pure: it takes snapshots and returns a plan; the
repository carries the plan out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._validation import require_int, require_non_negative
from ..errors import ConfigurationError
from .manifest import Snapshot

__all__ = ["KeptSnapshot", "RetentionPlan", "RetentionPolicy", "RetentionRules"]

_Bucket = Callable[[dt.datetime], tuple[int, ...]]

_BUCKETS: tuple[tuple[str, _Bucket], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour, t.fold)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
)


class RetentionRules(TypedDict, total=False):
    """
    The rules of a `RetentionPolicy`, as keyword arguments.
    """

    keep_last: int
    keep_within: float
    keep_hourly: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    keep_yearly: int
    keep_tags: frozenset[str]
    tz: str | ZoneInfo


@dataclass(frozen=True, slots=True)
class KeptSnapshot:
    """
    A snapshot the plan keeps, with every reason that keeps it.
    """

    snapshot: Snapshot
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """
    What a policy decides: the snapshots kept (with reasons) and removed.

    Both lists are ordered newest first within each series, series by name.
    """

    keep: tuple[KeptSnapshot, ...]
    remove: tuple[Snapshot, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """
    Which snapshots to keep; every count must be >= 0 (0 turns a rule off).

    `keep_within` is in seconds. `tz` names the zone for calendar buckets
    (an IANA name such as ``"Europe/Berlin"``, or a `ZoneInfo`).
    """

    keep_last: int = 0
    keep_within: float = 0.0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_tags: frozenset[str] = field(default_factory=frozenset)
    tz: str | ZoneInfo = "UTC"

    def __post_init__(self) -> None:
        for name in ("keep_last", *(f"keep_{bucket}" for bucket, _ in _BUCKETS)):
            require_int(name, getattr(self, name))
        require_non_negative("keep_within", self.keep_within)
        tags: object = self.keep_tags
        if isinstance(tags, str):
            raise ConfigurationError(
                f"keep_tags must be a collection of tags, got the string "
                f"{self.keep_tags!r}"
            )
        object.__setattr__(self, "keep_tags", frozenset(self.keep_tags))
        object.__setattr__(self, "tz", _zone(self.tz))
        if not self.has_rules():
            raise ConfigurationError(
                "a retention policy needs at least one rule (keep_last, "
                "keep_within, keep_hourly...keep_yearly or keep_tags) > 0; "
                "got none, which would remove every snapshot but the newest"
            )

    def has_rules(self) -> bool:
        """
        Return whether any rule is switched on.
        """
        counts = [self.keep_last, *(self._count(name) for name, _ in _BUCKETS)]
        return any(counts) or self.keep_within > 0 or bool(self.keep_tags)

    def plan(self, snapshots: Iterable[Snapshot]) -> RetentionPlan:
        """
        Return which *snapshots* to keep and which to remove, per series.
        """
        by_series: dict[str, list[Snapshot]] = {}
        for snapshot in snapshots:
            by_series.setdefault(snapshot.series, []).append(snapshot)

        keep: list[KeptSnapshot] = []
        remove: list[Snapshot] = []
        for series in sorted(by_series):
            kept, removed = self._plan_series(by_series[series])
            keep.extend(kept)
            remove.extend(removed)

        return RetentionPlan(tuple(keep), tuple(remove))

    def _count(self, bucket: str) -> int:
        count: int = getattr(self, f"keep_{bucket}")
        return count

    def _plan_series(
        self, snapshots: Sequence[Snapshot]
    ) -> tuple[list[KeptSnapshot], list[Snapshot]]:
        # Newest first; the id breaks ties so equal times give one answer.
        ordered = sorted(snapshots, key=lambda s: (s.created_at, s.id), reverse=True)
        zone = self.tz
        assert isinstance(zone, ZoneInfo)
        newest = ordered[0].created_at
        remaining = {name: self._count(name) for name, _ in _BUCKETS}
        last: dict[str, tuple[int, ...] | None] = {name: None for name, _ in _BUCKETS}

        kept: list[KeptSnapshot] = []
        removed: list[Snapshot] = []
        for position, snapshot in enumerate(ordered):
            reasons: list[str] = []
            if position == 0:
                reasons.append("newest of its series")
            if position < self.keep_last:
                reasons.append("last")
            if self.keep_within and newest - snapshot.created_at <= self.keep_within:
                reasons.append("within")
            if self.keep_tags.intersection(snapshot.tags):
                reasons.append("tags")

            local = dt.datetime.fromtimestamp(snapshot.created_at, zone)
            for name, bucket_of in _BUCKETS:
                if remaining[name] <= 0:
                    continue
                bucket = bucket_of(local)
                if bucket != last[name]:
                    last[name] = bucket
                    remaining[name] -= 1
                    reasons.append(name)

            if reasons:
                kept.append(KeptSnapshot(snapshot, tuple(reasons)))
            else:
                removed.append(snapshot)

        return kept, removed


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"tz must be an IANA time zone name such as 'UTC' or "
            f"'Europe/Berlin', got {tz!r}"
        ) from exc
