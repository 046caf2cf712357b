"""
Crash recovery with real processes: a saga is killed with SIGKILL at each
point of the protocol in turn, then another process recovers it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from recovery.transactions import RecordKind, SagaStatus, SqliteJournal

ROOT = Path(__file__).resolve().parents[2]

FORWARD_POINTS = [
    f"do:{step}:{when}" for step in "abc" for when in ("enter", "effect", "completed")
]
COMPENSATION_POINTS = [
    f"undo:{step}:{when}" for step in "cba" for when in ("enter", "effect", "completed")
]


def worker(
    mode: str, journal: Path, effects: Path, crash_at: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRASH_AT": crash_at, "EFFECTS": str(effects)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.transactions.crash_worker",
            mode,
            str(journal),
            str(effects),
        ],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def completed_before_crash(journal: Path) -> tuple[set[str], set[str], bool]:
    """
    Return the steps whose action, and whose compensation, the journal
    recorded as completed, and whether the saga had already ended.
    """
    j = SqliteJournal(journal)
    history = j.load("trip-1")
    j.close()
    records = history.records
    done = {r.step_name for r in records if r.kind is RecordKind.STEP_COMPLETED}
    undone = {r.step_name for r in records if r.kind is RecordKind.COMP_COMPLETED}
    ended = history.header.status is SagaStatus.COMPENSATED
    return {s for s in done if s}, {s for s in undone if s}, ended


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("crash_at", FORWARD_POINTS + COMPENSATION_POINTS)
def test_sigkill_at_every_point_then_recover(tmp_path: Path, crash_at: str) -> None:
    journal, effects = tmp_path / "journal.db", tmp_path / "effects.log"

    first = worker("run", journal, effects, crash_at)
    assert first.returncode == -signal.SIGKILL, first.stderr
    done, undone, ended = completed_before_crash(journal)
    second = worker("recover", journal, effects)
    third = worker("recover", journal, effects)

    assert second.returncode == 0, second.stderr
    # The last compensation's completion is committed with the saga's end,
    # so a crash just after it leaves nothing to recover.
    assert ended == (crash_at == "undo:a:completed")
    assert second.stdout == ("" if ended else "trip-1 compensated\n")
    assert third.stdout == ""
    lines = effects.read_text().splitlines()
    applied = Counter(line.split()[1] for line in lines if line.startswith("apply "))
    calls = Counter(line.split()[1] for line in lines if line.startswith("call "))
    # Every effect happened exactly once: actions a-c, then their undoing.
    assert applied == {
        f"trip-1:{step}:{role}": 1
        for step in "abc"
        for role in ("action", "compensation")
    }
    # Nothing journalled as completed was invoked again.
    for step in done:
        assert calls[f"trip-1:{step}:action"] == 1, step
    for step in undone:
        assert calls[f"trip-1:{step}:compensation"] == 1, step
    # The failing step failed once, before or after the crash, never twice.
    assert calls["trip-1:d:action"] == 1
    final = SqliteJournal(journal)
    history = final.load("trip-1")
    final.close()
    assert history.header.status is SagaStatus.COMPENSATED
    # The takeover names the killed worker (the owner of every record it
    # wrote), not the recovering one.
    killed = history.records[0].owner
    resumed = [r for r in history.records if r.kind is RecordKind.SAGA_RESUMED]
    assert [json.loads(r.payload or "") for r in resumed] == (
        [] if ended else [{"previous_owner": killed}]
    )
    assert all(r.owner != killed for r in resumed)


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_without_crash_compensates_in_one_process(tmp_path: Path) -> None:
    journal, effects = tmp_path / "journal.db", tmp_path / "effects.log"

    result = worker("run", journal, effects)

    assert (result.returncode, result.stdout) == (1, "compensated\n")
    assert worker("recover", journal, effects).stdout == ""
