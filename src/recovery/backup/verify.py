"""
Checking a repository: manifests, chunk presence, and optionally chunk data.

A quick check reads every manifest (checking its digest) and that every
chunk they name exists. With `read_data`, each referenced chunk is also
read back and re-hashed; `subset=(k, n)` limits that to the k-th of n
deterministic slices, so n runs (k = 1..n) cover everything once. A chunk
that fails is read a second time before it is declared bad, so a passing
glitch in memory or I/O is not mistaken for damage on disk.

The report names, for every missing or damaged chunk, the snapshots and
files that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .chunks import ChunkStore
from .errors import CorruptDataError
from .manifest import Manifest

__all__ = ["VerifyReport", "in_subset", "verify_repository"]

# (snapshot id, manifest) for readable ones, (snapshot id, error) otherwise.
ManifestSource = Iterable[tuple[str, Manifest | CorruptDataError]]


@dataclass(slots=True)
class VerifyReport:
    """
    The outcome of a check; `ok` is true when nothing is missing or damaged.

    `affected` maps each missing or corrupt chunk to the (snapshot id, path)
    pairs that use it.
    """

    snapshots: int = 0
    chunks_referenced: int = 0
    chunks_read: int = 0
    damaged_manifests: dict[str, str] = field(default_factory=dict)
    missing_chunks: list[str] = field(default_factory=list)
    corrupt_chunks: dict[str, str] = field(default_factory=dict)
    affected: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """
        Return whether the repository passed the check.
        """
        return not (
            self.damaged_manifests or self.missing_chunks or self.corrupt_chunks
        )

    def affected_files(self) -> list[tuple[str, str]]:
        """
        Return every (snapshot id, path) that a bad chunk damages, sorted.
        """
        return sorted({pair for pairs in self.affected.values() for pair in pairs})


def in_subset(digest: str, subset: tuple[int, int] | None) -> bool:
    """
    Return whether chunk *digest* falls in slice k of n (1-based).
    """
    if subset is None:
        return True
    k, n = subset

    return int(digest[:8], 16) % n == k - 1


def verify_repository(
    manifests: ManifestSource,
    store: ChunkStore,
    *,
    read_data: bool = False,
    subset: tuple[int, int] | None = None,
    on_damage: Callable[[str, str, str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """
    Check *manifests* against *store* and return the report.

    *on_damage* is called with (object kind, name, detail) for each damaged
    object found; *progress* with (chunks done, chunks to read).
    """
    report = VerifyReport()
    users: dict[str, list[tuple[str, str]]] = {}
    for snapshot_id, loaded in manifests:
        if isinstance(loaded, CorruptDataError):
            report.damaged_manifests[snapshot_id] = str(loaded)
            if on_damage is not None:
                on_damage("manifest", snapshot_id, str(loaded))
            continue
        report.snapshots += 1
        for entry in loaded.entries:
            for digest in entry.chunks:
                users.setdefault(digest, []).append((snapshot_id, entry.path))
    report.chunks_referenced = len(users)

    present = {chunk.digest for chunk in store.stored()}
    report.missing_chunks = sorted(set(users) - present)
    for digest in report.missing_chunks:
        if on_damage is not None:
            on_damage("chunk", digest, "missing")

    if read_data:
        _read_all(report, store, users, present, subset, on_damage, progress)

    for digest in (*report.missing_chunks, *report.corrupt_chunks):
        report.affected[digest] = sorted(set(users[digest]))

    return report


def _read_all(
    report: VerifyReport,
    store: ChunkStore,
    users: dict[str, list[tuple[str, str]]],
    present: set[str],
    subset: tuple[int, int] | None,
    on_damage: Callable[[str, str, str], None] | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    todo = sorted(d for d in users if d in present and in_subset(d, subset))
    for done, digest in enumerate(todo, start=1):
        try:
            store.get(digest)
        except CorruptDataError:
            try:
                store.get(digest)
            except CorruptDataError as exc:
                report.corrupt_chunks[digest] = str(exc)
                if on_damage is not None:
                    on_damage("chunk", digest, str(exc))
        report.chunks_read += 1
        if progress is not None:
            progress(done, len(todo))
