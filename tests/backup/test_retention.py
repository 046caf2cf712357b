"""
Retention: restic's rules, per series, in an explicit time zone.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.backup import BackupRepository, RetentionPolicy, Snapshot
from recovery.errors import ConfigurationError
from recovery.testing import FakeClock

UTC = dt.UTC


def at(text: str) -> float:
    """Seconds since the epoch of an ISO time written in UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def snap(
    name: str, created_at: float, *, series: str = "s", tags: tuple[str, ...] = ()
) -> Snapshot:
    return Snapshot(
        id=name, series=series, created_at=created_at, host="h", source="/", tags=tags
    )


def kept(
    policy: RetentionPolicy, snapshots: list[Snapshot]
) -> dict[str, tuple[str, ...]]:
    return {k.snapshot.id: k.reasons for k in policy.plan(snapshots).keep}


@pytest.fixture
def machine_zone() -> Iterator[None]:
    """Run under a far-off machine time zone, to prove it does not matter."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


class TestRules:
    def test_keep_last(self) -> None:
        snapshots = [snap(f"s{i}", 1000.0 + i) for i in range(5)]

        plan = RetentionPolicy(keep_last=2).plan(snapshots)

        assert [k.snapshot.id for k in plan.keep] == ["s4", "s3"]
        assert [s.id for s in plan.remove] == ["s2", "s1", "s0"]

    def test_keep_daily_keeps_newest_of_each_day(self) -> None:
        snapshots = [
            snap("mon-early", at("2026-06-01T01:00")),
            snap("mon-late", at("2026-06-01T23:00")),
            snap("tue", at("2026-06-02T12:00")),
            snap("wed-early", at("2026-06-03T00:10")),
            snap("wed-late", at("2026-06-03T09:00")),
        ]

        result = kept(RetentionPolicy(keep_daily=2), snapshots)

        assert result == {
            "wed-late": ("newest of its series", "daily"),
            "tue": ("daily",),
        }

    def test_weekly_uses_iso_weeks(self) -> None:
        # 2026-01-04 is a Sunday (ISO week 1); 2026-01-05 a Monday (week 2).
        snapshots = [
            snap("sat", at("2026-01-03T12:00")),
            snap("sun", at("2026-01-04T12:00")),
            snap("mon", at("2026-01-05T12:00")),
        ]

        assert set(kept(RetentionPolicy(keep_weekly=5), snapshots)) == {"mon", "sun"}

    def test_monthly_and_yearly(self) -> None:
        snapshots = [
            snap("2025-12", at("2025-12-31T12:00")),
            snap("2026-01a", at("2026-01-02T12:00")),
            snap("2026-01b", at("2026-01-30T12:00")),
            snap("2026-02", at("2026-02-01T12:00")),
        ]

        assert set(kept(RetentionPolicy(keep_monthly=2), snapshots)) == {
            "2026-02",
            "2026-01b",
        }
        assert set(kept(RetentionPolicy(keep_yearly=5), snapshots)) == {
            "2026-02",
            "2025-12",
        }

    def test_keep_within_is_relative_to_the_newest_snapshot(self) -> None:
        snapshots = [snap("old", 0.0), snap("mid", 9_000.0), snap("new", 10_000.0)]

        result = kept(RetentionPolicy(keep_within=1_000), snapshots)

        assert set(result) == {"mid", "new"}

    def test_keep_tags(self) -> None:
        snapshots = [
            snap("a", 1.0, tags=("release",)),
            snap("b", 2.0, tags=("nightly",)),
            snap("c", 3.0),
        ]

        result = kept(RetentionPolicy(keep_tags=frozenset({"release"})), snapshots)

        assert result == {"a": ("tags",), "c": ("newest of its series",)}

    def test_every_reason_is_listed(self) -> None:
        snapshots = [
            snap("old", at("2026-06-01T12:00")),
            snap("new", at("2026-06-02T12:00")),
        ]
        policy = RetentionPolicy(keep_last=1, keep_daily=2, keep_monthly=1)

        result = kept(policy, snapshots)

        assert result["new"] == ("newest of its series", "last", "daily", "monthly")
        assert result["old"] == ("daily",)

    def test_series_are_independent(self) -> None:
        snapshots = [
            snap("a1", 1.0, series="a"),
            snap("a2", 2.0, series="a"),
            snap("b1", 3.0, series="b"),
        ]

        plan = RetentionPolicy(keep_last=1).plan(snapshots)

        assert [k.snapshot.id for k in plan.keep] == ["a2", "b1"]
        assert [s.id for s in plan.remove] == ["a1"]

    def test_order_is_by_creation_time_not_id(self) -> None:
        snapshots = [snap("zzz", 1.0), snap("aaa", 2.0)]

        assert set(kept(RetentionPolicy(keep_last=1), snapshots)) == {"aaa"}


class TestTimeZones:
    # Berlin moved to summer time at 2026-03-29 01:00 UTC (02:00 -> 03:00
    # local) and back at 2026-10-25 01:00 UTC (03:00 -> 02:00 local).
    SPRING: ClassVar[list[Snapshot]] = [
        snap("sat-noon", at("2026-03-28T12:00")),  # Berlin: Sat 13:00 CET
        snap("sat-late-utc", at("2026-03-28T23:30")),  # Berlin: Sun 00:30 CET
        snap("sun-night", at("2026-03-29T21:30")),  # Berlin: Sun 23:30 CEST
    ]

    def test_daily_buckets_follow_the_named_zone(self, machine_zone: None) -> None:
        berlin = RetentionPolicy(keep_daily=2, tz="Europe/Berlin")
        utc = RetentionPolicy(keep_daily=2)

        assert set(kept(berlin, self.SPRING)) == {"sun-night", "sat-noon"}
        assert set(kept(utc, self.SPRING)) == {"sun-night", "sat-late-utc"}

    def test_repeated_hour_in_autumn_counts_as_two_hours(
        self, machine_zone: None
    ) -> None:
        snapshots = [
            snap("first-0230", at("2026-10-25T00:30")),  # 02:30 CEST
            snap("second-0230", at("2026-10-25T01:30")),  # 02:30 CET
            snap("0130", at("2026-10-24T23:30")),  # 01:30 CEST
        ]

        result = kept(RetentionPolicy(keep_hourly=2, tz="Europe/Berlin"), snapshots)

        assert set(result) == {"second-0230", "first-0230"}

    def test_daily_on_the_25_hour_day(self, machine_zone: None) -> None:
        snapshots = [
            snap("sun-0030", at("2026-10-24T22:30")),  # Sun 00:30 CEST
            snap("sun-2330", at("2026-10-25T22:30")),  # Sun 23:30 CET
            snap("sat", at("2026-10-24T12:00")),  # Sat 14:00 CEST
        ]

        result = kept(RetentionPolicy(keep_daily=2, tz="Europe/Berlin"), snapshots)

        assert set(result) == {"sun-2330", "sat"}


class TestConfiguration:
    def test_a_policy_without_rules_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="at least one rule"):
            RetentionPolicy()

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"keep_last": -1}, "keep_last"),
            ({"keep_daily": 1.5}, "keep_daily"),
            ({"keep_within": -1.0}, "keep_within"),
            ({"keep_last": 1, "tz": "Mars/Olympus"}, "tz"),
            ({"keep_tags": "release"}, "keep_tags"),
        ],
    )
    def test_bad_values_name_the_parameter(
        self, kwargs: dict[str, object], name: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=name):
            RetentionPolicy(**kwargs)  # type: ignore[arg-type]


series_names = st.sampled_from(["a", "b", "c"])
snapshot_lists = st.lists(
    st.tuples(series_names, st.integers(0, 4 * 365 * 86400)),
    min_size=1,
    max_size=40,
    unique_by=lambda pair: pair[1],
).map(
    lambda pairs: [
        snap(f"id{i}", 1_600_000_000.0 + t, series=s) for i, (s, t) in enumerate(pairs)
    ]
)


class TestProperties:
    @settings(deadline=None)
    @given(snapshot_lists, st.integers(1, 10))
    def test_keep_last_keeps_exactly_the_n_newest_per_series(
        self, snapshots: list[Snapshot], n: int
    ) -> None:
        plan = RetentionPolicy(keep_last=n).plan(snapshots)

        expected = set()
        for series in {s.series for s in snapshots}:
            members = sorted(
                (s for s in snapshots if s.series == series),
                key=lambda s: s.created_at,
                reverse=True,
            )
            expected |= {s.id for s in members[:n]}
        assert {k.snapshot.id for k in plan.keep} == expected

    @settings(deadline=None)
    @given(
        snapshot_lists,
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    )
    def test_plan_invariants(
        self, snapshots: list[Snapshot], last: int, daily: int, monthly: int, tz: str
    ) -> None:
        policy = RetentionPolicy(
            keep_last=last, keep_daily=daily, keep_monthly=monthly + 1, tz=tz
        )

        plan = policy.plan(snapshots)

        kept_ids = [k.snapshot.id for k in plan.keep]
        removed_ids = [s.id for s in plan.remove]
        assert sorted(kept_ids + removed_ids) == sorted(s.id for s in snapshots)
        assert not set(kept_ids) & set(removed_ids)
        assert all(k.reasons for k in plan.keep)
        for series in {s.series for s in snapshots}:
            newest = max(
                (s for s in snapshots if s.series == series), key=lambda s: s.created_at
            )
            assert newest.id in kept_ids

    @settings(deadline=None)
    @given(snapshot_lists, st.integers(1, 6))
    def test_keep_daily_keeps_one_per_distinct_day(
        self, snapshots: list[Snapshot], n: int
    ) -> None:
        only_a = [s for s in snapshots if s.series == "a"] or snapshots[:1]
        series = only_a[0].series
        members = [s for s in snapshots if s.series == series]

        plan = RetentionPolicy(keep_daily=n).plan(members)

        days = {dt.datetime.fromtimestamp(s.created_at, UTC).date() for s in members}
        kept_days = [
            dt.datetime.fromtimestamp(k.snapshot.created_at, UTC).date()
            for k in plan.keep
        ]
        assert len(kept_days) == len(set(kept_days)) == min(n, len(days))
        assert set(kept_days) == set(sorted(days, reverse=True)[:n])


class TestForget:
    def test_dry_run_removes_nothing(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        for i in range(3):
            repo.backup_data("x", str(i), series="s")
            clock.advance(3600)

        plan = repo.forget(RetentionPolicy(keep_last=1), dry_run=True)

        assert len(plan.remove) == 2
        assert len(repo.snapshots()) == 3

    def test_forget_then_prune_frees_the_chunks(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        for data in (b"one" * 30, b"two" * 30, b"three" * 30):
            repo.backup_data("x", data, series="s")
            clock.advance(3600)

        plan = repo.forget(RetentionPolicy(keep_last=1))
        report = repo.prune()

        assert [s.files for s in plan.remove] == [1, 1]
        assert [s.id for s in repo.snapshots()] == [plan.keep[0].snapshot.id]
        assert report.chunks_removed == 2
        assert report.chunks_kept == 1
        assert report.bytes_freed > 0
        assert repo.read_data("latest", "x") == b"three" * 30
        assert repo.verify(read_data=True).ok

    def test_forget_limited_to_one_series(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        for series in ("a", "a", "b", "b"):
            repo.backup_data("x", series, series=series)
            clock.advance(60)

        repo.forget(RetentionPolicy(keep_last=1), series="a")

        assert sorted(s.series for s in repo.snapshots()) == ["a", "b", "b"]

    def test_rules_given_directly(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        for i in range(3):
            repo.backup_data("x", str(i), series="s")
            clock.advance(86_400)

        plan = repo.forget(keep_daily=2, dry_run=True)

        assert [k.reasons for k in plan.keep] == [
            ("newest of its series", "daily"),
            ("daily",),
        ]
        with pytest.raises(ConfigurationError, match="not both"):
            repo.forget(RetentionPolicy(keep_last=1), keep_daily=2)
