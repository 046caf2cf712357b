"""
`Collector` against real state: SQLite files, Redis, a saga journal and a
backup repository made in the test's own directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.backup.repository import BackupRepository
from recovery.dashboard.collect import (
    Collector,
    RedisLimiterReader,
    RedisRegistryReader,
    SqliteLimiterReader,
    open_collector,
)
from recovery.errors import ConfigurationError
from recovery.policies.breaker_core import BreakerState
from recovery.policies.ratelimit import Gcra
from recovery.policies.ratelimit_stores import RedisLimiterStore, SqliteLimiterStore
from recovery.stores.redis import RedisStore
from recovery.stores.sqlite import SqliteStore
from recovery.testing import FakeClock
from recovery.transactions import Journal, Saga, SagaFailedError, SqliteJournal, Step
from tests.conftest import free_port

from .helpers import breaker_in, calls, sqlite_breaker


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def collector_for(state: Path, clock: FakeClock, **kwargs: object) -> Collector:
    return Collector(breakers=SqliteStore(state, clock=clock), clock=clock, **kwargs)  # type: ignore[arg-type]


class TestBreakers:
    def test_a_closed_and_an_open_breaker_with_their_counters(
        self, state: Path, clock: FakeClock
    ) -> None:
        calls(sqlite_breaker(state, "search", clock=clock), ok=2, failed=1)
        payments = sqlite_breaker(state, "payments", clock=clock, reset_timeout=60)
        calls(payments, ok=1, failed=3)
        opened_at = clock.time()
        clock.advance(15)

        section = collector_for(state, clock).collect().breakers

        assert section is not None
        assert section.error is None
        assert [b.name for b in section.breakers] == ["payments", "search"]
        pay, search = section.breakers
        assert pay.state is BreakerState.OPEN
        assert pay.since == pytest.approx(opened_at)
        assert pay.next_trial == pytest.approx(45.0)
        assert (pay.total_calls, pay.successful_calls, pay.failed_calls) == (4, 1, 3)
        assert pay.times_opened == 1
        assert pay.failure_rate == 0.75
        assert search.state is BreakerState.CLOSED
        assert search.next_trial is None
        assert search.consecutive_failures == 1
        assert search.failure_rate == pytest.approx(1 / 3)

    def test_an_open_breaker_whose_time_is_up_shows_half_open_and_trial_now(
        self, state: Path, clock: FakeClock
    ) -> None:
        calls(
            sqlite_breaker(state, "payments", clock=clock, reset_timeout=10), failed=3
        )
        clock.advance(10)

        section = collector_for(state, clock).collect().breakers

        assert section is not None
        assert section.breakers[0].state is BreakerState.HALF_OPEN
        assert section.breakers[0].next_trial == 0.0

    def test_the_recent_failure_rate_covers_the_last_minute_only(
        self, state: Path, clock: FakeClock
    ) -> None:
        breaker = sqlite_breaker(state, "api", clock=clock, failure_threshold=100)
        calls(breaker, ok=5)
        collector = collector_for(state, clock)

        first = collector.collect().breakers
        clock.advance(10)
        calls(breaker, ok=1, failed=3)
        second = collector.collect().breakers
        clock.advance(60)
        third = collector.collect().breakers

        assert first is not None
        assert second is not None
        assert third is not None
        assert first.breakers[0].recent_failure_rate is None
        assert first.breakers[0].recent_calls == 0
        assert second.breakers[0].recent_failure_rate == 0.75
        assert second.breakers[0].recent_calls == 4
        # A minute without calls: the calls of a minute ago have aged out.
        assert third.breakers[0].recent_failure_rate is None
        assert third.breakers[0].recent_calls == 0
        assert third.breakers[0].failure_rate == pytest.approx(3 / 9)

    def test_reset_counters_start_the_recent_rate_afresh(
        self, state: Path, clock: FakeClock
    ) -> None:
        breaker = sqlite_breaker(state, "api", clock=clock, failure_threshold=100)
        calls(breaker, failed=4)
        collector = collector_for(state, clock)
        collector.collect()

        breaker.reset_metrics()
        calls(breaker, ok=2)
        clock.advance(1)
        section = collector.collect().breakers

        assert section is not None
        assert section.breakers[0].recent_failure_rate is None
        calls(breaker, ok=1, failed=1)
        clock.advance(1)
        again = collector.collect().breakers
        assert again is not None
        assert again.breakers[0].recent_failure_rate == 0.5
        assert again.breakers[0].recent_calls == 2

    @pytest.mark.integration
    def test_breakers_in_redis(
        self, redis_url: str, unique_name: str, clock: FakeClock
    ) -> None:
        store = RedisStore(redis_url, prefix=unique_name)
        try:
            calls(breaker_in(store, "payments", clock=clock), ok=1, failed=3)
            reader = RedisStore(redis_url, prefix=unique_name)
            section = Collector(breakers=reader).collect().breakers
            reader.close()
        finally:
            store.delete("payments")
            store.close()

        assert section is not None
        assert section.source.startswith("redis://")
        [pay] = section.breakers
        assert pay.state is BreakerState.OPEN
        assert (pay.successful_calls, pay.failed_calls) == (1, 3)
        assert pay.next_trial is not None
        assert 59.0 < pay.next_trial <= 60.0

    @pytest.mark.integration
    def test_an_unreachable_store_is_reported_and_the_rest_still_read(
        self, tmp_path: Path
    ) -> None:
        pytest.importorskip("redis")
        down = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
        collector = Collector(
            breakers=down, limiters=SqliteLimiterReader(tmp_path / "none.db")
        )

        snapshot = collector.collect()
        collector.close()

        assert snapshot.breakers is not None
        assert snapshot.breakers.breakers == ()
        assert snapshot.breakers.error is not None
        assert "StoreUnavailableError" in snapshot.breakers.error
        assert snapshot.limiters is not None
        assert snapshot.limiters.error is None


class TestLimiters:
    def test_busy_limiters_in_sqlite_and_when_each_is_full_again(
        self, state: Path
    ) -> None:
        store = SqliteLimiterStore(state)
        now = 5_000_000_000
        one_per_second = Gcra(emission_us=1_000_000, capacity=5)
        store.check("uploads", one_per_second, 1, now)
        store.check("search", one_per_second, 3, now)
        store.check("idle", one_per_second, 1, now - 10_000_000)
        store.close()

        reader = SqliteLimiterReader(state, now_us=lambda: now + 500_000)
        views = reader.limiters()

        assert [(v.name, v.idle_in) for v in views] == [
            ("search", 2.5),
            ("uploads", 0.5),
        ]

    def test_a_file_without_limiters_lists_none_and_is_not_created(
        self, tmp_path: Path, state: Path
    ) -> None:
        SqliteStore(state).names()  # breakers only

        assert SqliteLimiterReader(state).limiters() == []
        assert SqliteLimiterReader(tmp_path / "missing.db").limiters() == []
        assert not (tmp_path / "missing.db").exists()

    @pytest.mark.integration
    def test_busy_limiters_in_redis(self, redis_url: str, unique_name: str) -> None:
        store = RedisLimiterStore(redis_url, prefix=unique_name)
        try:
            store.check("uploads", Gcra(emission_us=1_000_000, capacity=5), 2, 0)
            views = RedisLimiterReader(redis_url, prefix=unique_name).limiters()
        finally:
            store._client.delete(store.key("uploads"))
            store.close()

        [view] = views
        assert view.name == "uploads"
        assert 1.9 < view.idle_in <= 2.0


@pytest.fixture
def registry_prefix(redis_url: str, unique_name: str) -> Iterator[str]:
    import redis

    yield unique_name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{unique_name}:*"):
        client.delete(key)
    client.close()


@pytest.mark.integration
class TestRegistries:
    def test_services_endpoints_and_health(
        self, redis_url: str, registry_prefix: str
    ) -> None:
        from recovery.discovery import Endpoint, RedisServiceRegistry

        registry = RedisServiceRegistry(
            redis_url, prefix=registry_prefix, watch=False, clock=FakeClock()
        )
        try:
            first, _ = registry.register(
                "orders", [Endpoint("o1:80", weight=2.0), "o2:80"]
            )
            registry.register("search", ["s1:80"], ttl=30)
            registry.report_check(first, False)
            reader = RedisRegistryReader(redis_url, prefix=registry_prefix)
            section = Collector(registries=[reader]).collect().registries[0]
            reader.close()
        finally:
            registry.close()

        assert section.error is None
        orders, search = section.services
        assert (orders.name, orders.healthy, len(orders.endpoints)) == ("orders", 1, 2)
        o1, o2 = sorted(orders.endpoints, key=lambda e: e.address)
        assert (o1.address, o1.health, o1.status, o1.weight) == (
            "o1:80",
            "critical",
            "critical",
            2.0,
        )
        assert (o2.health, o2.expires_in, o2.ejected_for) == ("healthy", None, 0.0)
        [s1] = search.endpoints
        assert s1.health == "healthy"
        assert s1.expires_in is not None
        assert 29.0 < s1.expires_in <= 30.0

    def test_an_empty_registry_lists_no_service(
        self, redis_url: str, registry_prefix: str
    ) -> None:
        reader = RedisRegistryReader(redis_url, prefix=registry_prefix)

        section = Collector(registries=[reader]).collect().registries[0]
        reader.close()

        assert (section.services, section.error) == ((), None)


def _run_sagas(journal: Journal) -> None:
    def fail(ctx: object) -> None:
        raise ValueError("card declined")

    ok = Saga("signup", [Step("create", lambda ctx: 1)], journal=journal)
    bad = Saga(
        "pay",
        [Step("hold", lambda ctx: 1, lambda ctx, result: None), Step("charge", fail)],
        journal=journal,
    )
    for number in range(3):
        ok.run(saga_id=f"signup-{number}")
    with pytest.raises(SagaFailedError):
        bad.run(saga_id="pay-1")


EXPECTED_COUNTS = {
    "running": 0,
    "compensating": 0,
    "completed": 3,
    "compensated": 1,
    "failed": 0,
    "stuck": 0,
}


class TestSagas:
    def test_sagas_are_counted_by_status_and_listed_newest_first(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "journal.db"
        writer = SqliteJournal(path)
        _run_sagas(writer)
        writer.close()
        journal = SqliteJournal(path)

        section = Collector(journal=journal, recent=2).collect().sagas
        journal.close()

        assert section is not None
        assert section.error is None
        assert section.source == str(path)
        assert section.counts == EXPECTED_COUNTS
        assert section.more == ()
        assert [s.saga_id for s in section.recent] == ["pay-1", "signup-2"]
        assert section.recent[0].status == "compensated"
        assert section.recent[0].saga_type == "pay"

    @pytest.mark.integration
    def test_sagas_in_a_postgresql_journal(
        self, postgres_dsn: str, unique_name: str
    ) -> None:
        import psycopg

        from recovery.transactions import PostgresJournal

        journal = PostgresJournal(postgres_dsn, schema=unique_name)
        try:
            _run_sagas(journal)
            section = Collector(journal=journal, recent=1).collect().sagas
        finally:
            journal.close()
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{unique_name}" CASCADE')

        assert section is not None
        assert section.error is None
        assert section.counts == EXPECTED_COUNTS
        assert [s.saga_id for s in section.recent] == ["pay-1"]

    def test_a_missing_journal_is_refused_not_created(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="no saga journal"):
            open_collector(state=str(tmp_path / "s.db"), journal=str(tmp_path / "j.db"))

        assert not (tmp_path / "j.db").exists()


class TestBackups:
    def test_the_latest_snapshots_newest_first(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        (data / "a.txt").write_text("alpha")
        repo = BackupRepository(tmp_path / "repo")
        repo.init()
        first = repo.backup(data, tags=["nightly"]).snapshot
        (data / "b.txt").write_text("bravo!")
        second = repo.backup(data).snapshot
        collector = Collector(repository=repo, recent=5)

        section = collector.collect().backups
        (data / "c.txt").write_text("charlie")
        third = repo.backup(data).snapshot
        later = collector.collect().backups

        assert section is not None
        assert later is not None
        assert section.error is None
        assert section.count == 2
        assert [s.snapshot_id for s in section.snapshots] == [second.id, first.id]
        assert section.snapshots[1].tags == ("nightly",)
        assert (section.snapshots[0].files, section.snapshots[0].size) == (2, 11)
        assert section.locks == ()
        assert later.count == 3
        assert later.snapshots[0].snapshot_id == third.id

    def test_a_directory_that_is_no_repository_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="no backup repository"):
            open_collector(state=str(tmp_path / "s.db"), repo=str(tmp_path))


class TestSnapshot:
    def test_json_holds_plain_values(self, state: Path, clock: FakeClock) -> None:
        calls(sqlite_breaker(state, "payments", clock=clock), failed=3)

        data = collector_for(state, clock).collect().to_json()

        assert json.loads(json.dumps(data)) == data
        assert data["taken_at"] == clock.time()
        assert data["breakers"]["breakers"][0]["state"] == "open"  # type: ignore[index]
        assert data["sagas"] is None
        assert data["registries"] == []

    def test_without_a_breaker_store_there_is_no_breaker_section(
        self, tmp_path: Path
    ) -> None:
        repo = BackupRepository(tmp_path / "repo")
        repo.init()

        collector = open_collector(repo=str(tmp_path / "repo"))
        snapshot = collector.collect()
        collector.close()

        assert snapshot.breakers is None
        assert snapshot.limiters is None
        assert snapshot.backups is not None
        assert snapshot.backups.count == 0

    def test_a_limiter_table_name_must_be_an_identifier(self, state: Path) -> None:
        with pytest.raises(ConfigurationError, match="table must be a plain"):
            SqliteLimiterReader(state, table="x; DROP TABLE y")

    def test_open_collector_refuses_two_breaker_stores(self) -> None:
        with pytest.raises(ConfigurationError, match="not both"):
            open_collector(state="x.db", redis="redis://127.0.0.1:1/0")
