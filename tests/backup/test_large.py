"""
A file of several hundred MB goes through backup and restore in bounded memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SIZE_MIB = 320

# Runs in a fresh interpreter so its peak RSS measures only this work.
CHILD = """
import hashlib, json, os, sys
from recovery.backup import BackupRepository

work = sys.argv[1]

def peak_mib():
    # VmHWM is this process's own peak RSS (ru_maxrss survives exec and
    # can report the parent's peak instead).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

repo = BackupRepository(os.path.join(work, "repo"))
repo.init()  # content-defined chunks of about 1 MiB, at most 4 MiB
baseline = peak_mib()
result = repo.backup(os.path.join(work, "src"), series="big")
after_backup = peak_mib()
repo.restore("latest", os.path.join(work, "out"))
after_restore = peak_mib()
with open(os.path.join(work, "out", "big.bin"), "rb") as file:
    restored = hashlib.file_digest(file, "sha256").hexdigest()
print(json.dumps({
    "baseline": baseline,
    "after_backup": after_backup,
    "after_restore": after_restore,
    "restored": restored,
    "bytes_read": result.summary.bytes_read,
    "chunks_new": result.summary.chunks_new,
}))
"""


def write_big_file(path: Path, size_mib: int) -> str:
    """
    Write *size_mib* MiB made of 16 random 1 MiB blocks; return its digest.
    """
    blocks = [os.urandom(1 << 20) for _ in range(16)]
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for i in range(size_mib):
            # Odd steps through the blocks make neighbouring chunks differ.
            block = blocks[(i * 7) % 16]
            file.write(block)
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_large_file_round_trip_in_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    expected = write_big_file(tmp_path / "src" / "big.bin", SIZE_MIB)

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report = json.loads(done.stdout)

    assert report["restored"] == expected
    assert report["bytes_read"] == SIZE_MIB << 20
    # 16 distinct blocks repeat: content-defined cuts repeat with them.
    assert report["chunks_new"] < 48, report
    # Chunks are at most 4 MiB: a buffer and a few chunks in flight (plus
    # allocator slack) stay far below the 320 MiB file.
    assert report["after_backup"] - report["baseline"] < 48, report
    assert report["after_restore"] - report["baseline"] < 48, report
