"""
Snapshot manifests: what a snapshot holds, and how it is stored.

A manifest is a snapshot's header (`Snapshot`: id, series, creation time,
tags...) plus one `Entry` per file, directory and symlink. It is stored as
canonical JSON (sorted keys, no spaces, ASCII only) carrying the SHA-256
digest of its own body, and the digest is checked on every read, so a
damaged manifest is refused, never half-used.

Paths are relative, with ``/`` separators, exactly as the file system gave
them (names that are not valid UTF-8 survive through Python's
surrogate escapes). Nothing here checks that a path is safe to restore:
restore does that, because a manifest may have been crafted.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from .errors import CorruptDataError

__all__ = ["FORMAT", "Entry", "EntryType", "Manifest", "Snapshot"]

FORMAT: Final = 1


class EntryType(enum.Enum):
    """
    The kind of a manifest entry.
    """

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """
    One file, directory or symlink of a snapshot.

    `digest` is the SHA-256 of a file's whole content and `chunks` the
    digests of its pieces, in order. `inode` serves change detection only.
    `captured` says how the content was taken when not read as is
    (``"sqlite"``: through SQLite's backup API).
    """

    path: str
    type: EntryType
    mode: int
    mtime_ns: int
    size: int = 0
    digest: str | None = None
    chunks: tuple[str, ...] = ()
    target: str | None = None
    inode: int | None = None
    uid: int | None = None
    gid: int | None = None
    captured: str | None = None

    def to_json(self) -> dict[str, object]:
        """
        Return the entry as a JSON-ready dict, leaving out empty fields.
        """
        body: dict[str, object] = {
            "path": self.path,
            "type": self.type.value,
            "mode": self.mode,
            "mtime_ns": self.mtime_ns,
        }
        if self.type is EntryType.FILE:
            body["size"] = self.size
            body["digest"] = self.digest
            body["chunks"] = list(self.chunks)
        optional = {
            "target": self.target,
            "inode": self.inode,
            "uid": self.uid,
            "gid": self.gid,
            "captured": self.captured,
        }
        body.update(
            (key, value) for key, value in optional.items() if value is not None
        )

        return body

    @classmethod
    def from_json(cls, raw: object) -> Entry:
        """
        Build an entry from its JSON form; raise `ValueError` if malformed.
        """
        if not isinstance(raw, dict):
            raise ValueError("an entry must be an object")
        chunks = raw.get("chunks", [])
        if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
            raise ValueError("chunks must be a list of digests")

        return cls(
            path=_get(raw, "path", str),
            type=EntryType(_get(raw, "type", str)),
            mode=_get(raw, "mode", int),
            mtime_ns=_get(raw, "mtime_ns", int),
            size=_get(raw, "size", int, 0),
            digest=_get(raw, "digest", str, None),
            chunks=tuple(chunks),
            target=_get(raw, "target", str, None),
            inode=_get(raw, "inode", int, None),
            uid=_get(raw, "uid", int, None),
            gid=_get(raw, "gid", int, None),
            captured=_get(raw, "captured", str, None),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """
    The header of a snapshot: who, when, what, and a few totals.

    `created_at` is wall-clock seconds since the epoch, read from the
    repository's clock when the backup started; retention orders snapshots
    by it and nothing else.
    """

    id: str
    series: str
    created_at: float
    host: str
    source: str
    tags: tuple[str, ...] = ()
    parent: str | None = None
    files: int = 0
    dirs: int = 0
    size: int = 0

    def to_json(self) -> dict[str, object]:
        """
        Return the header as a JSON-ready dict.
        """
        return {
            "id": self.id,
            "series": self.series,
            "created_at": self.created_at,
            "host": self.host,
            "source": self.source,
            "tags": list(self.tags),
            "parent": self.parent,
            "files": self.files,
            "dirs": self.dirs,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, raw: object) -> Snapshot:
        """
        Build a header from its JSON form; raise `ValueError` if malformed.
        """
        if not isinstance(raw, dict):
            raise ValueError("a snapshot header must be an object")
        tags = raw.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("tags must be a list of strings")
        created = raw.get("created_at")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise ValueError("created_at must be a number")

        return cls(
            id=_get(raw, "id", str),
            series=_get(raw, "series", str),
            created_at=float(created),
            host=_get(raw, "host", str),
            source=_get(raw, "source", str),
            tags=tuple(tags),
            parent=_get(raw, "parent", str, None),
            files=_get(raw, "files", int, 0),
            dirs=_get(raw, "dirs", int, 0),
            size=_get(raw, "size", int, 0),
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """
    A snapshot header and its entries, sorted by path.
    """

    snapshot: Snapshot
    entries: tuple[Entry, ...] = field(default=())

    def body(self) -> dict[str, object]:
        """
        Return the JSON body whose digest the stored manifest carries.
        """
        return {
            "format": FORMAT,
            "snapshot": self.snapshot.to_json(),
            "entries": [entry.to_json() for entry in self.entries],
        }

    def digest(self) -> str:
        """
        Return the SHA-256 of the canonical JSON body.
        """
        return hashlib.sha256(_canonical(self.body())).hexdigest()

    def to_bytes(self) -> bytes:
        """
        Return the stored form: the canonical body plus its digest.
        """
        body = self.body()
        body["digest"] = hashlib.sha256(_canonical(body)).hexdigest()
        return _canonical(body)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "?") -> Manifest:
        """
        Parse a stored manifest and check its digest.

        Raises `CorruptDataError` naming *name* (the snapshot id) when the
        bytes are not a well-formed manifest or the digest does not match.
        """
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict):
                raise ValueError("a manifest must be an object")
            claimed = raw.pop("digest", None)
            if raw.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {raw.get('format')!r}")
            actual = hashlib.sha256(_canonical(raw)).hexdigest()
            if claimed != actual:
                raise ValueError("its digest does not match its content")
            entries = raw.get("entries")
            if not isinstance(entries, list):
                raise ValueError("entries must be a list")
            manifest = cls(
                Snapshot.from_json(raw.get("snapshot")),
                tuple(Entry.from_json(item) for item in entries),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptDataError(
                f"manifest of snapshot {name} is damaged: {exc}",
                kind="manifest",
                name=name,
            ) from exc

        return manifest


def _canonical(body: Mapping[str, object]) -> bytes:
    # ASCII output keeps surrogate-escaped names encodable and the bytes
    # independent of the platform's encoding.
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


_MISSING: Final = object()
_T = TypeVar("_T")


def _get(
    raw: Mapping[str, object], key: str, kind: type[_T], default: object = _MISSING
) -> _T:
    value = raw.get(key, _MISSING)
    if value is _MISSING or (value is None and default is None):
        if default is _MISSING:
            raise ValueError(f"{key} is missing")
        return default  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{key} must be {kind.__name__}, got {value!r}")

    return value
