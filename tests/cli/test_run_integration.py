"""
`recovery run` as a real process, against a real local HTTP service.

examples/flaky_service.py answers 503 with a Retry-After hint to its first
requests; `recovery run` retries examples/fetch.py against it. The service
logs the monotonic time of each request, so the waits that really happened
can be checked against the hints it sent.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RECOVERY = [sys.executable, "-m", "recovery.cli"]
FETCH = [sys.executable, str(EXAMPLES / "fetch.py")]

_REQUEST = re.compile(
    r"request (\d+) at ([\d.]+) answered (\d+)(?: retry-after ([\d.]+))?$"
)


@dataclass(frozen=True)
class Request:
    number: int
    at: float
    status: int
    retry_after: float | None


class FlakyService:
    """
    examples/flaky_service.py running on a free loopback port.
    """

    def __init__(self, failures: int, retry_after: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLES / "flaky_service.py"),
                "--port",
                "0",
                "--failures",
                str(failures),
                "--retry-after",
                str(retry_after),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.url = line.split()[-1]

    def stop(self) -> list[Request]:
        """
        Stop the service and return the requests it answered, in order.
        """
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        requests = []
        for line in err.splitlines():
            match = _REQUEST.fullmatch(line.strip())
            if match:
                number, at, status, hint = match.groups()
                requests.append(
                    Request(
                        int(number),
                        float(at),
                        int(status),
                        None if hint is None else float(hint),
                    )
                )
        return requests


@pytest.fixture
def service() -> Iterator[FlakyService]:
    """
    A service failing its first two requests with a 0.1 s Retry-After.
    """
    flaky = FlakyService(failures=2, retry_after=0.1)
    try:
        yield flaky
    finally:
        if flaky.process.poll() is None:
            flaky.process.kill()
            flaky.process.communicate(timeout=10)


def recovery_run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECOVERY, "run", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_until(stream: IO[str] | None, marker: str, timeout: float = 10.0) -> str:
    """
    Read lines from a pipe until one contains *marker*; fail after *timeout*.
    """
    assert stream is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {timeout} s; got {seen!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            line = stream.readline()
            assert line, f"pipe closed before {marker!r}; got {seen!r}"
            seen += line
    return seen


def stop(process: subprocess.Popen[str]) -> None:
    """
    Kill *process* if a failed test left it running, and close its pipes.
    """
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def test_retries_until_the_service_answers(service: FlakyService) -> None:
    """
    Three requests, each wait at least the hint the service sent, exit 0.
    """
    result = recovery_run(
        "--attempts", "5", "--backoff", "exponential", "--initial", "0.01",
        "--max-delay", "2", "--jitter", "none", "--retry-on-exit", "75",
        "--", *FETCH, service.url,
    )  # fmt: skip
    requests = service.stop()

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello after 3 requests\n"
    assert [r.status for r in requests] == [503, 503, 200]
    assert [r.number for r in requests] == [1, 2, 3]
    for before, after in itertools.pairwise(requests):
        assert before.retry_after == 0.1
        assert after.at - before.at >= before.retry_after
    assert result.stderr.count("retrying in 0.10 s as the command asked") == 2


def test_too_few_attempts_ends_with_the_commands_status(
    service: FlakyService,
) -> None:
    result = recovery_run(
        "--attempts", "2", "--initial", "0.01", "--retry-on-exit", "75",
        "--", *FETCH, service.url,
    )  # fmt: skip
    requests = service.stop()

    assert result.returncode == 75
    assert result.stdout == ""
    assert [r.status for r in requests] == [503, 503]
    assert "attempt 2 of 2 failed (exit status 75); giving up" in result.stderr


def test_timeout_ends_an_attempt_with_124() -> None:
    """
    A command that ignores SIGTERM is killed after --kill-after.
    """
    result = recovery_run(
        "--attempts", "2", "--timeout", "0.1", "--kill-after", "0.1",
        "--initial", "0", "--jitter", "none",
        "--", "sh", "-c", "trap '' TERM; exec sleep 30",
    )  # fmt: skip

    assert result.returncode == 124
    assert result.stderr.count("timed out after 0.1 s, exit status 124") == 2


def test_deadline_ends_a_running_attempt() -> None:
    result = recovery_run(
        "--attempts", "5", "--deadline", "0.3", "--kill-after", "0.1",
        "--", "sh", "-c", "exec sleep 30",
    )  # fmt: skip

    assert result.returncode == 124
    assert (
        "attempt 1 of 5 failed (stopped at the deadline, exit status 124); "
        "giving up: deadline of 0.3 s would be exceeded"
    ) in result.stderr


# A child that says when it is ready, and reports the signal it gets.
_WAITING_CHILD = """
import os, signal, sys, time
def stop(signum, frame):
    print("child got", signal.Signals(signum).name, flush=True)
    sys.exit(9)
signal.signal(signal.SIGTERM, stop)
print("attempt", os.environ["RECOVERY_ATTEMPT"], "running", flush=True)
time.sleep(30)
"""


def test_sigterm_reaches_the_child_and_stops_retrying() -> None:
    process = subprocess.Popen(
        [*RECOVERY, "run", "--attempts", "5", "--initial", "0", "--jitter", "none",
         "--", sys.executable, "-c", _WAITING_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        read_until(process.stdout, "attempt 1 running")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        stop(process)

    assert process.returncode == 143
    assert out == "child got SIGTERM\n"
    assert "stopped by SIGTERM; not retrying" in err


def _default_sigint() -> None:
    # A test runner started as a background job ignores SIGINT, and so
    # would its children; the process under test must see it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_ends_the_wait_between_attempts_at_once() -> None:
    process = subprocess.Popen(
        [*RECOVERY, "run", "--attempts", "5", "--initial", "30", "--jitter", "none",
         "--", "sh", "-c", "echo attempt $RECOVERY_ATTEMPT; exit 1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Safe here: the hook only resets one signal, in the forked child.
        preexec_fn=_default_sigint,  # noqa: PLW1509
    )  # fmt: skip
    try:
        read_until(process.stderr, "retrying in 30.00 s")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        stop(process)

    assert process.returncode == 130
    assert out == "attempt 1\n"
    assert "stopped by SIGINT; not retrying" in err


@pytest.mark.slow
def test_demo_script_succeeds() -> None:
    """
    examples/demo.sh, as a user runs it from the repository root.
    """
    env = dict(os.environ, PYTHON=sys.executable)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    shell = shutil.which("sh")
    assert shell is not None

    result = subprocess.run(
        [shell, "examples/demo.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello after 3 requests\n"
    assert "demo: recovery run exited with status 0" in result.stderr


def test_breaker_in_redis_is_shared_by_separate_runs(
    redis_url: str, unique_name: str
) -> None:
    """
    Each run is its own process; the open circuit is remembered in Redis.
    """
    pytest.importorskip("recovery.cli._breakers")
    import redis

    argv = ["--attempts", "1", "--breaker", unique_name, "--redis", redis_url]
    try:
        statuses: list[int] = []
        while 75 not in statuses and len(statuses) < 20:
            statuses.append(recovery_run(*argv, "--", "false").returncode)
        last = recovery_run(*argv, "--", "true")
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"*{unique_name}*"))
        if keys:
            client.delete(*keys)
        client.close()

    assert statuses[-1] == 75
    assert set(statuses[:-1]) == {1}
    assert last.returncode == 75
    assert f"circuit {unique_name!r} is open; not running the command" in last.stderr
