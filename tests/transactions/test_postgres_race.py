"""
Two recovery workers (real processes) race for the same crashed sagas on
one PostgreSQL database; none may be compensated twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.transactions import JournalRecord, RecordKind, SagaStatus
from tests.transactions.crash_worker import build

ROOT = Path(__file__).resolve().parents[2]
SAGAS = 60


@pytest.fixture
def schema_url(postgres_dsn: str, unique_name: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{unique_name}"')
    try:
        yield f"{postgres_dsn}?options=-csearch_path%3D{unique_name}"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{unique_name}" CASCADE')


def crashed_saga(journal: object, saga_id: str, definition_hash: str) -> None:
    """
    Journal a saga whose worker died after step b completed and c started.
    """
    from recovery.transactions import Journal

    assert isinstance(journal, Journal)
    owner = "gone-host:1:dead"
    records = [
        (RecordKind.STEP_STARTED, 0, '"a-result"'),
        (RecordKind.STEP_COMPLETED, 0, '"a-result"'),
        (RecordKind.STEP_STARTED, 1, None),
        (RecordKind.STEP_COMPLETED, 1, '"b-result"'),
        (RecordKind.STEP_STARTED, 2, None),
    ]

    def record(
        seq: int, kind: RecordKind, step: int | None, payload: str | None
    ) -> JournalRecord:
        name = None if step is None else "abcd"[step]
        return JournalRecord(
            saga_id=saga_id,
            seq=seq,
            kind=kind,
            step=step,
            step_name=name,
            attempt=0 if step is None else 1,
            key=None
            if name is None or kind is not RecordKind.STEP_STARTED
            else f"{saga_id}:{name}:action",
            payload=payload if kind is not RecordKind.STEP_STARTED else None,
            owner=owner,
            fence=1,
            at=1.0,
        )

    journal.create(
        record(1, RecordKind.SAGA_STARTED, None, "{}"),
        saga_type="trip",
        definition_hash=definition_hash,
        lease=60,
    )
    journal.append(
        saga_id,
        1,
        [
            record(i, kind, step, payload)
            for i, (kind, step, payload) in enumerate(records, start=2)
        ],
        status=SagaStatus.RUNNING,
        lease=60,
    )
    # The owner is on another host, so only an expired lease frees it.
    journal.release(saga_id, 1)


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_never_recover_the_same_saga(
    schema_url: str, tmp_path: Path
) -> None:
    from recovery.transactions import PostgresJournal

    journal = PostgresJournal(schema_url)
    definition_hash = build(journal).definition_hash
    for n in range(SAGAS):
        crashed_saga(journal, f"saga-{n:03d}", definition_hash)
    effects = tmp_path / "effects.log"
    env = {**os.environ, "EFFECTS": str(effects), "RECOVER_BATCH": "1"}
    command = [
        sys.executable,
        "-m",
        "tests.transactions.crash_worker",
        "recover",
        schema_url,
        str(effects),
    ]

    workers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120) for w in workers]

    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    finished = [line.split() for out, _ in outputs for line in out.splitlines()]
    ids = Counter(saga_id for saga_id, _ in finished)
    assert ids == {f"saga-{n:03d}": 1 for n in range(SAGAS)}
    assert {status for _, status in finished} == {"compensated"}
    calls = Counter(
        line.split()[1]
        for line in effects.read_text().splitlines()
        if line.startswith("call ")
    )
    for n in range(SAGAS):
        saga_id = f"saga-{n:03d}"
        for step in "abc":
            assert calls[f"{saga_id}:{step}:compensation"] == 1
        assert calls[f"{saga_id}:a:action"] == 0
        assert calls[f"{saga_id}:c:action"] == 1
    headers = journal.sagas()
    assert len(headers) == SAGAS
    assert {h.status for h in headers} == {SagaStatus.COMPENSATED}
    journal.close()
