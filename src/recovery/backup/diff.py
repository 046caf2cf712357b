"""
Comparing two snapshots: which paths were added, removed or changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .manifest import Entry, Manifest

__all__ = ["SnapshotDiff", "diff_manifests"]


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """
    Paths only in the newer snapshot, only in the older, and in both but
    different (content, type, mode or link target; a new mtime alone does
    not count), each sorted.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def is_empty(self) -> bool:
        """
        Return whether the two snapshots hold the same entries.
        """
        return not (self.added or self.removed or self.changed)


def _signature(entry: Entry) -> tuple[object, ...]:
    return (entry.type, entry.mode, entry.size, entry.digest, entry.target)


def diff_manifests(a: Manifest, b: Manifest) -> SnapshotDiff:
    """
    Return how snapshot *b* differs from snapshot *a*.
    """
    old = {entry.path: entry for entry in a.entries}
    new = {entry.path: entry for entry in b.entries}
    changed = [
        path
        for path in sorted(old.keys() & new.keys())
        if _signature(old[path]) != _signature(new[path])
    ]

    return SnapshotDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(changed),
    )
