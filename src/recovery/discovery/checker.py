"""
Running active checks: once, on a schedule, in a task or in a thread.

`HealthChecker` probes every endpoint of every service that has a check and
reports each result to the registry. Probes run concurrently on asyncio, so
a round over 500 endpoints takes about as long as the slowest probe, not
their sum. `max_concurrency` bounds the probes in flight when that matters
(file descriptors, a fragile network).

Three ways to run it:

- `await checker.check_once()`: one round now, every endpoint (the CLI).
- `await checker.run()`: forever, each endpoint every `interval` of its
  check, sleeping on the injected clock; run it as an asyncio task.
- `checker.start()` / `checker.stop()` (or `with checker:`): the same loop
  in a daemon thread with its own event loop, for sync programs.

`run_due()` is the step under `run()`: it probes what is due and returns
the seconds until the next probe, which lets tests drive the schedule with
a `FakeClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Iterable
from types import TracebackType

from .._validation import require_int, require_positive
from ..clock import Clock
from .checks import CheckResult, HealthCheck
from .endpoint import Endpoint
from .registry import ServiceRegistry

__all__ = ["HealthChecker"]

logger = logging.getLogger(__name__)


class HealthChecker:
    """
    Runs the registry's active checks and reports their results to it.

    Args:
        registry: whose endpoints to probe and where to report.
        clock: the clock for the schedule (the registry's by default).
        max_concurrency: probes in flight at most (None: no bound).
        idle_interval: seconds to wait when no service has a check yet.
    """

    def __init__(
        self,
        registry: ServiceRegistry,
        *,
        clock: Clock | None = None,
        max_concurrency: int | None = None,
        idle_interval: float = 1.0,
    ) -> None:
        self._registry = registry
        self._clock = clock if clock is not None else registry.clock
        self._limit = (
            None
            if max_concurrency is None
            else require_int("max_concurrency", max_concurrency, minimum=1)
        )
        self._idle = require_positive("idle_interval", idle_interval)
        self._due: dict[Endpoint, float] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def check_once(
        self, services: Iterable[str] | None = None
    ) -> list[CheckResult]:
        """
        Probe every checked endpoint (of *services*, if given) once, now.
        """
        wanted = None if services is None else set(services)
        targets = [
            (ep, check)
            for ep, check in self._registry.check_targets()
            if wanted is None or ep.service in wanted
        ]

        return await self._probe_all(targets)

    async def run_due(self) -> float:
        """
        Probe the endpoints that are due now; return seconds until the next one.
        """
        now = self._clock.now()
        targets = self._registry.check_targets()
        current = {ep for ep, _ in targets}
        for gone in [ep for ep in self._due if ep not in current]:
            del self._due[gone]

        due = [(ep, check) for ep, check in targets if self._due.get(ep, now) <= now]
        for ep, check in due:
            self._due[ep] = now + check.interval
        if due:
            await self._probe_all(due)

        if not self._due:
            return math.inf
        return max(0.0, min(self._due.values()) - self._clock.now())

    async def run(self) -> None:
        """
        Probe on schedule until cancelled.
        """
        while True:
            delay = await self.run_due()
            await self._clock.asleep(min(delay, self._idle))

    def start(self) -> None:
        """
        Run the schedule in a daemon thread with its own event loop.
        """
        if self._thread is not None:
            raise RuntimeError("this HealthChecker is already running")

        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="recovery-health", daemon=True
        )
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float | None = 10.0) -> None:
        """
        Stop the thread started by `start()` and wait for it to end.
        """
        thread, loop, task = self._thread, self._loop, self._task
        if thread is None:
            return
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> HealthChecker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self.run())
        ready.set()
        try:
            # `stop()` cancels the task: that is how this thread ends.
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        finally:
            loop.close()

    async def _probe_all(
        self, targets: list[tuple[Endpoint, HealthCheck]]
    ) -> list[CheckResult]:
        if self._limit is None:
            results = await asyncio.gather(*(check.run(ep) for ep, check in targets))
        else:
            gate = asyncio.Semaphore(self._limit)
            results = await asyncio.gather(
                *(_gated(gate, check, ep) for ep, check in targets)
            )

        for (ep, _), result in zip(targets, results, strict=True):
            self._registry.report_check(
                ep, result.passed, latency=result.latency, error=result.error
            )
        return list(results)


async def _gated(
    gate: asyncio.Semaphore, check: HealthCheck, ep: Endpoint
) -> CheckResult:
    async with gate:
        return await check.run(ep)
