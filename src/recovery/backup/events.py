"""
Events that backup repositories emit.

`source` is the repository's path. Snapshots written, forgotten and pruned
are INFO (housekeeping); a skipped file or a stale lock removed is WARNING;
damaged data found is ERROR, since it means a backup cannot be trusted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from ..events import Event

__all__ = [
    "CorruptDataFound",
    "EntrySkipped",
    "PruneCompleted",
    "RestoreCompleted",
    "SnapshotWritten",
    "SnapshotsForgotten",
    "StaleLockRemoved",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotWritten(Event):
    """
    A backup finished and its snapshot is durable.
    """

    snapshot: str
    series: str
    files: int
    bytes_read: int
    bytes_stored: int

    kind: ClassVar[str] = "backup_snapshot_written"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = (
        "snapshot %s of series %s written to %s: %d files, %d bytes read, "
        "%d bytes stored"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "snapshot",
        "series",
        "source",
        "files",
        "bytes_read",
        "bytes_stored",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EntrySkipped(Event):
    """
    A path in the source was left out of the snapshot (special file, vanished).
    """

    path: str
    reason: str

    kind: ClassVar[str] = "backup_entry_skipped"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "backup of %s skipped %r: %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "path", "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotsForgotten(Event):
    """
    `forget` removed snapshot manifests (their chunks stay until prune).
    """

    removed: int
    kept: int

    kind: ClassVar[str] = "backup_snapshots_forgotten"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "%s: forgot %d snapshots, kept %d"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "removed", "kept")


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneCompleted(Event):
    """
    `prune` removed unreferenced chunks.
    """

    chunks_removed: int
    bytes_freed: int

    kind: ClassVar[str] = "backup_prune_completed"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = "%s: pruned %d chunks, freed %d bytes"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "chunks_removed",
        "bytes_freed",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreCompleted(Event):
    """
    A restore finished (possibly with refused or failed entries).
    """

    snapshot: str
    target: str
    files: int
    refused: int
    failed: int

    kind: ClassVar[str] = "backup_restore_completed"
    level: ClassVar[int] = logging.INFO
    message: ClassVar[str] = (
        "restored snapshot %s from %s to %s: %d files, %d refused, %d failed"
    )
    message_fields: ClassVar[tuple[str, ...]] = (
        "snapshot",
        "source",
        "target",
        "files",
        "refused",
        "failed",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CorruptDataFound(Event):
    """
    Stored data failed its check; it was reported and not used.
    """

    object_kind: str
    name: str
    detail: str

    kind: ClassVar[str] = "backup_corrupt_data_found"
    level: ClassVar[int] = logging.ERROR
    message: ClassVar[str] = "%s: damaged %s %s (%s); it was not used"
    message_fields: ClassVar[tuple[str, ...]] = (
        "source",
        "object_kind",
        "name",
        "detail",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StaleLockRemoved(Event):
    """
    A lock left by a process that no longer runs was removed.
    """

    holder: str

    kind: ClassVar[str] = "backup_stale_lock_removed"
    level: ClassVar[int] = logging.WARNING
    message: ClassVar[str] = "%s: removed stale %s"
    message_fields: ClassVar[tuple[str, ...]] = ("source", "holder")
