"""
Crash-safe file writing: temporary file, fsync, rename, directory fsync.

A file written through `write_atomic` is either absent, or present with
its full content, whatever moment the process or the machine stops at.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["TEMP_SUFFIX", "fsync_dir", "write_atomic"]

# Every temporary file the repository writes ends so, so prune can sweep
# the leftovers of a killed process.
TEMP_SUFFIX = ".tmp"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """
    Make the entries of directory *path* (renames, creations) durable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: str, data: bytes, *, sync_dir: bool = True, mode: int = 0o644
) -> None:
    """
    Write *data* to *path* through a temporary file in the same directory.

    With `sync_dir=False` the caller fsyncs the directory later, once for
    many files.
    """
    directory = os.path.dirname(path)
    temp = os.path.join(
        directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    )
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temp)
        raise
    os.close(fd)

    os.replace(temp, path)
    if sync_dir:
        fsync_dir(directory)
