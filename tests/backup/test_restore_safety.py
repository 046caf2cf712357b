"""
Restore never writes outside its target, never uses damaged data, and
finishes an interrupted job.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recovery.backup import (
    BackupRepository,
    CorruptDataError,
    Entry,
    EntryType,
    RestoreError,
)
from recovery.backup.codec import Codec
from recovery.backup.restore import link_problem, path_problem

from .helpers import file_entry, make_tree, tree_listing, write_manifest


def flip_byte(path: str, offset: int = -1) -> None:
    os.chmod(path, 0o644)
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0xFF
    Path(path).write_bytes(bytes(data))


class TestPathRules:
    @pytest.mark.parametrize(
        ("path", "reason"),
        [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("../x", "'..'"),
            ("a/../../x", "'..'"),
            ("a//b", "empty"),
            ("./a", "'.'"),
            ("a\x00b", "NUL"),
        ],
    )
    def test_unsafe_paths(self, path: str, reason: str) -> None:
        problem = path_problem(path)

        assert problem is not None
        assert reason in problem

    @pytest.mark.parametrize("path", ["a", "a/b/c", "..a", "a..", "ünï/x y"])
    def test_safe_paths(self, path: str) -> None:
        assert path_problem(path) is None

    @pytest.mark.parametrize(
        ("path", "target", "safe"),
        [
            ("link", "a.txt", True),
            ("d/link", "../a.txt", True),
            ("d/link", "../../a.txt", False),
            ("link", "..", False),
            ("link", "/etc", False),
            ("d/e/link", "../../x/../y", True),
        ],
    )
    def test_link_targets(self, path: str, target: str, safe: bool) -> None:
        assert (link_problem(path, target) is None) is safe


class TestCraftedManifests:
    def test_escaping_entries_are_refused_and_named(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        target = tmp_path / "target"
        entries = [
            file_entry(repo, "../escaped", b"evil"),
            file_entry(repo, "/tmp/absolute-evil", b"evil"),
            file_entry(repo, "ok/../../escaped2", b"evil"),
            file_entry(repo, "fine.txt", b"fine"),
            Entry(
                path="abs-link",
                type=EntryType.SYMLINK,
                mode=0o777,
                mtime_ns=0,
                target="/etc",
            ),
            Entry(
                path="up-link",
                type=EntryType.SYMLINK,
                mode=0o777,
                mtime_ns=0,
                target="../..",
            ),
        ]
        snapshot_id = write_manifest(repo, entries)

        with pytest.raises(RestoreError) as caught:
            repo.restore(snapshot_id, target)

        assert set(caught.value.refused) == {
            "../escaped",
            "/tmp/absolute-evil",
            "ok/../../escaped2",
            "abs-link",
            "up-link",
        }
        assert caught.value.failed == {}
        assert tree_listing(tmp_path) == {
            "repo": "dir",
            **{
                k: v for k, v in tree_listing(tmp_path).items() if k.startswith("repo/")
            },
            "target": "dir",
            "target/fine.txt": b"fine",
        }
        assert not Path("/tmp/absolute-evil").exists()

    def test_nothing_is_written_through_an_existing_symlink(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        """A symlinked directory already in the target (say, from an earlier
        restore) is never followed."""
        outside = tmp_path / "outside"
        outside.mkdir()
        target = tmp_path / "target"
        target.mkdir()
        (target / "d").symlink_to(outside)
        snapshot_id = write_manifest(repo, [file_entry(repo, "d/evil", b"evil")])

        with pytest.raises(RestoreError) as caught:
            repo.restore(snapshot_id, target)

        assert "symlink" in caught.value.refused["d/evil"]
        assert list(outside.iterdir()) == []

    def test_unsafe_links_allowed_on_request(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        link = Entry(
            path="l", type=EntryType.SYMLINK, mode=0o777, mtime_ns=0, target="/etc"
        )
        snapshot_id = write_manifest(repo, [link])

        repo.restore(snapshot_id, tmp_path / "t", allow_unsafe_links=True)

        assert os.readlink(tmp_path / "t" / "l") == "/etc"

    def test_a_link_restored_in_the_same_run_is_not_followed(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        """Links are created last, so a file under a same-named path lands in
        a real directory and the link is refused instead."""
        entries = [
            Entry(
                path="d", type=EntryType.SYMLINK, mode=0o777, mtime_ns=0, target="sub"
            ),
            file_entry(repo, "d/x", b"x"),
        ]
        snapshot_id = write_manifest(repo, entries)

        with pytest.raises(RestoreError) as caught:
            repo.restore(snapshot_id, tmp_path / "t")

        assert set(caught.value.refused) == {"d"}
        assert (tmp_path / "t" / "d").is_dir()
        assert not (tmp_path / "t" / "sub").exists()


class TestOddEntries:
    def test_a_link_without_target_is_refused_even_when_unsafe_links_are_allowed(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        link = Entry(path="l", type=EntryType.SYMLINK, mode=0o777, mtime_ns=0)
        snapshot_id = write_manifest(repo, [link])

        with pytest.raises(RestoreError) as caught:
            repo.restore(snapshot_id, tmp_path / "t", allow_unsafe_links=True)

        assert caught.value.refused == {"l": "the link has no target"}

    def test_names_of_maximal_length_restore(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = tmp_path / "src"
        source.mkdir()
        name = "n" * 255
        (source / name).write_bytes(b"long")
        (source / ("l" * 255)).symlink_to(name)
        repo.backup(source, series="s")

        repo.restore("latest", tmp_path / "out")

        assert tree_listing(tmp_path / "out") == tree_listing(source)


class TestMetadata:
    def test_setid_bits_only_on_request(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = tmp_path / "src"
        source.mkdir()
        (source / "tool").write_bytes(b"#!")
        os.chmod(source / "tool", 0o4755)
        repo.backup(source, series="s")

        repo.restore("latest", tmp_path / "plain")
        repo.restore("latest", tmp_path / "setid", restore_setid=True)

        assert stat.S_IMODE(os.stat(tmp_path / "plain" / "tool").st_mode) == 0o755
        assert stat.S_IMODE(os.stat(tmp_path / "setid" / "tool").st_mode) == 0o4755

    def test_directory_modes_and_times(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        os.chmod(source / "sub", 0o750)
        os.utime(source / "sub", ns=(1_500_000_000_000_000_000,) * 2)
        repo.backup(source, series="s")

        repo.restore("latest", tmp_path / "out")

        restored = os.stat(tmp_path / "out" / "sub")
        assert stat.S_IMODE(restored.st_mode) == 0o750
        assert restored.st_mtime_ns == 1_500_000_000_000_000_000


class TestDamagedData:
    def test_restore_refuses_a_file_with_a_damaged_chunk(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        manifest = repo.manifest(repo.backup(source, series="s").snapshot)
        damaged = next(e for e in manifest.entries if e.path == "sub/b.txt")
        flip_byte(repo._store().path(damaged.chunks[0]))
        target = tmp_path / "out"
        target.mkdir()
        (target / "sub").mkdir()
        (target / "sub" / "b.txt").write_bytes(b"the good old copy")

        with pytest.raises(RestoreError) as caught:
            repo.restore("latest", target)

        assert set(caught.value.failed) == {"sub/b.txt"}
        assert damaged.chunks[0] in caught.value.failed["sub/b.txt"]
        assert (target / "sub" / "b.txt").read_bytes() == b"the good old copy"
        assert (target / "a.txt").read_bytes() == b"alpha\n"
        assert not list(target.rglob("*.tmp"))

    def test_missing_chunk_fails_that_file_only(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        manifest = repo.manifest(repo.backup(source, series="s").snapshot)
        entry = next(e for e in manifest.entries if e.path == "sub/deeper/c.bin")
        os.unlink(repo._store().path(entry.chunks[1]))

        with pytest.raises(RestoreError) as caught:
            repo.restore("latest", tmp_path / "out")

        assert list(caught.value.failed) == ["sub/deeper/c.bin"]
        assert "missing" in caught.value.failed["sub/deeper/c.bin"]
        assert not (tmp_path / "out" / "sub" / "deeper" / "c.bin").exists()

    def test_tampered_manifest_is_refused(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        snapshot_id = repo.backup_data("x", b"x").snapshot.id
        path = Path(repo.path, "snapshots", snapshot_id)
        body = repo._store().codec.decode(
            path.read_bytes(), name="m", kind="manifest", limit=1 << 20
        )
        assert b'"size":1' in body
        os.chmod(path, 0o644)
        path.write_bytes(Codec(0).encode(body.replace(b'"size":1', b'"size":2')))

        with pytest.raises(CorruptDataError, match="digest"):
            repo.restore(snapshot_id, tmp_path / "unused")

        assert not (tmp_path / "unused").exists()
        assert repo.snapshots() == []


class TestRerun:
    def test_second_run_skips_correct_files_and_fixes_the_rest(
        self, repo: BackupRepository, tmp_path: Path
    ) -> None:
        source = make_tree(tmp_path / "src")
        repo.backup(source, series="s")
        target = tmp_path / "out"
        repo.restore("latest", target)
        (target / "a.txt").write_bytes(b"tampered")
        (target / "sub" / "b.txt").unlink()

        result = repo.restore("latest", target)

        assert tree_listing(target) == tree_listing(source)
        assert result.files == 2
        assert result.files_skipped == 3
