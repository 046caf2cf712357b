"""
The content-addressed chunk store of a repository.

Each chunk lives in ``chunks/<first two hex digits>/<sha256 hex>``, named by
the digest of its uncompressed content, so the same data is stored once
however many files and snapshots hold it. Chunks are written through a
temporary file, fsync and rename, and verified against their name on every
read: a damaged chunk raises `CorruptDataError`, it is never returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ._fs import TEMP_SUFFIX, fsync_dir
from .codec import Codec
from .errors import CorruptDataError

__all__ = ["ChunkStore", "StoredChunk", "digest_of"]

_HEX = frozenset("0123456789abcdef")


def digest_of(data: bytes) -> str:
    """
    Return the hex SHA-256 digest that names a chunk holding *data*.
    """
    return hashlib.sha256(data).hexdigest()


def _is_digest(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """
    A chunk file as found on disk: its digest, path and size in bytes.
    """

    digest: str
    path: str
    size: int


class ChunkStore:
    """
    Reads, writes, lists and deletes the chunks under ``<repo>/chunks``.

    Writes are safe from several threads; `put` leaves the directory fsync
    to the caller (`sync_dirs`), so a backup pays it once per directory.
    """

    def __init__(self, root: str, codec: Codec, *, max_chunk_size: int) -> None:
        self.root = root
        self.codec = codec
        self.max_chunk_size = max_chunk_size

    def path(self, digest: str) -> str:
        """
        Return the path of the chunk named *digest*.
        """
        return os.path.join(self.root, digest[:2], digest)

    def exists(self, digest: str) -> bool:
        """
        Return whether a chunk named *digest* is stored.
        """
        return os.path.exists(self.path(digest))

    def put(self, digest: str, data: bytes) -> int:
        """
        Store *data* under *digest* and return the bytes written to disk.

        The chunk file is fsynced before its rename; the caller must call
        `sync_dirs` before anything refers to it durably.
        """
        header, payload = self.codec.encode_parts(data)
        final = self.path(digest)
        temp = f"{final}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            written = os.writev(fd, [header, payload])
            if written < len(header) + len(payload):
                # A short write (rare on local files): finish the rest.
                rest = memoryview(header + payload)[written:]
                while rest:
                    rest = rest[os.write(fd, rest) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        os.replace(temp, final)

        return len(header) + len(payload)

    def get(self, digest: str) -> bytes:
        """
        Return the content of chunk *digest*, verified against its name.

        Raises `CorruptDataError` when the chunk is missing, undecodable or
        does not hash to its name.
        """
        try:
            with open(self.path(digest), "rb") as file:
                framed = file.read()
        except FileNotFoundError:
            raise CorruptDataError(
                f"chunk {digest} is missing", kind="chunk", name=digest
            ) from None

        data = self.codec.decode(
            framed, name=digest, kind="chunk", limit=self.max_chunk_size
        )
        if digest_of(data) != digest:
            raise CorruptDataError(
                f"chunk {digest} does not match its digest", kind="chunk", name=digest
            )

        return data

    def sync_dirs(self, prefixes: set[str]) -> None:
        """
        Fsync the chunk directories named by their two-digit *prefixes*.
        """
        # Concurrent fsyncs share the file system's journal commits, so
        # many directories cost little more than one.
        paths = [os.path.join(self.root, prefix) for prefix in sorted(prefixes)]
        with ThreadPoolExecutor(8, thread_name_prefix="recovery-fsync") as pool:
            for _ in pool.map(fsync_dir, paths):
                pass

    def stored(self) -> Iterator[StoredChunk]:
        """
        Yield every chunk file on disk, in no particular order.
        """
        for sub in self._subdirs():
            with os.scandir(sub) as entries:
                for entry in entries:
                    if _is_digest(entry.name):
                        size = entry.stat(follow_symlinks=False).st_size
                        yield StoredChunk(entry.name, entry.path, size)

    def leftovers(self) -> Iterator[str]:
        """
        Yield the temporary files that interrupted writes left behind.
        """
        for sub in self._subdirs():
            with os.scandir(sub) as entries:
                for entry in entries:
                    if entry.name.endswith(TEMP_SUFFIX):
                        yield entry.path

    def _subdirs(self) -> list[str]:
        with os.scandir(self.root) as entries:
            return sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))

    def delete(self, digest: str) -> None:
        """
        Remove chunk *digest*; a chunk already gone is not an error.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))
