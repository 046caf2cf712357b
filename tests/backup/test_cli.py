"""
`recovery backup ...` end to end, as real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recovery.cli import main

from .helpers import make_tree, tree_listing

pytestmark = pytest.mark.integration


def cli(
    repo: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "RECOVERY_BACKUP_REPO": str(repo)}
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", "backup", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.mark.slow
def test_full_cycle(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    source = make_tree(tmp_path / "src")

    ok(cli(repo, "init", "--chunk-size", str(64 * 1024)))
    first = json.loads(ok(cli(repo, "create", str(source), "--series", "s", "--json")))
    (source / "a.txt").write_bytes(b"second version\n")
    text = ok(cli(repo, "create", str(source), "--series", "s", "--tag", "nightly"))
    ok(cli(repo, "create", "--stdin", "state.json", stdin=b'{"n": 1}'))
    listed = json.loads(ok(cli(repo, "list", "--json")))
    diff = json.loads(
        ok(cli(repo, "diff", first["snapshot"]["id"], listed[1]["id"], "--json"))
    )
    dumped = cli(repo, "dump", "latest", "state.json").stdout
    plan = ok(cli(repo, "forget", "--keep-last", "1"))
    applied = json.loads(
        ok(cli(repo, "forget", "--keep-last", "1", "--apply", "--json"))
    )
    pruned = json.loads(ok(cli(repo, "prune", "--json")))
    restored = ok(cli(repo, "restore", listed[1]["id"], str(tmp_path / "out")))
    verified = ok(cli(repo, "verify", "--read-data"))

    assert first["summary"]["files_new"] == 5
    assert "1 changed" in text
    assert "dedup ratio:" in text
    assert [s["series"] for s in listed] == ["s", "s", "data:state.json"]
    assert listed[1]["tags"] == ["nightly"]
    assert diff == {"added": [], "removed": [], "changed": ["a.txt"]}
    assert dumped == b'{"n": 1}'
    assert "would remove 1 snapshot, kept 2" in plan
    assert applied["remove"] == [first["snapshot"]["id"]]
    assert pruned["chunks_removed"] == 1
    assert "restored 5 files" in restored
    assert tree_listing(tmp_path / "out") == tree_listing(source)
    assert "no errors found" in verified


@pytest.mark.slow
def test_damage_and_usage_errors_set_the_exit_status(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    ok(cli(repo, "init"))
    ok(cli(repo, "create", "--stdin", "x", stdin=os.urandom(100)))
    chunk = next(p for p in (repo / "chunks").rglob("*") if p.is_file())
    os.chmod(chunk, 0o644)
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"?")

    damaged = cli(repo, "verify", "--read-data")
    missing = cli(tmp_path / "nowhere", "list")
    no_rule = cli(repo, "forget")
    unlocked = json.loads(ok(cli(repo, "unlock", "--json")))

    assert damaged.returncode == 1
    assert b"corrupt chunk" in damaged.stdout
    assert b"affected: snapshot" in damaged.stdout
    assert missing.returncode == 1
    assert b"not a backup repository" in missing.stderr
    assert no_rule.returncode == 2
    assert b"at least one rule" in no_rule.stderr
    assert unlocked == {"removed": 0}


def test_counts_read_in_the_singular_and_plural(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECOVERY_BACKUP_REPO", str(tmp_path / "repo"))
    source = tmp_path / "src"
    source.mkdir()
    (source / "only.txt").write_bytes(b"one\n")

    assert main(["backup", "init", "--compression-level", "0"]) == 0
    assert main(["backup", "create", str(source)]) == 0
    capsys.readouterr()
    assert main(["backup", "restore", "latest", str(tmp_path / "out")]) == 0
    restored = capsys.readouterr().out
    assert main(["backup", "dump", "nosuch", "only.txt"]) == 1
    missing = capsys.readouterr().err

    assert restored == (
        "restored 1 file (0 already correct), 0 dirs, 0 symlinks, 4 B written\n"
    )
    assert missing == "recovery backup: no snapshot matches 'nosuch'\n"


# Runs the command line as if the backup extra were not installed: an entry
# of None in sys.modules makes `import zstandard` raise ImportError.
_WITHOUT_ZSTANDARD = """
import runpy, sys
sys.modules["zstandard"] = None
sys.argv[0] = "recovery"
runpy.run_module("recovery.cli", run_name="__main__")
"""


def cli_without_zstandard(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_ZSTANDARD, "backup", *args, "-r", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestWithoutTheBackupExtra:
    def test_init_refuses_compression_and_creates_nothing(self, tmp_path: Path) -> None:
        result = cli_without_zstandard(tmp_path / "repo", "init")

        assert result.returncode == 1
        assert result.stderr == (
            "recovery backup init: --compression-level 3 needs the backup extra: "
            "pip install 'recovery[backup]'; or give --compression-level 0 to "
            "store data uncompressed\n"
        )
        assert not (tmp_path / "repo").exists()

    def test_uncompressed_repository_works(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("a\n" * 100)

        made = cli_without_zstandard(tmp_path / "r", "init", "--compression-level", "0")
        saved = cli_without_zstandard(tmp_path / "r", "create", str(tmp_path / "a.txt"))

        assert (made.returncode, saved.returncode) == (0, 0), saved.stderr
        assert saved.stdout.startswith("snapshot ")

    def test_compressed_repository_fails_in_one_line(self, tmp_path: Path) -> None:
        repo = tmp_path / "repo"
        (tmp_path / "a.txt").write_text("a\n" * 100)
        assert main(["backup", "init", "-r", str(repo)]) == 0

        result = cli_without_zstandard(repo, "create", str(tmp_path / "a.txt"))

        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("recovery backup: ")
        assert "pip install 'recovery[backup]'" in result.stderr
        assert "Traceback" not in result.stderr
