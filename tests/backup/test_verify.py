"""
Verification finds missing and damaged chunks and damaged manifests, and
names the snapshots and files they affect.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recovery.backup import BackupRepository, CorruptDataError, CorruptDataFound
from recovery.backup.verify import in_subset
from recovery.errors import ConfigurationError
from recovery.events import Event
from recovery.testing import FakeClock

from .test_restore_safety import flip_byte


@pytest.fixture
def two_snapshots(repo: BackupRepository, tmp_path: Path, clock: FakeClock) -> bytes:
    """Two snapshots sharing a random (so incompressible) file `shared.bin`."""
    source = tmp_path / "src"
    source.mkdir()
    shared = os.urandom(1000)
    (source / "shared.bin").write_bytes(shared)
    (source / "only-first").write_bytes(b"1")
    repo.backup(source, series="s")
    clock.advance(1)
    (source / "only-first").unlink()
    repo.backup(source, series="s")
    return shared


class TestVerify:
    def test_healthy_repository_passes(
        self, repo: BackupRepository, two_snapshots: bytes
    ) -> None:
        report = repo.verify(read_data=True)

        assert report.ok
        assert report.snapshots == 2
        assert report.chunks_referenced == 2
        assert report.chunks_read == 2

    def test_flipped_byte_is_found_and_named(
        self, repo: BackupRepository, two_snapshots: bytes
    ) -> None:
        from .helpers import sha256

        digest = sha256(two_snapshots)
        flip_byte(repo._store().path(digest))
        ids = sorted(s.id for s in repo.snapshots())

        quick = repo.verify()
        full = repo.verify(read_data=True)

        assert quick.ok, "a quick check does not read data"
        assert not full.ok
        assert list(full.corrupt_chunks) == [digest]
        assert full.affected_files() == [(ids[0], "shared.bin"), (ids[1], "shared.bin")]

    def test_missing_chunk_is_found_without_reading(
        self, repo: BackupRepository, two_snapshots: bytes
    ) -> None:
        from .helpers import sha256

        os.unlink(repo._store().path(sha256(b"1")))
        (first,) = [s for s in repo.snapshots() if s.files == 2]

        report = repo.verify()

        assert report.missing_chunks == [sha256(b"1")]
        assert report.affected_files() == [(first.id, "only-first")]

    def test_damaged_manifest_is_reported(
        self, repo: BackupRepository, two_snapshots: bytes
    ) -> None:
        seen: list[Event] = []
        victim = repo.snapshots()[0].id
        path = Path(repo.path, "snapshots", victim)
        os.chmod(path, 0o644)
        path.write_bytes(path.read_bytes()[:-5])
        repo._emitter.add(seen.append)

        report = repo.verify()

        assert list(report.damaged_manifests) == [victim]
        assert report.snapshots == 1
        assert [
            (e.object_kind, e.name) for e in seen if isinstance(e, CorruptDataFound)
        ] == [("manifest", victim)]

    def test_prune_refuses_while_a_manifest_is_damaged(
        self, repo: BackupRepository, two_snapshots: bytes
    ) -> None:
        victim = repo.snapshots()[0].id
        path = Path(repo.path, "snapshots", victim)
        os.chmod(path, 0o644)
        path.write_bytes(b"\x00garbage")

        with pytest.raises(CorruptDataError, match=victim):
            repo.prune()

    def test_subsets_partition_the_chunks(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        for i in range(20):
            repo.backup_data(f"f{i}", os.urandom(100), series="s")

        counts = [repo.verify(subset=(k, 3)).chunks_read for k in (1, 2, 3)]

        assert sum(counts) == 20

    @pytest.mark.parametrize("subset", [(0, 3), (4, 3), (1, 0)])
    def test_bad_subset_is_refused(
        self, repo: BackupRepository, subset: tuple[int, int]
    ) -> None:
        with pytest.raises(ConfigurationError, match="subset"):
            repo.verify(subset=subset)

    def test_in_subset_slices_by_digest_prefix(self) -> None:
        digest = "0000000a" + "0" * 56

        assert [in_subset(digest, (k, 4)) for k in (1, 2, 3, 4)] == [
            False,
            False,
            True,
            False,
        ]


def test_a_deleted_chunk_is_stored_again_by_a_full_reread(
    repo: BackupRepository, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    data = os.urandom(5000)
    (source / "f").write_bytes(data)
    repo.backup(source, series="s")
    from .helpers import sha256

    os.unlink(repo._store().path(sha256(data)))
    assert not repo.verify().ok

    repo.backup(source, series="s", force_reread=True)

    assert repo.verify(read_data=True).ok
