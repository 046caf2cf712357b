"""
Walking a source tree for backup.

The walk never follows symlinks (it records them), visits names in sorted
order so equal trees give equal manifests, and reports what it leaves out:
special files (FIFOs, sockets, devices), excluded paths and directories it
cannot read.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .manifest import EntryType

__all__ = ["SourceItem", "scan"]

SkipReporter = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class SourceItem:
    """
    One thing found in the source: its relative path, disk path and status.
    """

    path: str
    full: str
    stat: os.stat_result
    type: EntryType
    target: str | None = None


def scan(
    root: str, *, exclude: Sequence[str] = (), on_skip: SkipReporter
) -> Iterator[SourceItem]:
    """
    Yield every file, directory and symlink under *root* (not *root* itself).

    A *root* that is a file yields that one file under its own name.
    *exclude* holds glob patterns matched against the relative path and
    against the name alone.
    """
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode):
        item = _item(os.path.basename(root), root, info, on_skip)
        if item is not None:
            yield item
        return

    pending: list[tuple[str, str]] = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            on_skip(prefix or ".", f"cannot list directory: {exc.strerror}")
            continue

        subdirs: list[tuple[str, str]] = []
        for name in names:
            relative = f"{prefix}{name}"
            if _excluded(relative, name, exclude):
                continue
            full = os.path.join(directory, name)
            try:
                info = os.lstat(full)
            except OSError as exc:
                on_skip(relative, f"cannot read its status: {exc.strerror}")
                continue
            item = _item(relative, full, info, on_skip)
            if item is None:
                continue
            yield item
            if item.type is EntryType.DIR:
                subdirs.append((f"{relative}/", full))

        # Reversed so the stack pops directories in sorted order.
        pending.extend(reversed(subdirs))


def _item(
    relative: str, full: str, info: os.stat_result, on_skip: SkipReporter
) -> SourceItem | None:
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return SourceItem(relative, full, info, EntryType.FILE)
    if stat.S_ISDIR(mode):
        return SourceItem(relative, full, info, EntryType.DIR)
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(full)
        except OSError as exc:
            on_skip(relative, f"cannot read the link: {exc.strerror}")
            return None
        return SourceItem(relative, full, info, EntryType.SYMLINK, target)

    on_skip(relative, "not a regular file, directory or symlink")
    return None


def _excluded(relative: str, name: str, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(name, pattern)
        for pattern in patterns
    )
