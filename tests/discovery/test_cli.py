"""
`recovery services check`, run as a real subprocess against real local servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.discovery.servers import HttpServer, http_servers

pytestmark = pytest.mark.integration


@pytest.fixture
def servers() -> Iterator[list[HttpServer]]:
    with http_servers(3) as servers:
        yield servers


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", "services", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def rows(output: str) -> dict[str, list[str]]:
    """Map each endpoint address in a printed table to its row's cells."""
    table = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) >= 4 and ":" in cells[1]:
            table[cells[1]] = cells
    return table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.toml"
    path.write_text(text)
    return path


class TestCheckOnce:
    def test_prints_health_and_latency_and_fails_on_a_down_endpoint(
        self, tmp_path: Path, servers: list[HttpServer]
    ) -> None:
        ok, broken, tcp = servers
        broken.status = 503
        tcp.mode = "tcp"
        closed = f"127.0.0.1:{free_port()}"
        path = write(
            tmp_path,
            f"""
[services.api]
endpoints = ["{ok.address}", "{broken.address}"]
check = {{ type = "http", path = "/health" }}

[services.cache]
endpoints = ["{tcp.address}", "{closed}"]
""",
        )

        result = run("check", str(path))

        table = rows(result.stdout)
        assert result.returncode == 1, result.stderr
        assert table[ok.address][:3] == ["api", ok.address, "up"]
        assert table[ok.address][3].endswith(" ms")
        assert table[broken.address][2] == "down"
        assert "HTTP status 503" in table[broken.address][4]
        assert table[tcp.address][2] == "up"
        assert table[closed][2] == "down"
        assert "ConnectionRefusedError" in table[closed][4]
        assert ok.paths == ["/health"]

    def test_exits_zero_when_everything_is_up(
        self, tmp_path: Path, servers: list[HttpServer]
    ) -> None:
        path = write(
            tmp_path,
            f'[services.api]\nendpoints = ["{servers[0].address}"]\n'
            'check = { type = "http" }\n',
        )

        result = run("check", str(path), "--service", "api")

        assert result.returncode == 0, result.stderr
        assert rows(result.stdout)[servers[0].address][2] == "up"

    def test_a_bad_file_exits_two_with_a_reason(self, tmp_path: Path) -> None:
        path = write(tmp_path, "[services.api]\nendpoints = ['h:0']\n")

        result = run("check", str(path))

        assert result.returncode == 2
        assert "port between 1 and 65535" in result.stderr
        assert result.stdout == ""


class TestWatch:
    @pytest.mark.slow
    def test_refreshes_until_the_fall_threshold_is_reached(
        self, tmp_path: Path, servers: list[HttpServer]
    ) -> None:
        good, bad, _ = servers
        bad.status = 500
        path = write(
            tmp_path,
            f"""
[services.api]
endpoints = ["{good.address}", "{bad.address}"]
check = {{ type = "http", fall = 3, rise = 1 }}
""",
        )

        before = run(
            "check", str(path), "--watch", "--iterations", "2", "--refresh", "0.01"
        )
        after = run(
            "check", str(path), "--watch", "--iterations", "3", "--refresh", "0.01"
        )

        assert before.returncode == 0, before.stderr
        assert rows(before.stdout)[bad.address][2:4] == ["healthy", "down"]
        assert after.returncode == 1, after.stderr
        assert rows(after.stdout)[bad.address][2:4] == ["unhealthy", "down"]
        assert rows(after.stdout)[good.address][2:4] == ["healthy", "up"]
        assert bad.requests == 2 + 3
