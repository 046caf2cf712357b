"""
The journal contract, run against every journal: memory, SQLite, PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.errors import ConfigurationError
from recovery.testing import FakeClock
from recovery.transactions import (
    Claim,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalRecord,
    MemoryJournal,
    RecordKind,
    SagaExistsError,
    SagaHistory,
    SagaNotFoundError,
    SagaOwnershipLostError,
    SagaStateError,
    SagaStatus,
    SqliteJournal,
    open_journal,
)


def never_dead(owner: str) -> bool:
    return False


def started(saga_id: str, owner: str = "w1", at: float = 1.0) -> JournalRecord:
    return JournalRecord(
        saga_id=saga_id,
        seq=1,
        kind=RecordKind.SAGA_STARTED,
        payload='{"in":1}',
        owner=owner,
        fence=1,
        at=at,
    )


def step(saga_id: str, seq: int, fence: int = 1, owner: str = "w1") -> JournalRecord:
    return JournalRecord(
        saga_id=saga_id,
        seq=seq,
        kind=RecordKind.STEP_STARTED,
        step=0,
        step_name="a",
        attempt=1,
        key=f"{saga_id}:a:action",
        owner=owner,
        fence=fence,
        at=2.5,
    )


@pytest.fixture
def postgres_journal(postgres_dsn: str, unique_name: str) -> Iterator[Journal]:
    import psycopg

    from recovery.transactions import PostgresJournal

    journal = PostgresJournal(postgres_dsn, schema=unique_name)
    try:
        yield journal
    finally:
        journal.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{unique_name}" CASCADE')


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.integration),
    ]
)
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "memory":
        yield MemoryJournal()
    elif request.param == "sqlite":
        j = SqliteJournal(tmp_path / "journal.db")
        yield j
        j.close()
    else:
        yield request.getfixturevalue("postgres_journal")


def test_create_append_load(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    journal.append(
        "s", 1, [step("s", 2), step("s", 3)], status=SagaStatus.RUNNING, lease=60
    )

    history = journal.load("s")

    assert history.records == (started("s"), step("s", 2), step("s", 3))
    header = history.header
    assert (header.saga_type, header.definition_hash, header.status) == (
        "t",
        "h",
        SagaStatus.RUNNING,
    )
    assert (header.owner, header.fence, header.last_seq) == ("w1", 1, 3)
    assert header.lease_until > header.updated_at


def test_duplicate_saga_is_refused(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)

    with pytest.raises(SagaExistsError):
        journal.create(
            started("s", owner="w2"), saga_type="t", definition_hash="h", lease=60
        )

    assert journal.load("s").header.owner == "w1"


def test_unknown_saga(journal: Journal) -> None:
    with pytest.raises(SagaNotFoundError, match="nope"):
        journal.load("nope")
    with pytest.raises(SagaNotFoundError):
        journal.append("nope", 1, [step("nope", 2)], status=SagaStatus.RUNNING, lease=1)


def test_claims_fence_off_the_previous_owner(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    journal.release("s", 1)

    claims = journal.claim("w2", lease=60, limit=10, is_dead=never_dead)

    assert claims == [Claim("s", "t", "w2", 2, previous_owner="w1")]
    with pytest.raises(SagaOwnershipLostError, match="w2"):
        journal.append("s", 1, [step("s", 2)], status=SagaStatus.RUNNING, lease=60)
    journal.append(
        "s", 2, [step("s", 2, fence=2, owner="w2")], status=SagaStatus.RUNNING, lease=60
    )
    assert journal.load("s").header.last_seq == 2
    # Held by w2 now: nobody else can claim it.
    assert journal.claim("w3", lease=60, limit=10, is_dead=never_dead) == []


def test_claim_takes_sagas_of_dead_owners_only_in_progress(journal: Journal) -> None:
    for saga_id, owner in [("a", "dead"), ("b", "alive"), ("c", "dead")]:
        journal.create(
            started(saga_id, owner), saga_type="t", definition_hash="h", lease=60
        )
    journal.append(
        "c",
        1,
        [step("c", 2, owner="dead")],
        status=SagaStatus.COMPLETED,
        lease=0,
    )

    claims = journal.claim("w", lease=60, limit=10, is_dead=lambda o: o == "dead")

    assert [c.saga_id for c in claims] == ["a"]


def test_claim_can_be_limited_to_saga_types(journal: Journal) -> None:
    for saga_id, saga_type in [("a", "mine"), ("b", "theirs")]:
        journal.create(
            started(saga_id), saga_type=saga_type, definition_hash="h", lease=60
        )
        journal.release(saga_id, 1)

    claims = journal.claim(
        "w", lease=60, limit=10, is_dead=never_dead, saga_types=["mine"]
    )
    none = journal.claim("w", lease=60, limit=10, is_dead=never_dead, saga_types=[])

    assert [c.saga_id for c in claims] == ["a"]
    assert none == []


def test_claim_respects_the_limit(journal: Journal) -> None:
    for saga_id in "abc":
        journal.create(started(saga_id), saga_type="t", definition_hash="h", lease=60)
        journal.release(saga_id, 1)

    first = journal.claim("w", lease=60, limit=2, is_dead=never_dead)
    second = journal.claim("w", lease=60, limit=2, is_dead=never_dead)

    assert len(first) == 2
    assert len(second) == 1
    assert {c.saga_id for c in first + second} == {"a", "b", "c"}


def test_claim_asks_check_first_and_a_refusal_changes_nothing(
    journal: Journal,
) -> None:
    for saga_id in "abc":
        journal.create(started(saga_id), saga_type="t", definition_hash="h", lease=60)
        journal.release(saga_id, 1)
    before = journal.load("b").header
    asked: list[tuple[str, int]] = []

    def check(saga_id: str, history: SagaHistory | JournalCorruptError) -> bool:
        assert isinstance(history, SagaHistory)
        assert history.records == (started(saga_id),)
        asked.append((saga_id, history.header.fence))
        return saga_id != "b"

    claims = journal.claim(
        "w2", lease=60, limit=10, is_dead=never_dead, check=check, exclude=["c"]
    )

    assert asked == [("a", 1), ("b", 1)]
    assert claims == [Claim("a", "t", "w2", 2, previous_owner="w1")]
    assert journal.load("b").header == before
    # Excluded, "c" was neither asked about nor claimed; still claimable.
    assert [
        c.saga_id for c in journal.claim("w3", lease=60, limit=10, is_dead=never_dead)
    ] == ["b", "c"]


def test_sqlite_claim_check_gets_the_unreadable_history(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    journal.append("s", 1, [step("s", 2)], status=SagaStatus.RUNNING, lease=0)
    with sqlite3.connect(tmp_path / "j.db") as conn:
        conn.execute("DELETE FROM recovery_saga_record WHERE seq = 1")
    seen: list[object] = []

    def check(saga_id: str, history: SagaHistory | JournalCorruptError) -> bool:
        seen.append(history)
        return False

    claims = journal.claim("w2", lease=60, limit=10, is_dead=never_dead, check=check)

    assert claims == []
    (error,) = seen
    assert isinstance(error, JournalCorruptError)
    assert (error.saga_id, error.seq) == ("s", 1)
    assert journal.sagas()[0].fence == 1
    journal.close()


def test_release_with_a_stale_fence_does_nothing(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    journal.seize("s", "op", lease=60, statuses=[SagaStatus.RUNNING])

    journal.release("s", 1)

    assert journal.claim("w", lease=60, limit=10, is_dead=never_dead) == []


def test_seize_checks_the_status(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)

    with pytest.raises(SagaStateError, match="running"):
        journal.seize("s", "op", lease=60, statuses=[SagaStatus.STUCK])
    claim = journal.seize("s", "op", lease=60, statuses=[SagaStatus.RUNNING])

    assert (claim.owner, claim.fence, claim.previous_owner) == ("op", 2, "w1")


def test_sagas_lists_by_status_latest_first(journal: Journal) -> None:
    for saga_id in "abc":
        journal.create(started(saga_id), saga_type="t", definition_hash="h", lease=60)
    journal.append("b", 1, [step("b", 2)], status=SagaStatus.STUCK, lease=0)

    stuck = journal.sagas([SagaStatus.STUCK])
    everything = journal.sagas()

    assert [h.saga_id for h in stuck] == ["b"]
    assert everything[0].saga_id == "b"
    assert {h.saga_id for h in everything} == {"a", "b", "c"}
    assert journal.sagas([]) == []


def test_memory_and_sqlite_leases_follow_the_clock(tmp_path: Path) -> None:
    for journal in (
        MemoryJournal(clock=(clock := FakeClock())),
        SqliteJournal(tmp_path / "j.db", clock=(clock2 := FakeClock())),
    ):
        ticking = clock if isinstance(journal, MemoryJournal) else clock2
        journal.create(started("s"), saga_type="t", definition_hash="h", lease=10)
        assert journal.claim("w", lease=10, limit=1, is_dead=never_dead) == []
        ticking.advance(10)
        assert len(journal.claim("w", lease=10, limit=1, is_dead=never_dead)) == 1
        journal.close()


texts = st.text(max_size=40)
record_strategy = st.builds(
    JournalRecord,
    saga_id=st.just("s"),
    seq=st.just(0),
    kind=st.sampled_from(list(RecordKind)),
    step=st.none() | st.integers(0, 2**31 - 1),
    step_name=st.none() | texts,
    attempt=st.integers(0, 2**31 - 1),
    key=st.none() | texts,
    payload=st.none() | st.text(max_size=200),
    owner=texts,
    fence=st.integers(1, 2**62),
    at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(records=st.lists(record_strategy, min_size=1, max_size=6))
def test_records_read_back_exactly_as_written(
    journal: Journal, records: list[JournalRecord]
) -> None:
    import dataclasses
    import uuid

    saga_id = uuid.uuid4().hex
    numbered = [
        dataclasses.replace(r, saga_id=saga_id, seq=i, fence=1)
        for i, r in enumerate(records, start=1)
    ]
    # PostgreSQL text cannot hold NUL; every journal must treat the rest alike.
    numbered = [_without_nul(r) for r in numbered]

    journal.create(numbered[0], saga_type="t", definition_hash="h", lease=60)
    if len(numbered) > 1:
        journal.append(saga_id, 1, numbered[1:], status=SagaStatus.RUNNING, lease=60)

    assert journal.load(saga_id).records == tuple(numbered)


def _without_nul(record: JournalRecord) -> JournalRecord:
    import dataclasses

    def clean(value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "")

    return dataclasses.replace(
        record,
        step_name=clean(record.step_name),
        key=clean(record.key),
        payload=clean(record.payload),
        owner=clean(record.owner) or "",
    )


def test_sqlite_journal_uses_full_durability(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    conn = journal._connect()

    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10000,)
    journal.close()


def test_sqlite_damaged_rows_are_reported_with_saga_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    journal.append(
        "s", 1, [step("s", 2), step("s", 3)], status=SagaStatus.RUNNING, lease=60
    )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE recovery_saga_record SET kind = 'bogus' WHERE seq = 2")

    with pytest.raises(JournalCorruptError) as caught:
        journal.load("s")

    assert (caught.value.saga_id, caught.value.seq) == ("s", 2)
    assert "unknown kind 'bogus'" in str(caught.value)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM recovery_saga_record WHERE seq = 2")
    with pytest.raises(JournalCorruptError, match="record 2 is missing"):
        journal.load("s")
    journal.close()


def test_sqlite_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(JournalCorruptError, match="not a readable SQLite database"):
        SqliteJournal(path)

    assert path.read_bytes() == b"this is not sqlite" * 100


def test_sqlite_refuses_another_layout(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SqliteJournal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE recovery_journal_meta SET value = '9'")

    with pytest.raises(JournalError, match="layout '9'"):
        SqliteJournal(path)


def test_table_prefix_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="table_prefix"):
        SqliteJournal(tmp_path / "j.db", table_prefix="x; DROP")


def test_open_journal_picks_the_backend(tmp_path: Path) -> None:
    journal = open_journal(str(tmp_path / "j.db"))

    assert isinstance(journal, SqliteJournal)
    journal.close()


@pytest.mark.integration
def test_postgres_password_is_not_shown(postgres_journal: Journal) -> None:
    from recovery.transactions.journal_postgres import _redact

    assert _redact("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    assert "secret" not in postgres_journal.where


def test_renew_extends_only_a_held_live_lease(journal: Journal) -> None:
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)

    assert journal.renew("s", 1, 60) is True
    assert journal.renew("s", 2, 60) is False
    journal.release("s", 1)
    assert journal.renew("s", 1, 60) is False
    assert journal.renew("nope", 1, 60) is False


class Renewals:
    """
    A journal stand-in that counts renewals, answering *owned*.
    """

    blocking = True
    where = "test"

    def __init__(self, owned: bool = True, wanted: int = 2) -> None:
        import threading

        self.owned = owned
        self.wanted = wanted
        self.calls: list[tuple[str, int, float]] = []
        self.enough = threading.Event()

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        self.calls.append((saga_id, fence, lease))
        if len(self.calls) >= self.wanted:
            self.enough.set()
        return self.owned


def test_heartbeat_renews_while_the_saga_runs() -> None:
    from recovery.transactions.heartbeat import Heartbeat, _Renewer

    renewer = _Renewer()
    journal = Renewals()
    with Heartbeat(journal, "s", 3, 0.003, renewer=renewer):  # type: ignore[arg-type]
        assert journal.enough.wait(10)
    count = len(journal.calls)

    assert journal.calls[0] == ("s", 3, 0.003)
    assert renewer._leases == set()
    assert len(journal.calls) <= count + 1  # at most one renewal in flight


def test_heartbeat_stops_renewing_a_lost_lease() -> None:
    from recovery.transactions.heartbeat import Heartbeat, _Renewer

    renewer = _Renewer()
    lost = Renewals(owned=False, wanted=1)
    kept = Renewals(wanted=3)
    with (
        Heartbeat(lost, "lost", 1, 0.003, renewer=renewer),  # type: ignore[arg-type]
        Heartbeat(kept, "kept", 1, 0.003, renewer=renewer),  # type: ignore[arg-type]
    ):
        assert kept.enough.wait(10)

        assert len(lost.calls) == 1
        assert [entry.saga_id for entry in renewer._leases] == ["kept"]


def test_memory_journals_need_no_heartbeat() -> None:
    from recovery.transactions.heartbeat import Heartbeat, _Renewer

    renewer = _Renewer()
    with Heartbeat(MemoryJournal(), "s", 1, 60, renewer=renewer):
        assert renewer._thread is None


def test_sqlite_renewals_from_many_threads_share_one_connection(tmp_path: Path) -> None:
    import threading

    journal = SqliteJournal(tmp_path / "j.db")
    journal.create(started("s"), saga_type="t", definition_hash="h", lease=60)
    results: list[bool] = []

    for _ in range(5):
        thread = threading.Thread(
            target=lambda: results.append(journal.renew("s", 1, 60))
        )
        thread.start()
        thread.join()

    assert results == [True] * 5
    assert len(journal._connections) == 2
    journal.close()
