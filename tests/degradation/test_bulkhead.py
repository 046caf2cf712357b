"""
Bulkhead: concurrency cap, bounded FIFO queue, queue timeouts, and the
counts staying exact under threads and tasks hammering one bulkhead.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable

import pytest

from recovery.errors import BulkheadFullError, ConfigurationError
from recovery.events import Event
from recovery.policies.bulkhead import Bulkhead, BulkheadRejected
from recovery.testing import FakeClock
from tests.conftest import wait_until


def until(condition: Callable[[], bool]) -> None:
    """Poll briefly for another thread to reach a state (not a timing test)."""
    wait_until(condition, timeout=5, interval=0.0005)


class Holder:
    """A thread that holds a bulkhead slot until released."""

    def __init__(self, bulkhead: Bulkhead) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(bulkhead,))
        self.thread.start()

    def _run(self, bulkhead: Bulkhead) -> None:
        def hold() -> None:
            self.entered.set()
            self.release.wait()

        try:
            bulkhead.call(hold)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self.release.set()
        self.thread.join()


class TestSync:
    def test_rejects_beyond_the_limit_without_a_queue(self) -> None:
        bulkhead = Bulkhead(2, name="db")
        holders = [Holder(bulkhead) for _ in range(2)]
        for holder in holders:
            holder.entered.wait()

        with pytest.raises(BulkheadFullError) as caught:
            bulkhead.call(lambda: None)

        assert caught.value.retry_after is None
        assert "db" in str(caught.value)
        for holder in holders:
            holder.finish()
        assert bulkhead.call(lambda: "ok") == "ok"
        assert bulkhead.active == 0

    def test_queue_is_bounded_and_served_in_order(self) -> None:
        bulkhead = Bulkhead(1, max_queued=2)
        first = Holder(bulkhead)
        first.entered.wait()
        second, third = Holder(bulkhead), None
        until(lambda: bulkhead.queued == 1)
        third = Holder(bulkhead)
        until(lambda: bulkhead.queued == 2)

        with pytest.raises(BulkheadFullError, match="full"):
            bulkhead.call(lambda: None)

        first.finish()
        second.entered.wait()
        assert not third.entered.is_set()
        second.finish()
        third.entered.wait()
        third.finish()
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    def test_queue_timeout_on_the_injected_clock(self) -> None:
        clock = FakeClock()
        events: list[Event] = []
        bulkhead = Bulkhead(
            1,
            max_queued=1,
            queue_timeout=5,
            name="pool",
            clock=clock,
            listeners=(events.append,),
        )
        holder = Holder(bulkhead)
        holder.entered.wait()
        waiter = Holder(bulkhead)
        until(lambda: bulkhead.queued == 1)

        clock.advance(4.999)
        assert waiter.thread.is_alive()
        clock.advance(0.001)
        waiter.thread.join()

        assert isinstance(waiter.error, BulkheadFullError)
        assert bulkhead.queued == 0
        assert events == [
            BulkheadRejected(
                source="pool", pipeline=None, reason="queue timeout", active=1, queued=0
            )
        ]
        holder.finish()
        assert bulkhead.active == 0

    def test_zero_queue_timeout_never_queues(self) -> None:
        bulkhead = Bulkhead(1, max_queued=5, queue_timeout=0)
        holder = Holder(bulkhead)
        holder.entered.wait()

        with pytest.raises(BulkheadFullError):
            bulkhead.call(lambda: None)
        holder.finish()

    def test_the_slot_is_freed_when_the_call_raises(self) -> None:
        bulkhead = Bulkhead(1)

        def fails() -> None:
            raise KeyError

        with pytest.raises(KeyError):
            bulkhead.call(fails)
        assert bulkhead.active == 0

    def test_context_manager_and_decorator(self) -> None:
        bulkhead = Bulkhead(1)

        @bulkhead
        def inside() -> int:
            return bulkhead.active

        with bulkhead:
            assert bulkhead.active == 1
        assert inside() == 1
        assert bulkhead.active == 0


class TestAsync:
    async def test_rejects_and_queues_tasks(self) -> None:
        bulkhead = Bulkhead(1, max_queued=1)
        release = asyncio.Event()
        order: list[str] = []

        async def job(name: str) -> None:
            order.append(f"start {name}")
            await release.wait()
            order.append(f"end {name}")

        first = asyncio.ensure_future(bulkhead.acall(job, "a"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(bulkhead.acall(job, "b"))
        await asyncio.sleep(0)

        with pytest.raises(BulkheadFullError):
            await bulkhead.acall(job, "c")
        assert bulkhead.queued == 1

        release.set()
        await asyncio.gather(first, second)
        assert order == ["start a", "end a", "start b", "end b"]
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    async def test_queue_timeout_on_the_injected_clock(self) -> None:
        clock = FakeClock()
        bulkhead = Bulkhead(1, max_queued=1, queue_timeout=2, clock=clock)
        release = asyncio.Event()
        holder = asyncio.ensure_future(bulkhead.acall(release.wait))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(bulkhead.acall(release.wait))
        await asyncio.sleep(0)
        assert bulkhead.queued == 1

        clock.advance(1.999)
        await asyncio.sleep(0.003)
        assert not waiter.done()
        clock.advance(0.001)
        with pytest.raises(BulkheadFullError, match="queue timeout"):
            await waiter

        assert bulkhead.queued == 0
        release.set()
        await holder
        assert bulkhead.active == 0

    async def test_cancelled_waiter_leaves_the_queue(self) -> None:
        bulkhead = Bulkhead(1, max_queued=1)
        release = asyncio.Event()
        holder = asyncio.ensure_future(bulkhead.acall(release.wait))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(bulkhead.acall(release.wait))
        await asyncio.sleep(0)

        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

        assert bulkhead.queued == 0
        release.set()
        await holder
        assert bulkhead.active == 0

    async def test_slot_granted_to_a_cancelled_waiter_is_returned(self) -> None:
        bulkhead = Bulkhead(1, max_queued=1)
        await bulkhead.aacquire()
        waiter = asyncio.ensure_future(bulkhead.aacquire())
        await asyncio.sleep(0)

        bulkhead.release()  # hands the slot to the waiter...
        waiter.cancel()  # ...which is cancelled before it can run
        with pytest.raises(asyncio.CancelledError):
            await waiter

        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    async def test_async_context_manager_and_decorator(self) -> None:
        bulkhead = Bulkhead(1)

        @bulkhead
        async def inside() -> int:
            return bulkhead.active

        async with bulkhead:
            assert bulkhead.active == 1
        assert await inside() == 1


class TestStress:
    def test_threads_never_exceed_the_limit(self) -> None:
        bulkhead = Bulkhead(3, max_queued=100)
        lock = threading.Lock()
        running = 0
        peak = 0
        done = 0

        def work() -> None:
            nonlocal running, peak, done
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0)  # let other threads in while the slot is held
            with lock:
                running -= 1
                done += 1

        def worker() -> None:
            for _ in range(200):
                bulkhead.call(work)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert done == 1600
        assert 1 <= peak <= 3
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    def test_rejections_plus_admissions_account_for_every_call(self) -> None:
        bulkhead = Bulkhead(2, max_queued=1)
        admitted = 0
        rejected = 0
        lock = threading.Lock()

        def worker() -> None:
            nonlocal admitted, rejected
            for _ in range(300):
                try:
                    bulkhead.call(time.sleep, 0)
                except BulkheadFullError:
                    with lock:
                        rejected += 1
                else:
                    with lock:
                        admitted += 1

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert admitted + rejected == 1800
        assert admitted >= 300
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    async def test_threads_and_tasks_share_one_bulkhead(self) -> None:
        bulkhead = Bulkhead(2, max_queued=1000)
        lock = threading.Lock()
        running = 0
        peak = 0

        def enter() -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)

        def leave() -> None:
            nonlocal running
            with lock:
                running -= 1

        def sync_work() -> None:
            enter()
            time.sleep(0)
            leave()

        async def async_work() -> None:
            enter()
            await asyncio.sleep(0)
            leave()

        def thread_worker() -> None:
            for _ in range(100):
                bulkhead.call(sync_work)

        threads = [threading.Thread(target=thread_worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.gather(*(bulkhead.acall(async_work) for _ in range(400)))
        for thread in threads:
            await asyncio.to_thread(thread.join)

        assert peak <= 2
        assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="max_concurrent"):
        Bulkhead(0)
    with pytest.raises(ConfigurationError, match="max_queued"):
        Bulkhead(1, max_queued=-1)
    with pytest.raises(ConfigurationError, match="queue_timeout"):
        Bulkhead(1, queue_timeout=-1)


def test_release_without_a_slot_is_an_error() -> None:
    bulkhead = Bulkhead(1, name="db")

    with pytest.raises(RuntimeError, match="without a slot"):
        bulkhead.release()
    assert bulkhead.active == 0


# The stranded task is destroyed while pending, which Python reports when
# it is collected: that report is the scenario, not a fault of the test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_waiter_whose_loop_closed_is_skipped() -> None:
    bulkhead = Bulkhead(1, max_queued=2)
    bulkhead.acquire()
    loop = asyncio.new_event_loop()
    stranded = loop.create_task(bulkhead.aacquire())
    loop.run_until_complete(asyncio.sleep(0))
    assert bulkhead.queued == 1
    loop.close()  # the waiting task is never resumed

    bulkhead.release()

    assert (bulkhead.active, bulkhead.queued) == (0, 0)
    assert bulkhead.call(lambda: "free") == "free"
    del stranded
    gc.collect()
