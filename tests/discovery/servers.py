"""
Real local servers for the discovery tests: they answer, stall, break and stop.

Every server runs on 127.0.0.1 in one background event-loop thread, so
sync tests, async tests and subprocesses can all probe them.
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
    Holds requests until `target` of them are in flight at once (or forever, never).
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
        await self.opened.wait()

    def leave(self) -> None:
        self.in_flight -= 1


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
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, backlog=2048
            )

        self.host_loop.call(start())

    def stop(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for task in list(self._handlers):
                task.cancel()

        self.host_loop.call(stop())

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.requests += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            if self.mode == "tcp":
                return
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ", 2)[1].decode())
            if self.gate is not None:
                try:
                    await self.gate.enter()
                finally:
                    self.gate.leave()
            if self.mode == "stall":
                await asyncio.sleep(3600)
            if self.mode == "garbage":
                writer.write(b"SSH-2.0-OpenSSH\r\n")
            else:
                writer.write(
                    f"HTTP/1.1 {self.status} Whatever\r\nContent-Length: 2\r\n"
                    "Connection: close\r\n\r\nok".encode()
                )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


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
