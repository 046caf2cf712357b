"""
Several threads backing up into one repository while another prunes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from recovery.backup import BackupRepository, RepositoryLockedError

from .helpers import tree_listing


def test_backups_and_prunes_in_parallel_keep_the_repository_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "repo"
    BackupRepository(path).init(chunk_size=64 * 1024)
    shared = b"shared between all sources " * 100
    sources = []
    for i in range(4):
        source = tmp_path / f"src{i}"
        (source / "sub").mkdir(parents=True)
        (source / "shared.txt").write_bytes(shared)
        (source / "sub" / "own.txt").write_bytes(f"source {i}\n".encode() * 50)
        sources.append(source)
    done = threading.Event()
    errors: list[Exception] = []
    prunes: list[int] = []

    def back_up(source: Path) -> None:
        repo = BackupRepository(path)
        for round_no in range(3):
            (source / f"round{round_no}").write_bytes(
                f"{source.name} {round_no}".encode()
            )
            while True:
                try:
                    repo.backup(source, series=source.name)
                    break
                except RepositoryLockedError:
                    time.sleep(0.001)  # a prune holds the lock; try again

    def prune() -> None:
        repo = BackupRepository(path)
        while not done.is_set():
            try:
                prunes.append(repo.prune().chunks_removed)
            except RepositoryLockedError:
                time.sleep(0.001)

    def guarded(target: object, *args: object) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)  # type: ignore[operator]
            except Exception as exc:
                errors.append(exc)

        return threading.Thread(target=run)

    workers = [guarded(back_up, source) for source in sources]
    pruner = guarded(prune)
    pruner.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    done.set()
    pruner.join(timeout=60)

    repo = BackupRepository(path)
    assert errors == []
    assert len(repo.snapshots()) == 12
    assert repo.verify(read_data=True).ok
    assert sum(prunes) == 0, "no chunk was ever unreferenced"
    for source in sources:
        target = tmp_path / f"out-{source.name}"
        repo.restore(repo.snapshots(series=source.name)[-1], target)
        assert tree_listing(target) == tree_listing(source)
