"""
Builders shared by the backup tests: source trees and crafted manifests.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from recovery.backup import BackupRepository, Entry, EntryType, Manifest, Snapshot
from recovery.backup.codec import Codec

# Fixed content so expected digests can be written down independently.
FILES: dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "empty": b"",
    "sub/b.txt": b"bravo " * 1000,
    "sub/deeper/c.bin": bytes(range(256)) * 400,
    "ünïcødé/名前.txt": "grüße\n".encode(),
}


def make_tree(root: Path) -> Path:
    """
    Write FILES under *root*, plus a symlink and an empty directory.
    """
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "link-to-a").symlink_to("a.txt")
    (root / "sub" / "link-up").symlink_to("../a.txt")
    (root / "empty-dir").mkdir()
    os.chmod(root / "a.txt", 0o640)
    os.utime(root / "a.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    return root


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_listing(root: Path) -> dict[str, object]:
    """
    Map each relative path under *root* to its content, link target or "dir".
    """
    listing: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            listing[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            listing[relative] = "dir"
        else:
            listing[relative] = path.read_bytes()
    return listing


def write_manifest(
    repo: BackupRepository,
    entries: list[Entry],
    *,
    snapshot_id: str = "c0ffee00c0ffee00",
) -> str:
    """
    Store a hand-made manifest (as an attacker could) and return its id.
    """
    snapshot = Snapshot(
        id=snapshot_id,
        series="crafted",
        created_at=1_700_000_000.0,
        host="elsewhere",
        source="/",
    )
    data = Codec(0).encode(Manifest(snapshot, tuple(entries)).to_bytes())
    Path(repo.path, "snapshots", snapshot_id).write_bytes(data)
    return snapshot_id


def file_entry(repo: BackupRepository, path: str, data: bytes) -> Entry:
    """
    Store *data* as one chunk and return a file entry pointing at it.
    """
    digest = sha256(data)
    store = repo._store()
    if data:
        store.put(digest, data)
    return Entry(
        path=path,
        type=EntryType.FILE,
        mode=0o644,
        mtime_ns=1_700_000_000_000_000_000,
        size=len(data),
        digest=digest,
        chunks=(digest,) if data else (),
    )
