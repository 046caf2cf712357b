"""
The command line's breakers: `open_cli_breaker`, `recovery status`, and
`recovery run --breaker` across separate runs (real subprocesses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recovery.cli import main
from recovery.cli._breakers import default_state_path, open_cli_breaker
from recovery.errors import ConfigurationError
from recovery.policies.breaker_core import BreakerState
from recovery.stores.sqlite import SqliteStore

from .helpers import fail_times, state_of, succeed_times


def recovery(
    *args: str, cwd: Path | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


class TestOpenCliBreaker:
    def test_default_state_file_follows_xdg(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
        assert default_state_path() == tmp_path / "recovery" / "state.db"

        monkeypatch.delenv("XDG_STATE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert default_state_path() == tmp_path / ".local/state/recovery/state.db"

    def test_defaults_open_after_three_failures_for_a_minute(
        self, tmp_path: Path
    ) -> None:
        breaker = open_cli_breaker("job", state=str(tmp_path / "s.db"), redis=None)
        fail_times(breaker, 2)
        assert state_of(breaker) is BreakerState.CLOSED
        fail_times(breaker, 1)

        metrics = breaker.metrics()
        assert metrics.state is BreakerState.OPEN
        assert metrics.retry_after == pytest.approx(60, abs=5)

    def test_state_and_redis_together_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="not both"):
            open_cli_breaker("job", state="a.db", redis="redis://localhost")

    def test_redis_names_must_not_hold_braces(self, redis_url: str) -> None:
        with pytest.raises(ConfigurationError, match="braces"):
            open_cli_breaker("a{b}", state=None, redis=redis_url)


@pytest.mark.integration
class TestStatusCommand:
    def test_shows_each_breaker(self, tmp_path: Path) -> None:
        path = tmp_path / "state.db"
        tripped = open_cli_breaker("alpha", state=str(path), redis=None)
        fail_times(tripped, 3)
        healthy = open_cli_breaker("beta", state=str(path), redis=None)
        succeed_times(healthy, 4)

        result = recovery("status", "--state", str(path))

        assert result.returncode == 0, result.stderr
        rows = {
            line.split()[1]: line
            for line in result.stdout.splitlines()
            if "│" in line and ("alpha" in line or "beta" in line)
        }
        assert rows.keys() == {"alpha", "beta"}
        assert "open" in rows["alpha"]
        assert " s " in rows["alpha"]
        assert rows["alpha"].split("│")[5].strip() == "3"  # calls
        assert "closed" in rows["beta"]
        assert rows["beta"].split("│")[6].strip() == "4"  # ok

    def test_fits_80_columns_and_a_pipe_without_cutting(self, tmp_path: Path) -> None:
        """
        The output is piped here; at 80 columns nothing is cut to an ellipsis.
        """
        path = tmp_path / "state.db"
        fail_times(
            open_cli_breaker("nightly-export-database", state=str(path), redis=None), 3
        )
        succeed_times(open_cli_breaker("payments", state=str(path), redis=None), 2)

        result = recovery("status", "--state", str(path), columns=80)

        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "…" not in result.stdout
        assert all(len(line) <= 80 for line in lines[1:])  # [0] names the path
        assert lines[1].startswith("nightly-export-database  open  next trial in ")
        assert lines[1].endswith(" s")
        assert 0 < float(lines[1].split()[-2]) <= 60
        assert lines[3] == "  calls 3: ok 0, failed 3, rejected 0"
        assert lines[4] == "payments  closed"
        assert lines[6] == "  calls 2: ok 2, failed 0, rejected 0"

    def test_an_empty_store_says_so(self, tmp_path: Path) -> None:
        SqliteStore(tmp_path / "state.db").names()

        result = recovery("status", "--state", str(tmp_path / "state.db"))

        assert result.returncode == 0
        assert result.stdout.startswith("no circuit breakers in sqlite:")

    @pytest.mark.parametrize("watch", [[], ["--watch", "0.01", "--iterations", "1"]])
    def test_a_missing_state_file_is_refused_not_created(
        self, watch: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        missing = tmp_path / "missing.db"

        status = main(["status", "--state", str(missing), *watch])

        assert status == 1
        assert capsys.readouterr().err == (
            f"recovery status: no state file at {missing}\n"
        )
        assert not missing.exists()

    def test_a_missing_default_state_file_means_nothing_recorded(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
        default = tmp_path / "recovery" / "state.db"

        status = main(["status"])

        assert status == 0
        assert capsys.readouterr().out == (
            f"no breakers recorded yet (no state file at {default})\n"
        )
        assert not (tmp_path / "recovery").exists()

    def test_run_still_creates_the_default_state_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

        assert main(["run", "--breaker", "job", "--", "true"]) == 0

        assert (tmp_path / "recovery" / "state.db").is_file()
        assert main(["status"]) == 0

    def test_reads_redis(self, private_redis: Any) -> None:
        breaker = open_cli_breaker("gamma", state=None, redis=private_redis.url)
        fail_times(breaker, 3)

        result = recovery("status", "--redis", private_redis.url)

        assert result.returncode == 0, result.stderr
        assert "gamma" in result.stdout
        assert "open" in result.stdout

    def test_an_unreachable_store_fails_with_status_1(self, private_redis: Any) -> None:
        private_redis.stop()

        result = recovery("status", "--redis", private_redis.url)

        assert result.returncode == 1
        assert "cannot read" in result.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_run_stops_running_a_failing_command_once_the_breaker_opens(
    tmp_path: Path,
) -> None:
    state = str(tmp_path / "state.db")
    marker = tmp_path / "ran"
    command = ["sh", "-c", f'echo x >> "{marker}"; exit 1']

    statuses = [
        recovery(
            "run",
            "--attempts",
            "1",
            "--breaker",
            "job",
            "--state",
            state,
            "--",
            *command,
        ).returncode
        for _ in range(4)
    ]

    assert statuses == [1, 1, 1, 75]
    assert marker.read_text().count("x") == 3  # the fourth run never started
