"""
The terminal view: `render`, `BreakerTrends` and `recovery status --watch`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from recovery.backup.repository import BackupRepository
from recovery.cli import main
from recovery.cli._watch import BreakerTrends, render, watch
from recovery.dashboard.collect import Collector
from recovery.stores.sqlite import SqliteStore
from recovery.testing import FakeClock
from recovery.transactions import Saga, SqliteJournal, Step

from .helpers import calls, sqlite_breaker

ROOT = Path(__file__).resolve().parents[2]


def recovery(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def text_of(collector: Collector, trends: BreakerTrends | None = None) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render(collector.collect(), trends))
    return console.export_text()


class TestTrends:
    def test_one_bar_per_refresh_from_the_counters_between_refreshes(
        self, tmp_path: Path
    ) -> None:
        state, clock = tmp_path / "state.db", FakeClock()
        breaker = sqlite_breaker(state, "api", clock=clock, failure_threshold=100)
        collector = Collector(breakers=SqliteStore(state, clock=clock), clock=clock)
        trends = BreakerTrends()
        calls(breaker, ok=1)

        for ok, failed in [(0, 0), (4, 0), (0, 0), (1, 1), (0, 3)]:
            calls(breaker, ok=ok, failed=failed)
            trends.update(collector.collect())

        # No rate at the first refresh; then 0 %, no calls, 50 %, 100 %.
        assert trends.sparkline("api") == " ▁ ▅█"
        assert trends.sparkline("unknown") == ""


class TestRender:
    def test_breakers_sagas_and_backups_in_one_view(self, tmp_path: Path) -> None:
        state, clock = tmp_path / "state.db", FakeClock()
        calls(sqlite_breaker(state, "payments", clock=clock), ok=1, failed=3)
        journal = SqliteJournal(tmp_path / "journal.db")
        Saga("signup", [Step("create", lambda ctx: 1)], journal=journal).run(
            saga_id="signup-1"
        )
        data = tmp_path / "data"
        data.mkdir()
        (data / "a.txt").write_text("alpha")
        repo = BackupRepository(tmp_path / "repo")
        repo.init()
        snapshot = repo.backup(data).snapshot
        collector = Collector(
            breakers=SqliteStore(state, clock=clock),
            journal=journal,
            repository=repo,
            clock=clock,
        )

        text = text_of(collector)
        collector.close()

        assert f"circuit breakers in sqlite:{state}" in text
        assert "payments" in text
        assert "open" in text
        assert "60.0 s" in text
        assert "signup-1" in text
        assert "completed 1" in text
        assert snapshot.id[:12] in text
        assert "(1 snapshots)" in text

    def test_an_unreadable_source_says_so(self, tmp_path: Path) -> None:
        pytest.importorskip("redis")
        from recovery.stores.redis import RedisStore
        from tests.conftest import free_port

        collector = Collector(breakers=RedisStore(f"redis://127.0.0.1:{free_port()}/0"))

        text = text_of(collector)
        collector.close()

        assert "cannot read: StoreUnavailableError" in text

    def test_watch_redraws_the_given_number_of_times(self, tmp_path: Path) -> None:
        state, clock = tmp_path / "state.db", FakeClock()
        calls(sqlite_breaker(state, "payments", clock=clock), ok=1)
        collector = Collector(breakers=SqliteStore(state, clock=clock), clock=clock)
        console = Console(record=True, width=200, color_system=None)

        status = watch(
            collector, interval=2.5, iterations=3, console=console, clock=clock
        )

        assert status == 0
        assert clock.sleeps == [2.5, 2.5]
        assert "payments" in console.export_text()


class TestStatusCommand:
    @pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf", "soon"])
    def test_watch_must_be_finite_and_positive(
        self, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """
        nan would never refresh and inf overflows the timer: both are refused.
        """
        with pytest.raises(SystemExit) as exit_info:
            main(["status", "--state", str(tmp_path / "s.db"), "--watch", value])

        assert exit_info.value.code == 2
        assert (
            f"argument --watch: must be a finite number of seconds > 0, got {value!r}"
            in capsys.readouterr().err
        )

    def test_a_missing_journal_fails_with_status_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "s.db").touch()  # an empty file is an empty SQLite database
        status = main(
            ["status", "--state", str(tmp_path / "s.db"), "--journal", "nowhere.db"]
        )

        assert status == 1
        assert "no saga journal at nowhere.db" in capsys.readouterr().err


@pytest.mark.integration
class TestStatusWatchSubprocess:
    def test_watch_runs_two_refreshes_and_exits(self, tmp_path: Path) -> None:
        state = tmp_path / "state.db"
        calls(sqlite_breaker(state, "payments"), ok=1, failed=3)
        calls(sqlite_breaker(state, "search"), ok=2)

        result = recovery(
            "status", "--state", str(state), "--watch", "0.05", "--iterations", "2"
        )

        assert result.returncode == 0, result.stderr
        assert f"circuit breakers in sqlite:{state}" in result.stdout
        rows = [line.split() for line in result.stdout.splitlines()]
        lines = {
            row[0]: row for row in rows if row and row[0] in ("payments", "search")
        }
        assert lines["payments"][1] == "open"
        assert lines["search"][1] == "closed"
        assert result.stderr == ""

    def test_without_watch_the_table_is_unchanged(self, tmp_path: Path) -> None:
        state = tmp_path / "state.db"
        calls(sqlite_breaker(state, "payments"), ok=1, failed=3)

        result = recovery("status", "--state", str(state))

        assert result.returncode == 0, result.stderr
        assert "since (UTC)" in result.stdout
        assert "Ctrl-C" not in result.stdout
