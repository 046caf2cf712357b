"""
Fixtures shared by every test module: real servers and free ports.

Tests that need Redis or PostgreSQL use the servers on 127.0.0.1 (6379 and
5432, database `test`). Where a server is not running, those tests skip with
a reason; with RECOVERY_REQUIRE_SERVICES=1 (as CI sets it) a missing server
fails the test instead, so CI always runs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REDIS_HOST = os.environ.get("RECOVERY_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("RECOVERY_TEST_REDIS_PORT", "6379"))
POSTGRES_DSN = os.environ.get(
    "RECOVERY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def _services_required() -> bool:
    return os.environ.get("RECOVERY_REQUIRE_SERVICES") == "1"


def _missing(reason: str) -> None:
    if _services_required():
        pytest.fail(f"{reason} (RECOVERY_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """
    Poll *condition* until it holds: for what a real thread, process or
    server will make true. Never a way to test timing.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    """
    Return a TCP port on 127.0.0.1 that nothing listens on right now.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unique_name() -> str:
    """
    A name no other test (or earlier run) uses: for keys, schemas and files.
    """
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url() -> str:
    """
    The URL of the shared Redis server; skips (or fails in CI) without one.
    """
    pytest.importorskip("redis", reason="the redis extra is not installed")
    if not _port_open(REDIS_HOST, REDIS_PORT):
        _missing(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def postgres_dsn() -> str:
    """
    The DSN of the shared PostgreSQL database; skips (or fails in CI) without it.
    """
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    if not _port_open("127.0.0.1", 5432):
        _missing("no PostgreSQL server on 127.0.0.1:5432")
    return POSTGRES_DSN


class PrivateRedis:
    """
    A redis-server of the test's own, on a free port, that the test may kill.
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _port_open("127.0.0.1", self.port), interval=0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """
    A private, started redis-server; killed at the end of the test.
    """
    pytest.importorskip("redis", reason="the redis extra is not installed")
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed")
    with tempfile.TemporaryDirectory() as directory:
        server = PrivateRedis(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()
