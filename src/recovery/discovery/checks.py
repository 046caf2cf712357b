"""
Active health checks: probes that a `HealthChecker` runs against endpoints.

Three kinds come built in, all on the standard library:

- `CallableCheck(fn)`: your own function, sync or async, given the endpoint.
  It fails by raising or by returning False.
- `TcpCheck()`: a TCP connection to the endpoint's host and port opens.
- `HttpCheck("/health")`: a GET answers with a status in `expect`.

Every check carries its schedule and verdict thresholds: `interval` between
probes of one endpoint, `timeout` for one probe, and `rise` / `fall`, the
passes or failures in a row that turn an endpoint healthy or unhealthy.
Probes are coroutines, so a checker runs hundreds of them concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable

from .._validation import require_int, require_positive
from ..errors import ConfigurationError
from .endpoint import Endpoint

__all__ = [
    "CallableCheck",
    "CheckFailedError",
    "CheckResult",
    "HealthCheck",
    "HttpCheck",
    "TcpCheck",
]

_MAX_STATUS_LINE = 8192


class CheckFailedError(Exception):
    """
    A probe reached the endpoint, but the answer was not a healthy one.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    """
    The outcome of one probe of one endpoint.

    `latency` is the probe's duration in seconds; `error` says why it
    failed (None when it passed).
    """

    service: str
    address: str
    passed: bool
    latency: float
    error: str | None = None


class HealthCheck:
    """
    The schedule and thresholds shared by every check; subclasses probe.

    Args:
        interval: seconds between two probes of the same endpoint.
        timeout: seconds one probe may take before it counts as failed.
        rise: passes in a row that make an unhealthy endpoint healthy.
        fall: failures in a row that make a healthy endpoint unhealthy.
    """

    __slots__ = ("fall", "interval", "rise", "timeout")

    def __init__(
        self,
        *,
        interval: float = 10.0,
        timeout: float = 2.0,
        rise: int = 2,
        fall: int = 3,
    ) -> None:
        self.interval = require_positive("interval", interval)
        self.timeout = require_positive("timeout", timeout)
        self.rise = require_int("rise", rise, minimum=1)
        self.fall = require_int("fall", fall, minimum=1)

    async def probe(self, endpoint: Endpoint) -> None:
        """
        Probe *endpoint* once; return if healthy, raise any Exception if not.
        """
        raise NotImplementedError

    async def run(self, endpoint: Endpoint) -> CheckResult:
        """
        Probe *endpoint* within `timeout` and return the result; never raises.

        Cancellation of the caller still propagates: only `Exception`s count
        as a failed probe.
        """
        started = time.perf_counter()
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                await self.probe(endpoint)
        except TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure is a failed probe
            error = _describe(exc)

        latency = time.perf_counter() - started
        return CheckResult(
            service=endpoint.service or "",
            address=endpoint.address,
            passed=error is None,
            latency=latency,
            error=error,
        )

    def _settings(self) -> str:
        return (
            f"interval={self.interval:g}, timeout={self.timeout:g}, "
            f"rise={self.rise}, fall={self.fall}"
        )


class CallableCheck(HealthCheck):
    """
    A check that calls your function with the endpoint.

    The function may be sync or async. It fails the probe by raising or by
    returning False; any other return value passes. A sync function runs in
    a worker thread so it does not block the other probes, which bounds the
    number of sync probes in flight at once by the default executor's size.
    """

    __slots__ = ("_fn",)

    def __init__(
        self,
        fn: Callable[[Endpoint], object],
        *,
        interval: float = 10.0,
        timeout: float = 2.0,
        rise: int = 2,
        fall: int = 3,
    ) -> None:
        super().__init__(interval=interval, timeout=timeout, rise=rise, fall=fall)
        if not callable(fn):
            raise ConfigurationError(f"fn must be callable, got {fn!r}")
        self._fn = fn

    async def probe(self, endpoint: Endpoint) -> None:
        """
        Call the function; a False result or an exception fails the probe.
        """
        if inspect.iscoroutinefunction(self._fn):
            result = await self._fn(endpoint)
        else:
            result = await asyncio.to_thread(self._fn, endpoint)
            if inspect.isawaitable(result):
                result = await _awaited(result)

        if result is False:
            raise CheckFailedError("the check function returned False")

    def __repr__(self) -> str:
        return f"CallableCheck({self._fn!r}, {self._settings()})"


async def _awaited(result: Awaitable[object]) -> object:
    return await result


class TcpCheck(HealthCheck):
    """
    A check that passes when a TCP connection to the endpoint opens.
    """

    __slots__ = ()

    async def probe(self, endpoint: Endpoint) -> None:
        """
        Open a connection to the endpoint's host and port, then close it.
        """
        port = _require_port(endpoint)
        _, writer = await asyncio.open_connection(endpoint.host, port)
        writer.close()
        await _closed(writer)

    def __repr__(self) -> str:
        return f"TcpCheck({self._settings()})"


class HttpCheck(HealthCheck):
    """
    A check that GETs a path and expects a status code from a set.

    Args:
        path: the path to request, such as ``"/health"``.
        expect: the status codes that pass (by default 200 to 299).
        tls: use HTTPS; also implied by an ``https://`` endpoint address.
        host_header: the Host header to send (by default host:port).
    """

    __slots__ = ("expect", "host_header", "path", "tls")

    def __init__(
        self,
        path: str = "/health",
        *,
        expect: Iterable[int] = range(200, 300),
        tls: bool = False,
        host_header: str | None = None,
        interval: float = 10.0,
        timeout: float = 2.0,
        rise: int = 2,
        fall: int = 3,
    ) -> None:
        super().__init__(interval=interval, timeout=timeout, rise=rise, fall=fall)
        if not path.startswith("/") or any(c in path for c in "\r\n "):
            raise ConfigurationError(
                f"path must start with '/' and hold no spaces or newlines, got {path!r}"
            )
        self.path = path
        self.expect = frozenset(expect)
        if not self.expect or not all(100 <= code <= 599 for code in self.expect):
            raise ConfigurationError(
                f"expect must hold status codes between 100 and 599, got {expect!r}"
            )
        self.tls = tls
        self.host_header = host_header

    async def probe(self, endpoint: Endpoint) -> None:
        """
        Send one GET and read the status line; an unexpected code fails.
        """
        port = _require_port(endpoint)
        use_tls = self.tls or endpoint.address.startswith("https://")
        context = ssl.create_default_context() if use_tls else None
        reader, writer = await asyncio.open_connection(
            endpoint.host, port, ssl=context, limit=_MAX_STATUS_LINE
        )
        try:
            host = self.host_header or _host_header(endpoint.host, port)
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\n"
                "User-Agent: recovery-health-check\r\nAccept: */*\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            await _closed(writer)

        status = _parse_status(status_line)
        if status not in self.expect:
            raise CheckFailedError(f"HTTP status {status}")

    def __repr__(self) -> str:
        return f"HttpCheck({self.path!r}, {self._settings()})"


def _describe(exc: Exception) -> str:
    # OSError's str() repeats the errno ("[Errno 111] ..."); its name says it.
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _require_port(endpoint: Endpoint) -> int:
    if endpoint.port is None:
        raise CheckFailedError(f"address {endpoint.address!r} names no port")

    return endpoint.port


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_status(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        shown = line[:80].decode("latin-1").strip() or "nothing"
        raise CheckFailedError(f"not an HTTP response: {shown!r}")

    return int(parts[1])


async def _closed(writer: asyncio.StreamWriter) -> None:
    # A peer that resets the connection on close is still a peer that answered.
    with contextlib.suppress(OSError):
        await writer.wait_closed()
