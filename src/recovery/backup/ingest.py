"""
Reading a scanned source into manifest entries, storing what is new.

Files whose size, mtime and inode match the previous snapshot of the
series keep their old chunk list and are not read. Others are read through
a `ChunkWriter`; SQLite databases may be captured through SQLite's backup
API first. A file that cannot be read is left out and reported, so one
unreadable file does not cost the whole snapshot.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from collections.abc import Callable, Sequence

from . import sqlite_capture
from .chunker import Chunker
from .manifest import Entry, EntryType
from .results import BackupProgress, BackupSummary
from .scan import SourceItem
from .writer import ChunkWriter, store_stream

__all__ = ["BackupJob", "add_stats"]

SkipReporter = Callable[[str, str], None]


def add_stats(summary: BackupSummary, writer: ChunkWriter) -> None:
    """
    Copy a writer's chunk totals into *summary*.
    """
    stats = writer.stats
    summary.chunks_new = stats.chunks_new
    summary.chunks_dedup = stats.chunks_dedup
    summary.bytes_new = stats.bytes_new
    summary.bytes_stored = stats.bytes_stored


class BackupJob:
    """
    Turns the scanned items of one backup into manifest entries.

    `run` waits for every chunk write and re-raises the first failure; on
    any error queued writes are dropped.
    """

    def __init__(
        self,
        writer: ChunkWriter,
        *,
        chunker: Chunker,
        previous: dict[str, Entry],
        summary: BackupSummary,
        sqlite: bool | Sequence[str],
        progress: Callable[[BackupProgress], None] | None,
        on_skip: SkipReporter,
    ) -> None:
        self.writer = writer
        self.chunker = chunker
        self.on_skip = on_skip
        self.previous = previous
        self.summary = summary
        self.sqlite = sqlite
        self.progress = progress
        self.captured: set[str] = set()
        self.done_bytes = 0
        self.done_files = 0
        self.total_bytes = 0
        self.total_files = 0

    def run(self, items: list[SourceItem]) -> list[Entry]:
        """
        Return the entries for *items*, once every new chunk is durable.
        """
        reused: dict[str, Entry] = {}
        for item in items:
            if item.type is EntryType.FILE:
                old = self._unchanged(item)
                if old is not None:
                    reused[item.path] = old
                else:
                    self.total_files += 1
                    self.total_bytes += item.stat.st_size

        writer = self.writer
        try:
            entries = [e for item in items if (e := self._entry(item, reused, writer))]
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        add_stats(self.summary, writer)

        return entries

    def _unchanged(self, item: SourceItem) -> Entry | None:
        old = self.previous.get(item.path)
        if old is None or old.type is not EntryType.FILE or old.captured is not None:
            return None
        info = item.stat
        if (old.size, old.mtime_ns, old.inode) != (
            info.st_size,
            info.st_mtime_ns,
            info.st_ino,
        ):
            return None

        return old

    def _entry(
        self, item: SourceItem, reused: dict[str, Entry], writer: ChunkWriter
    ) -> Entry | None:
        if item.type is EntryType.DIR:
            self.summary.dirs += 1
            return _entry_for(item)
        if item.type is EntryType.SYMLINK:
            self.summary.symlinks += 1
            return _entry_for(item, target=item.target)

        old = reused.get(item.path)
        if old is not None:
            self.summary.files += 1
            self.summary.files_unchanged += 1
            self.summary.bytes_total += old.size
            return _entry_for(item, size=old.size, digest=old.digest, chunks=old.chunks)
        if self._is_side_file(item.path):
            return None

        return self._read_file(item, writer)

    def _read_file(self, item: SourceItem, writer: ChunkWriter) -> Entry | None:
        captured: str | None = None
        try:
            if self._wants_capture(item):
                with sqlite_capture.capture(item.full) as copy:
                    digest, chunks, size = self._store_path(copy, item, writer)
                self.captured.add(item.path)
                captured = "sqlite"
            else:
                digest, chunks, size = self._store_path(item.full, item, writer)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            self.on_skip(item.path, f"cannot read: {reason}")
            return None

        self.summary.files += 1
        self.summary.bytes_total += size
        if item.path in self.previous:
            self.summary.files_changed += 1
        else:
            self.summary.files_new += 1
        return _entry_for(
            item, size=size, digest=digest, chunks=chunks, captured=captured
        )

    def _store_path(
        self, path: str, item: SourceItem, writer: ChunkWriter
    ) -> tuple[str, tuple[str, ...], int]:
        def on_bytes(count: int) -> None:
            self.summary.bytes_read += count
            self.done_bytes += count
            self._report(item.path)

        with open(path, "rb") as file:
            result = store_stream(
                file.read, writer, chunker=self.chunker, on_bytes=on_bytes
            )
        self.done_files += 1
        self._report(item.path)

        return result

    def _report(self, path: str) -> None:
        if self.progress is not None:
            self.progress(
                BackupProgress(
                    self.done_files,
                    self.total_files,
                    self.done_bytes,
                    self.total_bytes,
                    path,
                )
            )

    def _wants_capture(self, item: SourceItem) -> bool:
        if self.sqlite is False:
            return False
        if self.sqlite is True:
            return sqlite_capture.is_sqlite(item.full)
        name = item.path.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(item.path, pattern)
            or fnmatch.fnmatchcase(name, pattern)
            for pattern in self.sqlite
        )

    def _is_side_file(self, path: str) -> bool:
        return any(
            path.endswith(suffix) and path[: -len(suffix)] in self.captured
            for suffix in sqlite_capture.SIDE_FILES
        )


def _entry_for(
    item: SourceItem,
    *,
    size: int = 0,
    digest: str | None = None,
    chunks: tuple[str, ...] = (),
    target: str | None = None,
    captured: str | None = None,
) -> Entry:
    info = item.stat
    return Entry(
        path=item.path,
        type=item.type,
        mode=info.st_mode & 0o7777,
        mtime_ns=info.st_mtime_ns,
        size=size,
        digest=digest,
        chunks=chunks,
        target=target,
        inode=info.st_ino if item.type is EntryType.FILE else None,
        uid=info.st_uid,
        gid=info.st_gid,
        captured=captured,
    )
