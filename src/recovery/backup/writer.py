"""
Turning streams of bytes into stored chunks, in bounded memory.

`store_stream` cuts a stream into chunks (see `chunker`), hashes each one
in the calling thread and hands it to a `ChunkWriter`, whose worker threads
compress and write it (zstd and hashlib release the GIL, so both cores
work). At most `max_pending` bytes of chunks wait at any time: memory
depends on the chunk size, never on the size of a file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .chunker import Chunker, Reader
from .chunks import ChunkStore, digest_of

__all__ = ["ChunkWriter", "WriteStats", "store_stream"]

EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


@dataclass(slots=True)
class WriteStats:
    """
    Running totals of one writer: new and deduplicated chunks, bytes.

    `bytes_new` counts new chunks uncompressed, `bytes_stored` as written.
    """

    chunks_new: int = 0
    chunks_dedup: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0


class ChunkWriter:
    """
    Writes chunks to a store from worker threads, each distinct chunk once.

    `add` blocks while chunks of `max_pending` bytes in total are in flight
    (one chunk is always let through, however large). `finish` waits
    for every write, re-raises the first failure and fsyncs the chunk
    directories touched, after which the chunks are durable.
    """

    def __init__(self, store: ChunkStore, *, workers: int, max_pending: int) -> None:
        self.store = store
        self.stats = WriteStats()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="recovery-backup")
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._seen: set[str] = set()
        self._prefixes: set[str] = set()
        self._error: BaseException | None = None

    def add(self, digest: str, data: bytes) -> None:
        """
        Queue chunk *data* named *digest*, unless this writer already has it.
        """
        self._raise_if_failed()
        with self._lock:
            if digest in self._seen:
                self.stats.chunks_dedup += 1
                return
            self._seen.add(digest)

        with self._drained:
            while self._pending and self._pending + len(data) > self._max_pending:
                self._drained.wait()
            self._pending += len(data)
        try:
            self._pool.submit(self._write, digest, data)
        except BaseException:
            self._release(len(data))
            raise

    def finish(self) -> None:
        """
        Wait for all writes, raise the first error, make the chunks durable.
        """
        self._pool.shutdown(wait=True)
        self._raise_if_failed()
        self.store.sync_dirs(self._prefixes)

    def abort(self) -> None:
        """
        Drop queued writes and wait for running ones; used on failure.
        """
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _write(self, digest: str, data: bytes) -> None:
        try:
            if self.store.exists(digest):
                with self._lock:
                    self.stats.chunks_dedup += 1
                return
            stored = self.store.put(digest, data)
            with self._lock:
                self.stats.chunks_new += 1
                self.stats.bytes_new += len(data)
                self.stats.bytes_stored += stored
                self._prefixes.add(digest[:2])
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            # Kept for the main thread, which re-raises it on its next call.
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            self._release(len(data))

    def _release(self, size: int) -> None:
        with self._drained:
            self._pending -= size
            self._drained.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


def store_stream(
    read: Reader,
    writer: ChunkWriter,
    *,
    chunker: Chunker,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[str, tuple[str, ...], int]:
    """
    Store everything *read* returns; return (content digest, chunks, size).

    The content digest is the SHA-256 of the whole stream; for a stream of
    one chunk it equals that chunk's digest, so it is not computed twice.
    """
    chunks: list[str] = []
    size = 0
    first: bytes | None = None
    whole: hashlib._Hash | None = None
    for data in chunker.split(read):
        digest = digest_of(data)
        if not chunks:
            first = data
        elif whole is None:
            assert first is not None
            whole = hashlib.sha256(first)
            whole.update(data)
            first = None
        else:
            whole.update(data)

        chunks.append(digest)
        size += len(data)
        writer.add(digest, data)
        if on_bytes is not None:
            on_bytes(len(data))

    if whole is not None:
        content = whole.hexdigest()
    else:
        content = chunks[0] if chunks else EMPTY_DIGEST

    return content, tuple(chunks), size
