"""
The dashboard's HTTP server: a JSON snapshot and a page that polls it.

`DashboardServer` runs the standard library's `ThreadingHTTPServer` on a
loopback address and one sampler thread. The sampler alone owns the
`Collector` (its stores keep per-thread connections and a rate history):
it collects every `interval` seconds and keeps the latest snapshot as
encoded JSON, which request threads only hand out. So the sources are read
once per interval however many pages are open.

Routes (GET only):

    /                 the page (static/index.html)
    /app.js           its script: polls /api/snapshot every interval
    /style.css        its style sheet
    /api/snapshot     the latest snapshot as JSON, plus "refresh" (seconds)

The server shows state but changes nothing. Even so it listens on
loopback only unless told otherwise (`allow_remote=True`), and, while on
loopback, answers only requests whose Host header names a loopback host,
so that a web page elsewhere cannot read it through DNS rebinding.
"""

from __future__ import annotations

import http.server
import importlib.resources
import ipaddress
import json
import logging
import socket
import threading
import urllib.parse
from types import TracebackType
from typing import ClassVar

from .._validation import require_positive
from ..errors import ConfigurationError
from .collect import Collector

__all__ = ["DashboardServer", "is_loopback"]

logger = logging.getLogger(__name__)

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """
    Return True when *host* (a name or an address) stays on this machine.
    """
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return (importlib.resources.files(__package__) / "static" / name).read_bytes()


class DashboardServer:
    """
    Serves the snapshots of *collector* on http://*host*:*port*/.

    *port* 0 picks a free port (see `url`). *interval* is the seconds
    between two collections, and the page's polling period. A host that is
    not loopback raises `ConfigurationError` unless *allow_remote*.

    Use it as a context manager, or call `start()` and `close()`; the
    collector is closed with the server.
    """

    def __init__(
        self,
        collector: Collector,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 1.0,
        allow_remote: bool = False,
    ) -> None:
        self._local_only = is_loopback(host)
        if not self._local_only and not allow_remote:
            raise ConfigurationError(
                f"host must be a loopback address (127.0.0.1, ::1, localhost), "
                f"got {host!r}; the dashboard shows internal state, so listening "
                f"elsewhere needs allow_remote=True"
            )
        self.collector = collector
        self.interval = require_positive("interval", interval)
        self._latest = b"{}"
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self._host = host
        self._httpd = _HttpServer((host, port), _Handler, self)

    @property
    def url(self) -> str:
        """
        The page's address, such as ``http://127.0.0.1:8765/``.
        """
        host = self._host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    @property
    def port(self) -> int:
        """
        The port the server listens on.
        """
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """
        Collect once, then serve and sample in background threads.
        """
        for target, name in (
            (self._sample_loop, "recovery-dashboard-sampler"),
            (self._serve, "recovery-dashboard-http"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
            # Serve only once there is a snapshot to serve.
            self._ready.wait(timeout=30)

    def wait(self) -> None:
        """
        Block until `close()` is called (from another thread or a signal).
        """
        while not self._stopped.wait(0.5):
            pass

    def close(self) -> None:
        """
        Stop serving and sampling, and close the collector's sources.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if not self._threads:
            self.collector.close()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _serve(self) -> None:
        # A short poll interval lets close() return promptly.
        self._httpd.serve_forever(poll_interval=0.05)

    # -- the sampler ------------------------------------------------------------

    def _sample_loop(self) -> None:
        # This thread alone uses the collector, closes included: its stores
        # hold per-thread connections.
        try:
            self._sample()
            self._ready.set()
            while not self._stopped.wait(self.interval):
                self._sample()
        finally:
            self._ready.set()
            self.collector.close()

    def _sample(self) -> None:
        data = self.collector.collect().to_json()
        data["refresh"] = self.interval
        encoded = json.dumps(data, separators=(",", ":")).encode()
        with self._lock:
            self._latest = encoded

    def latest(self) -> bytes:
        """
        Return the latest snapshot as encoded JSON.
        """
        with self._lock:
            return self._latest

    def host_allowed(self, host_header: str | None) -> bool:
        """
        Return True when a request with this Host header may be answered.
        """
        if not self._local_only:
            return True
        if not host_header:
            return False
        try:
            host = urllib.parse.urlsplit(f"//{host_header}").hostname
        except ValueError:
            return False
        return host is not None and is_loopback(host)


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        dashboard: DashboardServer,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.dashboard = dashboard
        super().__init__(address, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "recovery-dashboard"
    sys_version = ""

    _HEADERS: ClassVar[dict[str, str]] = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'self'",
        "Referrer-Policy": "no-referrer",
    }

    def do_GET(self) -> None:
        dashboard = self.server.dashboard
        if not dashboard.host_allowed(self.headers.get("Host")):
            self._send(403, "text/plain; charset=utf-8", b"loopback hosts only\n")
            return

        path = self.path.split("?", 1)[0]
        if path == "/api/snapshot":
            self._send(200, "application/json", dashboard.latest())
        elif path == "/favicon.ico":
            # No icon; answering keeps browsers from logging a failed load.
            self._send(204, "image/x-icon", b"")
        elif path in _STATIC:
            name, content_type = _STATIC[path]
            self._send(200, content_type, _static(name))
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in self._HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Requests arrive every second per page: debug detail, not news.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("dashboard %s: %s", self.address_string(), format % args)
