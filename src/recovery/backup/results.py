"""
What repository operations report: backup summaries, progress, prune totals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .manifest import Snapshot

__all__ = ["BackupProgress", "BackupResult", "BackupSummary", "PruneReport"]


@dataclass(frozen=True, slots=True)
class BackupProgress:
    """
    A progress report during a backup: bytes read so far of those to read.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    path: str


@dataclass(slots=True)
class BackupSummary:
    """
    Totals of one backup.

    `bytes_read` is what was read from the source (unchanged files are not
    read), `bytes_new` the uncompressed size of chunks the repository did
    not have yet, `bytes_stored` their size on disk. `duration` is seconds
    on the repository's monotonic clock.
    """

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    chunks_new: int = 0
    chunks_dedup: int = 0
    duration: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def dedup_ratio(self) -> float:
        """
        Return bytes read per new byte stored before compression (>= 1).

        Infinite when data was read but all of it was already stored; 1.0
        when nothing was read.
        """
        if self.bytes_read == 0:
            return 1.0
        if self.bytes_new == 0:
            return math.inf

        return self.bytes_read / self.bytes_new

    @property
    def compression_ratio(self) -> float:
        """
        Return new bytes per byte written to disk (>= 1 when it helped).
        """
        return self.bytes_new / self.bytes_stored if self.bytes_stored else 1.0


@dataclass(frozen=True, slots=True)
class BackupResult:
    """
    A finished backup: the snapshot it wrote and its totals.
    """

    snapshot: Snapshot
    summary: BackupSummary


@dataclass(frozen=True, slots=True)
class PruneReport:
    """
    What prune removed: unreferenced chunks, their bytes, leftover temp files.
    """

    chunks_removed: int
    bytes_freed: int
    chunks_kept: int
    temp_files_removed: int
