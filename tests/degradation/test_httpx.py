"""
The httpx transports against a real HTTP server on 127.0.0.1: retries of
idempotent requests, Retry-After hints, failures counted by a breaker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from recovery.errors import CircuitOpenError
from recovery.integrations.httpx import (
    TRANSIENT_ERRORS,
    AsyncRecoveryTransport,
    RecoveryTransport,
    ResponseStatusError,
)
from recovery.policies.backoff import constant
from recovery.policies.breaker import CircuitBreaker
from recovery.policies.fallback import Fallback
from recovery.policies.pipeline import Pipeline
from recovery.policies.retry import Retry
from recovery.testing import FakeClock

Reply = tuple[int, dict[str, str], bytes]


class Server:
    """A scripted HTTP server: each request takes the next reply of its path."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with server.lock:
                    server.seen.append((self.command, self.path))
                    script = server.replies.get(self.path) or [(200, {}, b"ok")]
                    status, headers, body = (
                        script.pop(0) if len(script) > 1 else script[0]
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = handle_any  # noqa: N815 - http.server names

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.01,), daemon=True
        )
        self.thread.start()

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def retry(clock: FakeClock, attempts: int = 3) -> Retry:
    return Retry(
        on=TRANSIENT_ERRORS,
        attempts=attempts,
        backoff=constant(0.5),
        max_hint=60,
        clock=clock,
    )


class TestSync:
    def test_server_errors_are_retried(self, server: Server) -> None:
        clock = FakeClock()
        server.script("/a", (503, {}, b"busy"), (200, {}, b"fine"))
        client = httpx.Client(transport=RecoveryTransport(retry(clock)))

        response = client.get(f"{server.url}/a")

        assert (response.status_code, response.text) == (200, "fine")
        assert server.seen == [("GET", "/a"), ("GET", "/a")]
        assert clock.sleeps == [0.5]

    def test_retry_after_seconds_is_honoured(self, server: Server) -> None:
        clock = FakeClock()
        server.script("/a", (429, {"Retry-After": "7"}, b""), (200, {}, b"ok"))
        client = httpx.Client(transport=RecoveryTransport(retry(clock)))

        assert client.get(f"{server.url}/a").status_code == 200
        assert clock.sleeps == [7.0]

    def test_retry_after_date_is_handed_to_the_retry(self, server: Server) -> None:
        clock = FakeClock()
        when = "Tue, 14 Nov 2023 22:13:32 GMT"  # 12 s after the fake wall start
        server.script("/a", (503, {"Retry-After": when}, b""), (200, {}, b"ok"))
        client = httpx.Client(transport=RecoveryTransport(retry(clock)))

        assert client.get(f"{server.url}/a").status_code == 200
        assert clock.sleeps == [12.0]

    def test_the_exception_carries_the_response(self, server: Server) -> None:
        failures: list[Exception] = []

        def record(failure: Exception, request: httpx.Request) -> httpx.Response:
            failures.append(failure)
            return httpx.Response(200, text="from fallback", request=request)

        server.script(
            "/a", (503, {"Retry-After": "Tue, 14 Nov 2023 22:13:32 GMT"}, b"x")
        )
        client = httpx.Client(transport=RecoveryTransport(Fallback(record)))

        assert client.get(f"{server.url}/a").text == "from fallback"
        [failure] = failures
        assert isinstance(failure, ResponseStatusError)
        assert failure.status_code == 503
        assert failure.retry_after == "Tue, 14 Nov 2023 22:13:32 GMT"
        assert failure.response.content == b"x"

    def test_post_is_not_retried(self, server: Server) -> None:
        clock = FakeClock()
        server.script("/pay", (503, {}, b"busy"), (200, {}, b"paid"))
        client = httpx.Client(transport=RecoveryTransport(retry(clock)))

        response = client.post(f"{server.url}/pay", content=b"{}")

        assert (response.status_code, response.text) == (503, "busy")
        assert server.seen == [("POST", "/pay")]

    def test_post_with_an_idempotency_key_is_retried(self, server: Server) -> None:
        server.script("/pay", (503, {}, b"busy"), (200, {}, b"paid"))
        client = httpx.Client(transport=RecoveryTransport(retry(FakeClock())))

        response = client.post(
            f"{server.url}/pay", content=b"{}", headers={"Idempotency-Key": "k1"}
        )

        assert response.text == "paid"
        assert len(server.seen) == 2

    def test_last_failing_response_is_returned(self, server: Server) -> None:
        server.script("/a", (502, {}, b"bad gateway"))
        client = httpx.Client(transport=RecoveryTransport(retry(FakeClock())))

        response = client.get(f"{server.url}/a")

        assert (response.status_code, response.text) == (502, "bad gateway")
        assert len(server.seen) == 3

    def test_client_errors_are_not_failures(self, server: Server) -> None:
        server.script("/a", (404, {}, b"missing"))
        client = httpx.Client(transport=RecoveryTransport(retry(FakeClock())))

        assert client.get(f"{server.url}/a").status_code == 404
        assert len(server.seen) == 1

    def test_breaker_counts_server_errors_and_guards_posts(
        self, server: Server
    ) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(
            "api", failure_threshold=2, reset_timeout=30, clock=clock
        )
        server.script("/a", (500, {}, b"boom"))
        transport = RecoveryTransport(
            Pipeline(retry(clock, attempts=1), breaker, name="api")
        )
        client = httpx.Client(transport=transport)

        assert client.get(f"{server.url}/a").status_code == 500
        assert client.post(f"{server.url}/a").status_code == 500
        with pytest.raises(CircuitOpenError):
            client.post(f"{server.url}/a")
        assert len(server.seen) == 2

    def test_network_errors_are_retried_then_raised(self) -> None:
        from tests.conftest import free_port

        clock = FakeClock()
        client = httpx.Client(transport=RecoveryTransport(retry(clock)))

        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{free_port()}/")
        assert clock.sleeps == [0.5, 0.5]


class TestAsync:
    async def test_server_errors_are_retried(self, server: Server) -> None:
        clock = FakeClock()
        server.script("/a", (503, {"Retry-After": "2"}, b""), (200, {}, b"fine"))
        async with httpx.AsyncClient(
            transport=AsyncRecoveryTransport(retry(clock))
        ) as client:
            response = await client.get(f"{server.url}/a")

        assert response.text == "fine"
        assert clock.sleeps == [2.0]

    async def test_post_is_not_retried(self, server: Server) -> None:
        server.script("/pay", (503, {}, b"busy"), (200, {}, b"paid"))
        async with httpx.AsyncClient(
            transport=AsyncRecoveryTransport(retry(FakeClock()))
        ) as client:
            response = await client.post(f"{server.url}/pay", content=b"{}")

        assert response.status_code == 503
        assert server.seen == [("POST", "/pay")]
