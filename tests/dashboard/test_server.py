"""
`DashboardServer` and `recovery dashboard`, over real HTTP on a free port.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.cli import build_parser, main
from recovery.cli.dashboard import collector_from_args
from recovery.dashboard.collect import Collector
from recovery.dashboard.server import DashboardServer, is_loopback
from recovery.errors import ConfigurationError
from recovery.stores.sqlite import SqliteStore
from tests.conftest import free_port, wait_until

from .helpers import calls, sqlite_breaker

ROOT = Path(__file__).resolve().parents[2]


def get(
    port: int, path: str, *, host: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {} if host is None else {"Host": host}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def snapshot(port: int) -> dict[str, object]:
    status, _, body = get(port, "/api/snapshot")
    assert status == 200
    data: dict[str, object] = json.loads(body)
    return data


def breaker_states(port: int) -> dict[str, str]:
    section = snapshot(port)["breakers"]
    assert isinstance(section, dict)
    return {b["name"]: b["state"] for b in section["breakers"]}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def server(state: Path) -> Iterator[DashboardServer]:
    calls(sqlite_breaker(state, "payments"), ok=2)
    collector = Collector(breakers=SqliteStore(state))
    with DashboardServer(collector, port=free_port(), interval=0.05) as running:
        yield running


class TestApi:
    def test_the_snapshot_is_served_as_json(self, server: DashboardServer) -> None:
        status, headers, body = get(server.port, "/api/snapshot")

        data = json.loads(body)
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        assert data["refresh"] == 0.05
        [breaker] = data["breakers"]["breakers"]
        assert (breaker["name"], breaker["state"]) == ("payments", "closed")
        assert (breaker["successful_calls"], breaker["failed_calls"]) == (2, 0)

    def test_a_change_in_the_store_reaches_the_api(
        self, server: DashboardServer, state: Path
    ) -> None:
        calls(sqlite_breaker(state, "payments"), failed=3)

        wait_until(lambda: breaker_states(server.port) == {"payments": "open"})

    @pytest.mark.parametrize(
        ("path", "content_type", "marker"),
        [
            ("/", "text/html; charset=utf-8", b"<title>recovery dashboard</title>"),
            ("/app.js", "text/javascript; charset=utf-8", b"/api/snapshot"),
            ("/style.css", "text/css; charset=utf-8", b".state.open"),
        ],
    )
    def test_the_page_and_its_files(
        self, server: DashboardServer, path: str, content_type: str, marker: bytes
    ) -> None:
        status, headers, body = get(server.port, path)

        assert status == 200
        assert headers["Content-Type"] == content_type
        assert headers["Content-Security-Policy"] == "default-src 'self'"
        assert marker in body

    def test_an_unknown_path_is_not_found(self, server: DashboardServer) -> None:
        status, _, _ = get(server.port, "/../../etc/passwd")

        assert status == 404

    @pytest.mark.parametrize("host", ["evil.example", "10.0.0.1:80", ""])
    def test_a_foreign_host_header_is_refused(
        self, server: DashboardServer, host: str
    ) -> None:
        status, _, body = get(server.port, "/api/snapshot", host=host)

        assert status == 403
        assert b"breakers" not in body

    @pytest.mark.parametrize(
        "host", ["localhost", "127.0.0.1:1234", "[::1]:8080", "LOCALHOST:9"]
    )
    def test_loopback_host_headers_are_answered(
        self, server: DashboardServer, host: str
    ) -> None:
        status, _, _ = get(server.port, "/api/snapshot", host=host)

        assert status == 200


@pytest.mark.integration
def test_many_pages_polling_at_once_all_get_whole_snapshots(
    server: DashboardServer, state: Path
) -> None:
    """
    Request threads hand out the sampler's latest snapshot while it changes.
    """
    breaker = sqlite_breaker(state, "payments", failure_threshold=1000)
    errors: list[BaseException] = []
    totals: list[int] = []

    def poll() -> None:
        try:
            for _ in range(10):
                [view] = snapshot(server.port)["breakers"]["breakers"]  # type: ignore[index]
                totals.append(view["total_calls"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            raise

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    calls(breaker, ok=10, failed=10)
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(totals) == 4 * 10
    assert all(2 <= total <= 22 for total in totals)


class TestLoopbackOnly:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("127.0.0.1", True),
            ("127.8.9.10", True),
            ("::1", True),
            ("[::1]", True),
            ("localhost", True),
            ("0.0.0.0", False),
            ("192.168.1.5", False),
            ("example.org", False),
        ],
    )
    def test_is_loopback(self, host: str, expected: bool) -> None:
        assert is_loopback(host) is expected

    def test_a_remote_host_needs_allow_remote(self, state: Path) -> None:
        with pytest.raises(ConfigurationError, match="allow_remote"):
            DashboardServer(Collector(), host="0.0.0.0")

    def test_the_command_refuses_a_remote_host(
        self, state: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["dashboard", "--state", str(state), "--host", "0.0.0.0"])

        assert status == 2
        assert "--allow-remote" in capsys.readouterr().err
        assert not state.exists()

    def test_the_command_refuses_a_missing_repository(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["dashboard", "--repo", str(tmp_path / "nowhere")])

        assert status == 2
        assert "no backup repository" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--port", "-1"], "argument --port: must be a port number from 0 to 65535"),
        (["--port", "65536"], "argument --port: must be a port number from 0 to"),
        (["--port", "http"], "argument --port: must be a port number from 0 to"),
        (["--interval", "nan"], "argument --interval: must be a finite number"),
        (["--interval", "0"], "argument --interval: must be a finite number"),
    ],
)
def test_the_command_refuses_bad_numbers(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", *argv])

    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.integration
def test_the_command_serves_until_interrupted(state: Path) -> None:
    calls(sqlite_breaker(state, "payments"), failed=3)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recovery.cli",
            "dashboard",
            "--state",
            str(state),
            "--port",
            "0",
            "--interval",
            "0.1",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("recovery dashboard: serving on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1].strip("/\n"))

        assert breaker_states(port) == {"payments": "open"}
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        _, err = process.communicate(timeout=10)

    assert process.returncode == 0, err


def test_open_collector_over_the_default_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    calls(sqlite_breaker(tmp_path / "recovery" / "state.db", "nightly"), ok=1)

    collector = collector_from_args(build_parser().parse_args(["dashboard"]))
    section = collector.collect().breakers
    collector.close()

    assert section is not None
    assert [b.name for b in section.breakers] == ["nightly"]


def test_the_dashboard_never_creates_a_missing_state_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    done = subprocess.run(
        [sys.executable, "-m", "recovery.cli", "dashboard", "--state", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert f"no state file at {missing}" in done.stderr
    assert not missing.exists()
