"""
The exceptions raised by backup repositories.

::

    RecoveryError
    └── BackupError                         a backup operation failed
        ├── RepositoryError                 no repository, or not a usable one
        ├── RepositoryLockedError           another process holds a conflicting lock
        ├── SnapshotNotFoundError (LookupError)
        ├── CorruptDataError                stored data fails its digest check
        └── RestoreError                    some entries could not be restored
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import RecoveryError

__all__ = [
    "BackupError",
    "CorruptDataError",
    "RepositoryError",
    "RepositoryLockedError",
    "RestoreError",
    "SnapshotNotFoundError",
]


class BackupError(RecoveryError):
    """
    The root of every error raised by backup repositories.
    """


class RepositoryError(BackupError):
    """
    The path holds no repository, or one this version cannot use.
    """


class RepositoryLockedError(BackupError):
    """
    Another process holds a lock that conflicts with the one requested.

    `holders` describes the conflicting locks (host, pid and kind).
    """

    def __init__(self, message: str, *, holders: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.holders = tuple(holders)


class SnapshotNotFoundError(BackupError, LookupError):
    """
    No snapshot matches the given id, prefix or name.
    """


class CorruptDataError(BackupError):
    """
    Stored data does not match its digest, or cannot be decoded.

    `kind` is ``"chunk"`` or ``"manifest"`` and `name` the digest or snapshot
    id of the damaged object.
    """

    def __init__(self, message: str, *, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class RestoreError(BackupError):
    """
    A restore finished, but some entries were refused or failed.

    Everything else was restored. `refused` maps unsafe paths to the reason
    they were refused, `failed` maps paths to the reason they failed (for
    example a damaged chunk); no failed file replaced an existing one.
    """

    def __init__(
        self,
        message: str,
        *,
        refused: Mapping[str, str],
        failed: Mapping[str, str],
    ) -> None:
        super().__init__(message)
        self.refused = dict(refused)
        self.failed = dict(failed)
