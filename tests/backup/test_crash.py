"""
Killed backups and restores, in real subprocesses killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recovery.backup import BackupRepository
from tests.conftest import wait_until

from .helpers import tree_listing

pytestmark = pytest.mark.integration

# The child stops itself inside the progress callback once enough bytes
# went by and says so; the parent then kills it there, mid-operation.
BACKUP_CHILD = """
import sys, time
from recovery.backup import BackupRepository

def progress(p):
    if p.bytes_done >= int(sys.argv[3]):
        print("KILL ME", flush=True)
        time.sleep(120)

BackupRepository(sys.argv[1]).backup(sys.argv[2], series="s", progress=progress)
"""

RESTORE_CHILD = """
import sys, time
from recovery.backup import BackupRepository

def progress(done, total):
    if done >= int(sys.argv[3]):
        print("KILL ME", flush=True)
        time.sleep(120)

BackupRepository(sys.argv[1]).restore("latest", sys.argv[2], progress=progress)
"""


def run_and_kill(code: str, *args: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "KILL ME\n", f"the child ended early: {child.wait()}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def random_tree(root: Path, files: int, size: int) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"file{i:02}.bin").write_bytes(os.urandom(size))
    return root


def chunk_files(repo: BackupRepository) -> list[str]:
    return [c.digest for c in repo._store().stored()]


def test_killed_backup_leaves_no_snapshot_and_prune_cleans(tmp_path: Path) -> None:
    repo = BackupRepository(tmp_path / "repo")
    repo.init(chunk_size=64 * 1024)
    source = random_tree(tmp_path / "src", files=8, size=256 * 1024)

    run_and_kill(BACKUP_CHILD, repo.path, str(source), str(600 * 1024))

    # Chunk writes run in worker threads: give the queued ones a moment.
    # Chunk writes run in worker threads: give the queued ones a moment.
    wait_until(lambda: bool(chunk_files(repo)))
    orphans = chunk_files(repo)
    assert orphans, "the child should have written chunks before dying"
    assert repo.snapshots() == []
    assert len(os.listdir(Path(repo.path, "locks"))) == 1
    assert repo.verify(read_data=True).ok

    report = repo.prune()

    assert report.chunks_removed == len(orphans)
    assert chunk_files(repo) == []
    assert os.listdir(Path(repo.path, "locks")) == []
    repo.backup(source, series="s")
    repo.restore("latest", tmp_path / "out")
    assert tree_listing(tmp_path / "out") == tree_listing(source)


def test_killed_restore_completes_on_a_second_run(tmp_path: Path) -> None:
    repo = BackupRepository(tmp_path / "repo")
    repo.init(chunk_size=64 * 1024)
    source = random_tree(tmp_path / "src", files=6, size=300 * 1024)
    repo.backup(source, series="s")
    target = tmp_path / "out"

    run_and_kill(RESTORE_CHILD, repo.path, str(target), str(700 * 1024))

    expected = tree_listing(source)
    present = tree_listing(target)
    finished = {p for p in present if not p.endswith(".tmp")}
    leftovers = {p for p in present if p.endswith(".tmp")}
    assert len(finished) < len(expected)
    assert all(present[p] == expected[p] for p in finished), "no half-written file"
    assert leftovers, "the child was killed while writing"

    result = repo.restore("latest", target)

    assert tree_listing(target) == expected
    assert result.files_skipped == len(finished)
    assert result.files == len(expected) - len(finished)
