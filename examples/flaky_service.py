"""
A local HTTP service that is overloaded for its first few requests.

The first `--failures` requests get `503 Service Unavailable` with a
`Retry-After` header of `--retry-after` seconds; every later request gets
`200 OK` and a short body. It exists to show, and to test, how
`recovery run` retries a real network call and honours the server's hint.

Run it with `python examples/flaky_service.py --port 0`: it prints
`listening on http://127.0.0.1:PORT` on stdout once it accepts requests,
and one line per request on stderr:

    request 1 at 4121.503211 answered 503 retry-after 0.2

The time is `time.monotonic()` in seconds, so the gaps between lines show
how long a client waited. Fractional `Retry-After` values are not standard
HTTP (which allows whole seconds or a date); they keep local runs short.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FlakyServer", "main"]


class FlakyServer(ThreadingHTTPServer):
    """
    An HTTP server that fails its first *failures* requests with 503.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], failures: int, retry_after: float):
        super().__init__(address, _Handler)
        self.failures = failures
        self.retry_after = retry_after
        self.requests = 0
        self._lock = threading.Lock()

    def count_request(self) -> int:
        """
        Count one more request and return its number (1-based).
        """
        with self._lock:
            self.requests += 1
            return self.requests


class _Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def do_GET(self) -> None:
        number = self.server.count_request()
        now = time.monotonic()

        if number <= self.server.failures:
            hint = f"{self.server.retry_after:g}"
            _report(f"request {number} at {now:.6f} answered 503 retry-after {hint}")
            self._answer(503, b"busy, try again later\n", {"Retry-After": hint})
            return

        _report(f"request {number} at {now:.6f} answered 200")
        self._answer(200, f"hello after {number} requests\n".encode(), {})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Requests are reported by do_GET in a fixed, parseable form instead.
        return


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """
    Serve until interrupted; return the exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to bind; 0 picks a free one"
    )
    parser.add_argument(
        "--failures", type=int, default=3, help="how many requests fail with 503"
    )
    parser.add_argument(
        "--retry-after",
        type=_non_negative,
        default=1.0,
        help="seconds sent in the Retry-After header of each 503",
    )
    args = parser.parse_args(argv)

    server = FlakyServer((args.host, args.port), args.failures, args.retry_after)
    host, port = server.server_address[:2]
    print(f"listening on http://{host!s}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        server.server_close()

    return 0


if __name__ == "__main__":
    sys.exit(main())
