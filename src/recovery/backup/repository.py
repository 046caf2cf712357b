"""
`BackupRepository`: content-addressed, deduplicated, verified snapshots.

Layout of a repository directory::

    recovery-repo.json      format, id, chunking, chunk size, compression level
    chunks/<aa>/<sha256>    file data, one chunk per file, named by digest
    snapshots/<id>          manifests, written last: the commit point
    locks/<host-pid-x>.json shared and exclusive locks

A backup stores new chunks first (each written to a temporary file,
fsynced and renamed), fsyncs their directories, and only then writes the
manifest the same way. A backup that dies at any point leaves no snapshot,
only chunks that nothing references, which `prune` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, Unpack

from .._validation import require_clock, require_int
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..events import EventEmitter, Listener
from ._fs import fsync_dir, write_atomic
from .chunker import CdcChunker, Chunker, FixedChunker
from .chunks import ChunkStore
from .codec import Codec
from .diff import SnapshotDiff, diff_manifests
from .errors import (
    CorruptDataError,
    RepositoryError,
    RestoreError,
    SnapshotNotFoundError,
)
from .events import (
    CorruptDataFound,
    EntrySkipped,
    PruneCompleted,
    RestoreCompleted,
    SnapshotsForgotten,
    SnapshotWritten,
)
from .ingest import BackupJob, add_stats
from .locks import LockKind, RepositoryLock, read_locks
from .manifest import Entry, EntryType, Manifest, Snapshot
from .restore import RestoreResult, path_problem, restore_entries, select_entries
from .results import BackupProgress, BackupResult, BackupSummary, PruneReport
from .retention import RetentionPlan, RetentionPolicy, RetentionRules
from .scan import scan
from .verify import VerifyReport, verify_repository
from .writer import ChunkWriter, store_stream

__all__ = ["BackupRepository", "SnapshotRef"]

logger = logging.getLogger(__name__)

_CONFIG = "recovery-repo.json"
_FORMAT = 1
_MiB = 1 << 20
_CHUNKERS: dict[str, Callable[[int], Chunker]] = {
    "content": CdcChunker,
    "fixed": FixedChunker,
}

SnapshotRef = Snapshot | str
"""A snapshot, its id, a unique id prefix, or ``"latest"``."""

Data = bytes | str | BinaryIO


class BackupRepository:
    """
    A directory of deduplicated, checksummed snapshots of files and data.

    Args:
        path: the repository directory (created by `init`).
        clock: gives snapshot creation times (`clock.time()`) and durations.
        workers: threads that compress and write chunks during a backup
            (restore uses twice as many); by default one more than the
            CPUs, at most 4, so one can wait on fsync while others compress.
        host: the host name recorded in snapshots (default: this host).
        listeners: receive this repository's events.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        workers: int | None = None,
        host: str | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.path = os.fspath(path)
        self.clock = require_clock("clock", clock)
        if workers is None:
            workers = min(4, (os.cpu_count() or 1) + 1)
        self.workers = require_int("workers", workers, minimum=1, maximum=64)
        self.host = host or socket.gethostname()
        self._emitter = EventEmitter(listeners)
        self._config: dict[str, object] | None = None
        self._chunk_store: ChunkStore | None = None

    def __repr__(self) -> str:
        return f"BackupRepository({self.path!r})"

    # -- set-up ---------------------------------------------------------------

    def init(
        self,
        *,
        chunk_size: int = _MiB,
        chunking: str = "content",
        compression_level: int = 3,
    ) -> None:
        """
        Create the repository; refuse if *path* holds anything already.

        `chunking` is ``"content"`` (cuts placed by the data, about
        `chunk_size` apart, at most 4 times that: insertions do not defeat
        deduplication) or ``"fixed"`` (exactly `chunk_size`).
        `chunk_size` (64 KiB to 16 MiB) bounds a backup's memory use;
        `compression_level` is the zstd level, 0 to store data as is; a
        level above 0 raises `ImportError` (naming the backup extra) when
        the `zstandard` package is missing, rather than create a repository
        no backup could be written to.
        """
        require_int("chunk_size", chunk_size, minimum=64 * 1024, maximum=16 * _MiB)
        require_int("compression_level", compression_level, minimum=0, maximum=22)
        Codec(compression_level).require_support()
        if chunking not in _CHUNKERS:
            raise ConfigurationError(
                f"chunking must be one of {sorted(_CHUNKERS)}, got {chunking!r}"
            )
        if os.path.exists(self.path) and os.listdir(self.path):
            raise RepositoryError(f"{self.path!r} exists and is not empty")

        os.makedirs(self.path, exist_ok=True)
        for sub in ("snapshots", "locks", "chunks"):
            os.mkdir(os.path.join(self.path, sub))
        for prefix in range(256):
            os.mkdir(os.path.join(self.path, "chunks", f"{prefix:02x}"))
        fsync_dir(os.path.join(self.path, "chunks"))
        config = {
            "format": _FORMAT,
            "id": secrets.token_hex(16),
            "hash": "sha256",
            "chunking": chunking,
            "chunk_size": chunk_size,
            "compression_level": compression_level,
        }
        write_atomic(self._at(_CONFIG), json.dumps(config, indent=2).encode())
        self._config = None
        self._chunk_store = None

    @property
    def chunker(self) -> Chunker:
        """
        What cuts files into chunks, as the repository was created with.
        """
        settings = self._settings()
        size, kind = settings["chunk_size"], settings["chunking"]
        assert isinstance(size, int)
        assert isinstance(kind, str)
        return _CHUNKERS[kind](size)

    def _settings(self) -> dict[str, object]:
        if self._config is None:
            try:
                with open(self._at(_CONFIG), "rb") as file:
                    config = json.load(file)
            except FileNotFoundError:
                raise RepositoryError(
                    f"{self.path!r} is not a backup repository (run init first)"
                ) from None
            if (
                not isinstance(config, dict)
                or config.get("format") != _FORMAT
                or config.get("chunking") not in _CHUNKERS
            ):
                raise RepositoryError(f"{self.path!r} has an unsupported format")
            self._config = config

        return self._config

    def _store(self) -> ChunkStore:
        if self._chunk_store is None:
            level = self._settings()["compression_level"]
            assert isinstance(level, int)
            # Manifests and chunks share the codec; chunks never exceed the
            # maximum chunk size, which bounds what a damaged frame can make
            # us allocate.
            self._chunk_store = ChunkStore(
                self._at("chunks"), Codec(level), max_chunk_size=self.chunker.max_size
            )

        return self._chunk_store

    def _at(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def _lock(self, kind: LockKind, purpose: str) -> RepositoryLock:
        self._settings()
        return RepositoryLock(
            self._at("locks"),
            kind,
            purpose=purpose,
            source=self.path,
            emitter=self._emitter,
        )

    # -- backup ---------------------------------------------------------------

    def backup(
        self,
        source: str | os.PathLike[str],
        *,
        series: str | None = None,
        tags: Iterable[str] = (),
        exclude: Sequence[str] = (),
        sqlite: bool | Sequence[str] = False,
        force_reread: bool = False,
        progress: Callable[[BackupProgress], None] | None = None,
    ) -> BackupResult:
        """
        Back up the file or directory *source* and return the new snapshot.

        Files whose size, mtime and inode match the series' newest snapshot
        are not read again (`force_reread` reads everything). *exclude*
        holds globs matched against relative paths and names. *sqlite*
        captures SQLite databases through SQLite's backup API: ``True`` for
        every file with SQLite's header, or a list of globs. The series
        defaults to ``"<host>:<absolute source path>"``.
        """
        root = os.path.abspath(os.fspath(source))
        series = series if series is not None else f"{self.host}:{root}"
        with self._lock(LockKind.SHARED, "backup").held():
            started, created_at = self.clock.now(), self.clock.time()
            parent = None if force_reread else self._newest(series)
            previous = {} if parent is None else {e.path: e for e in parent.entries}
            summary = BackupSummary()
            skipped = summary.skipped

            def on_skip(path: str, reason: str) -> None:
                skipped[path] = reason
                if self._emitter.wants(EntrySkipped):
                    self._emitter.emit(
                        EntrySkipped(source=self.path, path=path, reason=reason)
                    )

            items = list(scan(root, exclude=exclude, on_skip=on_skip))
            job = BackupJob(
                self._writer(),
                chunker=self.chunker,
                previous=previous,
                summary=summary,
                sqlite=sqlite,
                progress=progress,
                on_skip=on_skip,
            )
            entries = job.run(items)
            summary.duration = self.clock.now() - started
            return self._commit(
                entries,
                summary,
                series=series,
                source=root,
                tags=tags,
                parent=parent,
                created_at=created_at,
            )

    def backup_data(
        self,
        name: str,
        data: Data,
        *,
        series: str | None = None,
        tags: Iterable[str] = (),
    ) -> BackupResult:
        """
        Back up *data* (bytes, str as UTF-8, or a binary stream) as file *name*.

        *name* is a relative path; read it back with `read_data` or restore
        it like any file. The series defaults to ``"data:<name>"``.
        """
        problem = path_problem(name)
        if problem is not None:
            raise ConfigurationError(
                f"name must be a safe relative path, got {name!r}: {problem}"
            )
        stream: BinaryIO
        if isinstance(data, str):
            stream = io.BytesIO(data.encode())
        elif isinstance(data, bytes | bytearray | memoryview):
            stream = io.BytesIO(bytes(data))
        else:
            stream = data

        with self._lock(LockKind.SHARED, "backup").held():
            started, created_at = self.clock.now(), self.clock.time()
            parent = self._newest(series or f"data:{name}")
            summary = BackupSummary()
            writer = self._writer()
            try:
                digest, chunks, size = store_stream(
                    stream.read, writer, chunker=self.chunker
                )
                writer.finish()
            except BaseException:
                writer.abort()
                raise
            add_stats(summary, writer)
            summary.files = summary.files_new = 1
            summary.bytes_read = summary.bytes_total = size
            summary.duration = self.clock.now() - started
            entry = Entry(
                path=name,
                type=EntryType.FILE,
                mode=0o644,
                mtime_ns=int(created_at * 1e9),
                size=size,
                digest=digest,
                chunks=chunks,
            )
            return self._commit(
                [entry],
                summary,
                series=series or f"data:{name}",
                source=f"<data:{name}>",
                tags=tags,
                parent=parent,
                created_at=created_at,
            )

    def _writer(self) -> ChunkWriter:
        chunker = self.chunker
        return ChunkWriter(
            self._store(), workers=self.workers, max_pending=chunker.max_size
        )

    def _commit(
        self,
        entries: list[Entry],
        summary: BackupSummary,
        *,
        series: str,
        source: str,
        tags: Iterable[str],
        parent: Manifest | None,
        created_at: float,
    ) -> BackupResult:
        snapshot = Snapshot(
            id=secrets.token_hex(8),
            series=series,
            created_at=created_at,
            host=self.host,
            source=source,
            tags=tuple(sorted(set(tags))),
            parent=None if parent is None else parent.snapshot.id,
            files=sum(1 for e in entries if e.type is EntryType.FILE),
            dirs=sum(1 for e in entries if e.type is EntryType.DIR),
            size=sum(e.size for e in entries),
        )
        manifest = Manifest(snapshot, tuple(entries))
        framed = self._store().codec.encode(manifest.to_bytes())
        write_atomic(self._at("snapshots", snapshot.id), framed, mode=0o444)

        if self._emitter.wants(SnapshotWritten):
            self._emitter.emit(
                SnapshotWritten(
                    source=self.path,
                    snapshot=snapshot.id,
                    series=series,
                    files=summary.files,
                    bytes_read=summary.bytes_read,
                    bytes_stored=summary.bytes_stored,
                )
            )
        return BackupResult(snapshot, summary)

    # -- reading snapshots ----------------------------------------------------

    def _snapshot_ids(self) -> list[str]:
        self._settings()
        return sorted(
            name
            for name in os.listdir(self._at("snapshots"))
            if not name.startswith(".")
        )

    def _load(self, snapshot_id: str) -> Manifest:
        try:
            with open(self._at("snapshots", snapshot_id), "rb") as file:
                framed = file.read()
        except FileNotFoundError:
            raise SnapshotNotFoundError(f"no snapshot {snapshot_id!r}") from None
        data = self._store().codec.decode(
            framed, name=snapshot_id, kind="manifest", limit=1 << 34
        )
        manifest = Manifest.from_bytes(data, name=snapshot_id)
        if manifest.snapshot.id != snapshot_id:
            raise CorruptDataError(
                f"manifest {snapshot_id} claims to be snapshot {manifest.snapshot.id}",
                kind="manifest",
                name=snapshot_id,
            )

        return manifest

    def _manifests(self) -> Iterator[tuple[str, Manifest | CorruptDataError]]:
        for snapshot_id in self._snapshot_ids():
            try:
                yield snapshot_id, self._load(snapshot_id)
            except CorruptDataError as exc:
                yield snapshot_id, exc
            except SnapshotNotFoundError:
                continue

    def _report_damage(self, kind: str, name: str, detail: str) -> None:
        if self._emitter.wants(CorruptDataFound):
            self._emitter.emit(
                CorruptDataFound(
                    source=self.path, object_kind=kind, name=name, detail=detail
                )
            )

    def snapshots(self, *, series: str | None = None) -> list[Snapshot]:
        """
        Return the snapshots, oldest first by creation time.

        Damaged manifests are left out and reported (an ERROR event);
        `verify` lists them.
        """
        found: list[Snapshot] = []
        for snapshot_id, loaded in self._manifests():
            if isinstance(loaded, CorruptDataError):
                self._report_damage("manifest", snapshot_id, str(loaded))
                continue
            if series is None or loaded.snapshot.series == series:
                found.append(loaded.snapshot)

        return sorted(found, key=lambda s: (s.created_at, s.id))

    def _newest(self, series: str) -> Manifest | None:
        snapshots = self.snapshots(series=series)
        return self._load(snapshots[-1].id) if snapshots else None

    def snapshot(self, ref: SnapshotRef, *, series: str | None = None) -> Snapshot:
        """
        Return the snapshot that *ref* names (id, unique prefix, ``"latest"``).
        """
        return self.manifest(ref, series=series).snapshot

    def manifest(self, ref: SnapshotRef, *, series: str | None = None) -> Manifest:
        """
        Return the verified manifest of the snapshot *ref* names.
        """
        if isinstance(ref, Snapshot):
            return self._load(ref.id)
        if ref == "latest":
            snapshots = self.snapshots(series=series)
            if not snapshots:
                raise SnapshotNotFoundError("the repository holds no snapshot yet")
            return self._load(snapshots[-1].id)

        matches = [i for i in self._snapshot_ids() if i.startswith(ref)] if ref else []
        if len(matches) != 1:
            what = (
                "no snapshot matches"
                if not matches
                else f"{len(matches)} snapshots match"
            )
            raise SnapshotNotFoundError(f"{what} {ref!r}")

        return self._load(matches[0])

    def diff(self, a: SnapshotRef, b: SnapshotRef) -> SnapshotDiff:
        """
        Return the paths added, removed and changed from snapshot *a* to *b*.
        """
        return diff_manifests(self.manifest(a), self.manifest(b))

    # -- restore --------------------------------------------------------------

    def restore(
        self,
        snapshot: SnapshotRef,
        target: str | os.PathLike[str],
        *,
        include: Sequence[str] = (),
        restore_setid: bool = False,
        allow_unsafe_links: bool = False,
        owner: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> RestoreResult:
        """
        Restore *snapshot* (or the entries matching *include*) into *target*.

        Nothing is written outside *target*; every chunk is verified before
        use and each file appears only complete and verified. Modes and
        mtimes are restored; setuid/setgid bits only with `restore_setid`,
        owners only with `owner`. Raises `RestoreError` after restoring
        everything else when entries were refused (unsafe paths) or failed
        (damaged data).
        """
        with self._lock(LockKind.SHARED, "restore").held():
            manifest = self.manifest(snapshot)
            entries = select_entries(manifest.entries, include)
            result = restore_entries(
                entries,
                os.fspath(target),
                self._store(),
                restore_setid=restore_setid,
                allow_unsafe_links=allow_unsafe_links,
                owner=owner,
                progress=progress,
                workers=2 * self.workers,
            )

        if self._emitter.wants(RestoreCompleted):
            self._emitter.emit(
                RestoreCompleted(
                    source=self.path,
                    snapshot=manifest.snapshot.id,
                    target=os.fspath(target),
                    files=result.files + result.files_skipped,
                    refused=len(result.refused),
                    failed=len(result.failed),
                )
            )
        if result.refused or result.failed:
            names = sorted({*result.refused, *result.failed})
            raise RestoreError(
                f"restore of snapshot {manifest.snapshot.id} left out "
                f"{len(names)} {'entry' if len(names) == 1 else 'entries'}: "
                f"{', '.join(map(repr, names[:10]))}",
                refused=result.refused,
                failed=result.failed,
            )

        return result

    def read_data(
        self, snapshot: SnapshotRef, name: str, *, series: str | None = None
    ) -> bytes:
        """
        Return the content of file *name* in *snapshot*, verified.

        Meant for data saved with `backup_data`; loads the whole file into
        memory, so restore large files with `restore` instead.
        """
        manifest = self.manifest(snapshot, series=series)
        for entry in manifest.entries:
            if entry.path == name and entry.type is EntryType.FILE:
                break
        else:
            raise SnapshotNotFoundError(
                f"snapshot {manifest.snapshot.id} holds no file {name!r}"
            )

        store = self._store()
        data = b"".join(store.get(digest) for digest in entry.chunks)
        if len(data) != entry.size or _sha256(data) != entry.digest:
            raise CorruptDataError(
                f"{name!r} in snapshot {manifest.snapshot.id} does not match "
                "its digest",
                kind="manifest",
                name=manifest.snapshot.id,
            )

        return data

    # -- verify, forget, prune -------------------------------------------------

    def verify(
        self,
        *,
        read_data: bool = False,
        subset: tuple[int, int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """
        Check manifests and chunk presence; with `read_data`, re-hash chunks.

        `subset=(k, n)` re-hashes only the k-th of n slices of the chunks
        (1 <= k <= n). Problems are returned in the report (and emitted as
        ERROR events), never raised.
        """
        if subset is not None:
            k, n = subset
            require_int("subset n", n, minimum=1)
            require_int("subset k", k, minimum=1, maximum=n)
        with self._lock(LockKind.SHARED, "verify").held():
            return verify_repository(
                self._manifests(),
                self._store(),
                read_data=read_data or subset is not None,
                subset=subset,
                on_damage=self._report_damage,
                progress=progress,
            )

    def forget(
        self,
        policy: RetentionPolicy | None = None,
        *,
        dry_run: bool = False,
        series: str | None = None,
        **rules: Unpack[RetentionRules],
    ) -> RetentionPlan:
        """
        Remove the snapshots *policy* does not keep, and return the plan.

        The rules may also be given directly, as `RetentionPolicy` takes
        them: ``repo.forget(keep_last=5, keep_daily=7)``. Only manifests are
        removed; `prune` frees their chunks. With `dry_run` nothing is
        removed. *series* limits the work to one series.
        """
        if policy is None:
            policy = RetentionPolicy(**rules)
        elif rules:
            raise ConfigurationError(
                f"give forget either a policy or rules, not both (got {sorted(rules)})"
            )
        kind = LockKind.SHARED if dry_run else LockKind.EXCLUSIVE
        with self._lock(kind, "forget").held():
            plan = policy.plan(self.snapshots(series=series))
            if dry_run:
                return plan
            for snapshot in plan.remove:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._at("snapshots", snapshot.id))
            fsync_dir(self._at("snapshots"))

        if self._emitter.wants(SnapshotsForgotten):
            self._emitter.emit(
                SnapshotsForgotten(
                    source=self.path, removed=len(plan.remove), kept=len(plan.keep)
                )
            )
        return plan

    def prune(self) -> PruneReport:
        """
        Delete chunks no snapshot references, and leftover temporary files.

        Takes the exclusive lock, so it never runs beside a backup. Refuses
        (`CorruptDataError`) while any manifest is damaged, since it could
        not tell which chunks that snapshot needs.
        """
        with self._lock(LockKind.EXCLUSIVE, "prune").held():
            referenced: set[str] = set()
            for snapshot_id, loaded in self._manifests():
                if isinstance(loaded, CorruptDataError):
                    raise CorruptDataError(
                        f"prune refused: manifest {snapshot_id} is damaged ({loaded}); "
                        "remove or repair it first",
                        kind="manifest",
                        name=snapshot_id,
                    )
                for entry in loaded.entries:
                    referenced.update(entry.chunks)

            store = self._store()
            removed = freed = kept = 0
            for chunk in list(store.stored()):
                if chunk.digest in referenced:
                    kept += 1
                    continue
                store.delete(chunk.digest)
                removed += 1
                freed += chunk.size
            temps = 0
            for leftover in list(store.leftovers()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
                    temps += 1
            report = PruneReport(removed, freed, kept, temps)

        if self._emitter.wants(PruneCompleted):
            self._emitter.emit(
                PruneCompleted(
                    source=self.path, chunks_removed=removed, bytes_freed=freed
                )
            )
        return report

    def break_locks(self, *, stale_only: bool = False) -> int:
        """
        Remove every lock, live or not, and return how many; use with care.

        With `stale_only`, remove only locks of processes known to be gone
        (this host, pid no longer running).
        """
        self._settings()
        host = socket.gethostname()
        count = 0
        for lock in read_locks(self._at("locks")):
            if stale_only and not lock.is_stale(host):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock.path)
                count += 1

        return count


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
