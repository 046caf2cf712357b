"""
`recovery sagas ...`, run as a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recovery.transactions import (
    Saga,
    SagaContext,
    SagaFailedError,
    SqliteJournal,
    Step,
)

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = "tests.transactions.crash_worker:DEFINITIONS"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(*args: str, effects: Path | None = None) -> subprocess.CompletedProcess[str]:
    # Recovery runs the test steps, which log their effects to EFFECTS.
    extra = {} if effects is None else {"EFFECTS": str(effects)}
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", "sagas", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "250", **extra},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def crashed_journal(tmp_path: Path) -> Path:
    journal, effects = tmp_path / "journal.db", tmp_path / "effects.log"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.transactions.crash_worker",
            "run",
            str(journal),
            str(effects),
        ],
        cwd=ROOT,
        env={**os.environ, "CRASH_AT": "do:b:effect", "EFFECTS": str(effects)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    return journal


def stuck_saga(path: Path) -> None:
    def undo(ctx: SagaContext, result: object) -> None:
        raise OSError("refund service down")

    def fail(ctx: SagaContext) -> None:
        raise ValueError("card declined")

    journal = SqliteJournal(path)
    saga = Saga(
        "pay",
        [Step("hold", lambda ctx: 5, undo), Step("charge", fail)],
        journal=journal,
        compensation_retry=None,
    )
    with pytest.raises(SagaFailedError):
        saga.run(saga_id="pay-1")
    journal.close()


def test_list_show_and_recover_a_crashed_saga(tmp_path: Path) -> None:
    journal = str(crashed_journal(tmp_path))

    listed = cli("list", "--journal", journal)
    shown = cli("show", "trip-1", "--journal", journal)
    effects = tmp_path / "effects.log"
    leases_only = cli(
        "recover",
        "--journal",
        journal,
        "--definitions",
        DEFINITIONS,
        "--leases-only",
        effects=effects,
    )
    recovered = cli(
        "recover", "--journal", journal, "--definitions", DEFINITIONS, effects=effects
    )
    again = cli(
        "recover", "--journal", journal, "--definitions", DEFINITIONS, effects=effects
    )
    final = cli("list", "--journal", journal, "--status", "compensated")
    as_json = cli("show", "trip-1", "--journal", journal, "--json")
    listed_json = cli("list", "--journal", journal, "--json")

    assert listed.returncode == 0, listed.stderr
    assert "trip-1" in listed.stdout
    assert "running" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "status running" in shown.stdout
    for text in ("saga_started", "step_completed", "trip-1:b:action"):
        assert text in shown.stdout
    assert (leases_only.returncode, leases_only.stdout) == (0, "nothing to recover\n")
    assert recovered.returncode == 0, recovered.stderr
    assert "trip-1" in recovered.stdout
    assert "compensated" in recovered.stdout
    assert (again.returncode, again.stdout) == (0, "nothing to recover\n")
    assert "trip-1" in final.stdout
    document = json.loads(as_json.stdout)
    assert document["saga"]["status"] == "compensated"
    assert document["records"][0]["kind"] == "saga_started"
    assert [r["seq"] for r in document["records"]] == list(
        range(1, len(document["records"]) + 1)
    )
    assert [h["saga_id"] for h in json.loads(listed_json.stdout)] == ["trip-1"]


def test_retry_and_abort_a_stuck_saga(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    stuck_saga(path)
    journal = str(path)

    stuck = cli("list", "--journal", journal, "--status", "stuck")
    retried = cli("retry", "pay-1", "--journal", journal, "--note", "back up")
    refused = cli("abort", "pay-1", "--journal", journal)
    aborted = cli(
        "abort", "pay-1", "--journal", journal, "--force", "--note", "by hand"
    )
    shown = cli("show", "pay-1", "--journal", journal)

    assert "pay-1" in stuck.stdout
    assert retried.returncode == 0, retried.stderr
    assert "compensating again" in retried.stdout
    assert refused.returncode == 1
    assert "compensating" in refused.stderr
    assert aborted.returncode == 0, aborted.stderr
    assert "status failed" in shown.stdout
    assert shown.stdout.count("operator_action") == 2


def test_errors_are_reported_with_exit_status_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 200)
    stuck_path = tmp_path / "journal.db"
    stuck_saga(stuck_path)

    unreadable = cli("list", "--journal", str(broken))
    missing = cli("show", "nope", "--journal", str(stuck_path))
    first = cli("retry", "pay-1", "--journal", str(stuck_path))
    wrong_state = cli("retry", "pay-1", "--journal", str(stuck_path))

    assert unreadable.returncode == 1
    assert "not a readable SQLite database" in unreadable.stderr
    assert str(broken) in unreadable.stderr
    assert missing.returncode == 1
    assert "no saga 'nope'" in missing.stderr
    nowhere = cli("list", "--journal", str(tmp_path / "typo.db"))
    assert nowhere.returncode == 1
    assert "no journal at" in nowhere.stderr
    assert not (tmp_path / "typo.db").exists()
    bad_definitions = cli(
        "recover", "--journal", str(stuck_path), "--definitions", "no_such_module:X"
    )
    assert bad_definitions.returncode == 1
    assert "cannot load --definitions no_such_module:X" in bad_definitions.stderr
    assert first.returncode == 0, first.stderr
    assert wrong_state.returncode == 1
    assert "is compensating; this action needs it to be one of" in wrong_state.stderr


def test_changed_definition_is_refused(tmp_path: Path) -> None:
    journal = str(crashed_journal(tmp_path))
    module = tmp_path / "changed_defs.py"
    module.write_text(
        "from recovery.transactions import Saga, Step\n"
        "DEFS = [Saga('trip', [Step('a', print), Step('z', print)])]\n"
    )

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recovery.cli",
            "sagas",
            "recover",
            "--journal",
            journal,
            "--definitions",
            "changed_defs:DEFS",
        ],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "400", "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 1, result.stderr
    assert "refusing to resume" in result.stdout
