"""
Consistent copies of live SQLite databases, for backup.

Copying a database file while a program writes to it can give a copy that
SQLite cannot open, and in WAL mode the newest commits live in the ``-wal``
file beside it. `capture` instead copies the database through SQLite's
online backup API into a private temporary file, which is then backed up
in place of the live one; the ``-wal``, ``-shm`` and ``-journal`` files of a
captured database are left out of the snapshot.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import tempfile
from collections.abc import Iterator

__all__ = ["SIDE_FILES", "SQLITE_HEADER", "capture", "is_sqlite"]

SQLITE_HEADER = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")


def is_sqlite(path: str) -> bool:
    """
    Return whether the file at *path* starts with SQLite's header.
    """
    try:
        with open(path, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


@contextlib.contextmanager
def capture(path: str) -> Iterator[str]:
    """
    Yield the path of a consistent copy of the database at *path*.

    The copy is deleted when the block ends. Raises `sqlite3.Error` when
    the file cannot be read as a database.
    """
    with tempfile.TemporaryDirectory(prefix="recovery-sqlite-") as workdir:
        copy = os.path.join(workdir, "copy.db")
        uri = f"{pathlib.Path(path).absolute().as_uri()}?mode=ro"
        source = sqlite3.connect(uri, uri=True)
        try:
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        yield copy
