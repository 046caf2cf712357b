"""
Backup and restore: deduplicated, checksummed snapshots of files and data.

`BackupRepository` is the entry point: `init`, `backup`, `backup_data`,
`snapshots`, `restore`, `read_data`, `verify`, `forget`, `prune`, `diff`.
"""

from .diff import SnapshotDiff
from .errors import (
    BackupError,
    CorruptDataError,
    RepositoryError,
    RepositoryLockedError,
    RestoreError,
    SnapshotNotFoundError,
)
from .events import (
    CorruptDataFound,
    EntrySkipped,
    PruneCompleted,
    RestoreCompleted,
    SnapshotsForgotten,
    SnapshotWritten,
    StaleLockRemoved,
)
from .manifest import Entry, EntryType, Manifest, Snapshot
from .repository import BackupRepository
from .restore import RestoreResult
from .results import BackupProgress, BackupResult, BackupSummary, PruneReport
from .retention import KeptSnapshot, RetentionPlan, RetentionPolicy, RetentionRules
from .verify import VerifyReport

__all__ = [
    "BackupError",
    "BackupProgress",
    "BackupRepository",
    "BackupResult",
    "BackupSummary",
    "CorruptDataError",
    "CorruptDataFound",
    "Entry",
    "EntrySkipped",
    "EntryType",
    "KeptSnapshot",
    "Manifest",
    "PruneCompleted",
    "PruneReport",
    "RepositoryError",
    "RepositoryLockedError",
    "RestoreCompleted",
    "RestoreError",
    "RestoreResult",
    "RetentionPlan",
    "RetentionPolicy",
    "RetentionRules",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotNotFoundError",
    "SnapshotWritten",
    "SnapshotsForgotten",
    "StaleLockRemoved",
    "VerifyReport",
]
