"""
Backing up and restoring real directory trees.
"""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest

from recovery.backup import (
    BackupProgress,
    BackupRepository,
    EntrySkipped,
    EntryType,
    RepositoryError,
    RepositoryLockedError,
    SnapshotNotFoundError,
    SnapshotWritten,
)
from recovery.backup.locks import LockKind, RepositoryLock
from recovery.errors import ConfigurationError
from recovery.events import Event, EventEmitter
from recovery.testing import FakeClock

from .helpers import FILES, make_tree, sha256, tree_listing


def stored_chunks(repo: BackupRepository) -> set[str]:
    return {chunk.digest for chunk in repo._store().stored()}


class TestBackupAndRestore:
    def test_restore_reproduces_the_tree(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        """Files, empty files, unicode names, symlinks and empty dirs come back."""
        source = make_tree(tmp_path / "src")

        result = repo.backup(source, series="s")
        repo.restore(result.snapshot, tmp_path / "out")

        assert tree_listing(tmp_path / "out") == tree_listing(source)
        assert os.readlink(tmp_path / "out" / "sub" / "link-up") == "../a.txt"

    def test_modes_and_mtimes_are_restored(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")

        repo.backup(source, series="s")
        repo.restore("latest", tmp_path / "out")

        restored = os.stat(tmp_path / "out" / "a.txt")
        assert restored.st_mode & 0o7777 == 0o640
        assert restored.st_mtime_ns == 1_600_000_000_123_456_789

    def test_manifest_records_every_entry(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")

        manifest = repo.manifest(repo.backup(source, series="s").snapshot)

        by_path = {entry.path: entry for entry in manifest.entries}
        expected_paths = {*FILES, "sub", "sub/deeper", "ünïcødé", "empty-dir"}
        expected_paths |= {"link-to-a", "sub/link-up"}
        assert set(by_path) == expected_paths
        for path, data in FILES.items():
            assert by_path[path].digest == sha256(data)
            assert by_path[path].size == len(data)
        assert by_path["link-to-a"].type is EntryType.SYMLINK
        assert by_path["link-to-a"].target == "a.txt"
        assert by_path["empty"].chunks == ()
        assert len(by_path["sub/deeper/c.bin"].chunks) == 2

    def test_include_restores_only_matching_paths(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="s")

        repo.restore("latest", tmp_path / "out", include=["sub/deeper"])

        assert tree_listing(tmp_path / "out") == {
            "sub": "dir",
            "sub/deeper": "dir",
            "sub/deeper/c.bin": FILES["sub/deeper/c.bin"],
        }

    def test_single_file_source(self, repo: BackupRepository, tmp_path: Path) -> None:
        (tmp_path / "one.txt").write_bytes(b"one")

        repo.backup(tmp_path / "one.txt", series="s")
        repo.restore("latest", tmp_path / "out")

        assert (tmp_path / "out" / "one.txt").read_bytes() == b"one"

    def test_exclude_leaves_paths_out(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")

        result = repo.backup(source, series="s", exclude=["*.bin", "ünïcødé"])

        paths = {entry.path for entry in repo.manifest(result.snapshot).entries}
        assert "sub/deeper/c.bin" not in paths
        assert not any(path.startswith("ünïcødé") for path in paths)
        assert "sub/b.txt" in paths

    def test_special_files_are_skipped_and_reported(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        os.mkfifo(source / "pipe")
        seen: list[Event] = []
        repo._emitter.add(seen.append)

        result = repo.backup(source, series="s")

        assert set(result.summary.skipped) == {"pipe"}
        skipped = [e for e in seen if isinstance(e, EntrySkipped)]
        assert [(e.path, e.reason) for e in skipped] == [
            ("pipe", "not a regular file, directory or symlink")
        ]


class TestProgress:
    def test_backup_progress_counts_what_is_read(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        reports: list[BackupProgress] = []

        repo.backup(source, series="s", progress=reports.append)

        last = reports[-1]
        size = sum(map(len, FILES.values()))
        assert (last.files_done, last.files_total) == (len(FILES), len(FILES))
        assert (last.bytes_done, last.bytes_total) == (size, size)
        assert [r.bytes_done for r in reports] == sorted(r.bytes_done for r in reports)

    def test_restore_progress_reaches_the_total(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="s")
        reports: list[tuple[int, int]] = []

        repo.restore(
            "latest", tmp_path / "out", progress=lambda d, t: reports.append((d, t))
        )

        size = sum(map(len, FILES.values()))
        assert reports[-1] == (size, size)


class TestDeduplicationAndIncrementals:
    def test_identical_content_is_stored_once(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = tmp_path / "src"
        source.mkdir()
        block = os.urandom(64 * 1024)
        (source / "x").write_bytes(block * 3)
        (source / "y").write_bytes(block)

        result = repo.backup(source, series="s")

        assert stored_chunks(repo) == {sha256(block)}
        assert result.summary.chunks_new == 1
        assert result.summary.bytes_new == len(block)
        assert result.summary.bytes_read == 4 * len(block)
        assert result.summary.dedup_ratio == 4.0

    def test_unchanged_files_are_not_read_again(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="s")
        (source / "a.txt").write_bytes(b"changed!\n")

        second = repo.backup(source, series="s")

        assert second.summary.files_unchanged == len(FILES) - 1
        assert second.summary.files_changed == 1
        assert second.summary.bytes_read == len(b"changed!\n")
        assert second.snapshot.parent is not None

    def test_force_reread_reads_everything(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="s")

        second = repo.backup(source, series="s", force_reread=True)

        assert second.summary.bytes_read == sum(map(len, FILES.values()))
        assert second.summary.chunks_new == 0

    def test_other_series_is_not_a_parent(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="one")

        other = repo.backup(source, series="two")

        assert other.snapshot.parent is None
        assert other.summary.files_unchanged == 0
        assert other.summary.chunks_new == 0

    def test_default_series_names_host_and_path(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")

        result = repo.backup(source)

        assert result.snapshot.series == f"testhost:{source}"


class TestDataBackups:
    @pytest.mark.parametrize(
        "data",
        [b"raw bytes", "text, stored as UTF-8 \u00e9", io.BytesIO(b"from a stream")],
    )
    def test_read_data_returns_what_was_saved(
        self, repo: BackupRepository, data: bytes | str | io.BytesIO
    ) -> None:
        expected = (
            data.getvalue()
            if isinstance(data, io.BytesIO)
            else data.encode()
            if isinstance(data, str)
            else data
        )

        result = repo.backup_data("state/app.json", data, tags=["app"])

        assert repo.read_data(result.snapshot, "state/app.json") == expected
        assert result.snapshot.series == "data:state/app.json"
        assert result.snapshot.tags == ("app",)

    def test_large_stream_is_chunked(self, repo: BackupRepository) -> None:
        payload = os.urandom(200_000)

        result = repo.backup_data("blob", io.BufferedReader(io.BytesIO(payload)))

        entry = repo.manifest(result.snapshot).entries[0]
        assert len(entry.chunks) == 4
        assert entry.digest == sha256(payload)
        assert repo.read_data("latest", "blob") == payload

    def test_data_restores_to_a_path(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        repo.backup_data("dump.sql", b"CREATE TABLE t (x);")

        repo.restore("latest", tmp_path / "out")

        assert (tmp_path / "out" / "dump.sql").read_bytes() == b"CREATE TABLE t (x);"

    def test_unsafe_name_is_refused(self, repo: BackupRepository) -> None:
        with pytest.raises(ConfigurationError, match=r"\.\./x"):
            repo.backup_data("../x", b"")

    def test_missing_name_in_snapshot(self, repo: BackupRepository) -> None:
        repo.backup_data("a", b"1")

        with pytest.raises(SnapshotNotFoundError, match="'b'"):
            repo.read_data("latest", "b")


class TestSnapshots:
    def test_listed_oldest_first_by_creation_time(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        ids = []
        for _ in range(3):
            ids.append(repo.backup_data("x", b"x", series="s").snapshot.id)
            clock.advance(60)

        listed = repo.snapshots()

        assert [s.id for s in listed] == ids
        assert [s.created_at for s in listed] == [
            1_700_000_000.0 + 60 * i for i in range(3)
        ]

    def test_prefix_and_latest_resolve(
        self, repo: BackupRepository, clock: FakeClock
    ) -> None:
        first = repo.backup_data("x", b"1", series="s").snapshot
        clock.advance(1)
        second = repo.backup_data("x", b"2", series="s").snapshot

        assert repo.snapshot(first.id[:8]) == first
        assert repo.snapshot("latest") == second
        with pytest.raises(SnapshotNotFoundError):
            repo.snapshot("zz")

    def test_diff_names_added_removed_changed(
        self, repo: BackupRepository, tmp_path: Path, clock: FakeClock
    ) -> None:
        source = make_tree(tmp_path / "src")
        first = repo.backup(source, series="s").snapshot
        (source / "a.txt").write_bytes(b"new content")
        (source / "empty").unlink()
        (source / "added").write_bytes(b"+")
        clock.advance(1)

        second = repo.backup(source, series="s").snapshot
        diff = repo.diff(first, second)

        assert diff.added == ("added",)
        assert diff.removed == ("empty",)
        assert diff.changed == ("a.txt",)

    def test_snapshot_written_event(self, tmp_path: Path) -> None:
        seen: list[Event] = []
        repo = BackupRepository(
            tmp_path / "r", clock=FakeClock(), listeners=[seen.append]
        )
        repo.init()

        result = repo.backup_data("x", b"abc", series="s")

        written = [e for e in seen if isinstance(e, SnapshotWritten)]
        assert [(e.snapshot, e.files, e.bytes_read) for e in written] == [
            (result.snapshot.id, 1, 3)
        ]


class TestRepositorySetup:
    def test_uninitialised_path_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(RepositoryError, match="init"):
            BackupRepository(tmp_path / "nothing").snapshots()

    def test_init_refuses_a_non_empty_directory(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("x")

        with pytest.raises(RepositoryError, match="not empty"):
            BackupRepository(tmp_path).init()

    @pytest.mark.parametrize(
        ("setting", "value"),
        [("chunk_size", 1024), ("compression_level", 23), ("chunking", "rabin")],
    )
    def test_bad_settings_fail_at_init(
        self, tmp_path: Path, setting: str, value: object
    ) -> None:
        with pytest.raises(ConfigurationError, match=setting):
            BackupRepository(tmp_path / "r").init(**{setting: value})  # type: ignore[arg-type]

    def test_uncompressed_repository(self, tmp_path: Path) -> None:
        repo = BackupRepository(tmp_path / "r", clock=FakeClock())
        repo.init(compression_level=0)

        repo.backup_data("x", b"a" * 10_000)

        assert repo.read_data("latest", "x") == b"a" * 10_000
        chunk = next(repo._store().stored())
        assert chunk.size == 10_001


class TestLocks:
    def test_prune_refused_while_a_backup_holds_a_lock(
        self, repo: BackupRepository
    ) -> None:
        lock = RepositoryLock(
            os.path.join(repo.path, "locks"),
            LockKind.SHARED,
            purpose="backup",
            source=repo.path,
            emitter=EventEmitter(),
        )

        with lock.held(), pytest.raises(RepositoryLockedError, match="backup"):
            repo.prune()

    def test_backup_refused_while_prune_holds_the_lock(
        self, repo: BackupRepository
    ) -> None:
        lock = RepositoryLock(
            os.path.join(repo.path, "locks"),
            LockKind.EXCLUSIVE,
            purpose="prune",
            source=repo.path,
            emitter=EventEmitter(),
        )

        with lock.held(), pytest.raises(RepositoryLockedError):
            repo.backup_data("x", b"x")

        assert os.listdir(os.path.join(repo.path, "locks")) == []

    def test_stale_lock_of_a_dead_process_is_removed(
        self, repo: BackupRepository
    ) -> None:
        dead_pid = _dead_pid()
        lock_path = Path(repo.path, "locks", f"testhost-{dead_pid}-x.json")
        import json
        import socket

        lock_path.write_text(
            json.dumps(
                {"kind": "exclusive", "host": socket.gethostname(), "pid": dead_pid}
            )
        )

        repo.prune()

        assert not lock_path.exists()

    def test_lock_of_another_host_is_respected_until_broken(
        self, repo: BackupRepository
    ) -> None:
        import json

        Path(repo.path, "locks", "far-1-x.json").write_text(
            json.dumps({"kind": "shared", "host": "far", "pid": 1})
        )

        with pytest.raises(RepositoryLockedError, match="far"):
            repo.prune()
        assert repo.break_locks(stale_only=True) == 0
        assert repo.break_locks() == 1
        repo.prune()


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class TestSqliteCapture:
    def test_live_wal_database_is_captured_consistently(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = tmp_path / "src"
        source.mkdir()
        live = sqlite3.connect(source / "app.db")
        live.execute("PRAGMA journal_mode=WAL")
        live.execute("CREATE TABLE t (x INTEGER)")
        live.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
        live.commit()
        assert (source / "app.db-wal").exists()

        result = repo.backup(source, series="s", sqlite=True)
        live.close()
        repo.restore(result.snapshot, tmp_path / "out")

        paths = {e.path for e in repo.manifest(result.snapshot).entries}
        assert paths == {"app.db"}
        restored = sqlite3.connect(tmp_path / "out" / "app.db")
        assert restored.execute("SELECT count(*), sum(x) FROM t").fetchone() == (
            100,
            4950,
        )
        restored.close()

    def test_glob_selects_databases(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = tmp_path / "src"
        source.mkdir()
        db = sqlite3.connect(source / "data.sqlite")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()

        result = repo.backup(source, series="s", sqlite=["*.sqlite"])

        (entry,) = repo.manifest(result.snapshot).entries
        assert entry.captured == "sqlite"
