"""
Real local servers for the discovery tests: they answer, stall, break and stop.

Every server runs on 127.0.0.1 in one background event-loop thread, so sync
tests, async tests and subprocesses can all probe them. Servers are plain
asyncio protocols that keep every connection's transport, so stopping one
closes all its sockets at once, whatever state each connection is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator

from tests.conftest import free_port


class ServerLoop:
    """
    An event loop in a daemon thread that hosts any number of test servers.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[object, object, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Gate:
    """
    Holds requests until `target` of them are in flight at once.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.in_flight = 0
        self.peak = 0
        self.opened: asyncio.Event | None = None

    async def enter(self) -> None:
        if self.opened is None:
            self.opened = asyncio.Event()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.target:
            self.opened.set()
        try:
            await self.opened.wait()
        finally:
            self.in_flight -= 1


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.transports.add(transport)
        self.server.requests += 1
        if self.server.mode == "tcp":
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer or self.transport is None:
            return
        self.server.paths.append(self.buffer.split(b" ", 2)[1].decode())
        if self.server.mode == "stall":
            return
        if self.server.gate is None:
            self.answer()
        else:
            task = asyncio.get_running_loop().create_task(self.answer_after_gate())
            self.server.tasks.add(task)
            task.add_done_callback(self.server.tasks.discard)

    async def answer_after_gate(self) -> None:
        assert self.server.gate is not None
        await self.server.gate.enter()
        self.answer()

    def answer(self) -> None:
        assert self.transport is not None
        if self.server.mode == "garbage":
            self.transport.write(b"SSH-2.0-OpenSSH\r\n")
        else:
            self.transport.write(
                f"HTTP/1.1 {self.server.status} Whatever\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\nok".encode()
            )
        self.transport.close()


class HttpServer:
    """
    A tiny HTTP server whose answer (status, stall, garbage) the test sets.

    `mode` is "http" (answer `status`), "stall" (never answer), "garbage"
    (answer something that is not HTTP) or "tcp" (accept and close).
    """

    def __init__(self, host_loop: ServerLoop, *, status: int = 200) -> None:
        self.host_loop = host_loop
        self.port = free_port()
        self.status = status
        self.mode = "http"
        self.gate: Gate | None = None
        self.requests = 0
        self.paths: list[str] = []
        self.transports: set[asyncio.Transport] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        async def start() -> None:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: _Connection(self), "127.0.0.1", self.port, backlog=2048
            )

        self.host_loop.call(start())

    def stop(self) -> None:
        async def stop() -> None:
            # Let connections already accepted get their transport first:
            # on Python 3.11, closing the server between the accept and the
            # transport's creation leaks the accepted socket.
            for _ in range(3):
                await asyncio.sleep(0)
            if self._server is not None:
                self._server.close()
                self._server = None
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for transport in list(self.transports):
                transport.close()
            # Two turns: accepted connections finish connection_made, then
            # every close() above completes.
            for _ in range(2):
                await asyncio.sleep(0)
            for transport in list(self.transports):
                transport.close()
            await asyncio.sleep(0)

        self.host_loop.call(stop())


@contextlib.contextmanager
def http_servers(count: int, **kwargs: int) -> Iterator[list[HttpServer]]:
    """
    Start *count* HTTP servers on one loop thread; stop them all afterwards.
    """
    host_loop = ServerLoop()
    servers = [HttpServer(host_loop, **kwargs) for _ in range(count)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        host_loop.close()
