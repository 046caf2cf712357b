"""
Restoring a snapshot into a directory, safely.

Safety rules, checked for every entry before anything is written:

- a path must be relative, free of ``..``, ``.``, empty components and NUL;
- no parent of an entry may be a symlink in the target (not even one this
  or an earlier restore created), so nothing is written through a link;
- a symlink's target must stay inside the target directory, unless
  `allow_unsafe_links` is given.

A refused entry is reported by name and skipped; the rest is restored.

Each file is written to a temporary name beside its destination while its
chunks are read (each verified against its digest), then checked against
the file's digest, fsynced and renamed into place. A crash therefore
leaves every file either as it was or complete, and a second run skips
files that are already correct. A file whose data is damaged is not
written at all: the file already at its destination stays untouched.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._fs import fsync_dir
from .chunks import ChunkStore
from .errors import BackupError, CorruptDataError
from .manifest import Entry, EntryType

__all__ = ["RestoreResult", "path_problem", "restore_entries", "select_entries"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_PERMISSIONS = 0o1777
_SET_ID = 0o6000

ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class RestoreResult:
    """
    What a restore did: files written or already correct, and what it refused.

    `refused` and `failed` map paths to reasons; a restore with either
    non-empty raises `RestoreError` carrying them.
    """

    files: int = 0
    files_skipped: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_written: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class _RefusedError(BackupError):
    pass


def path_problem(path: str) -> str | None:
    """
    Return why *path* is unsafe to restore, or None when it is safe.
    """
    if not path:
        return "the path is empty"
    if "\x00" in path:
        return "the path contains a NUL byte"
    if path.startswith("/") or _DRIVE.match(path):
        return "the path is absolute"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "the path has an empty, '.' or '..' component"

    return None


def link_problem(path: str, target: str) -> str | None:
    """
    Return why a symlink at *path* pointing to *target* is unsafe, or None.
    """
    if not target or "\x00" in target:
        return "the link target is empty or contains NUL"
    if target.startswith("/"):
        return f"the link target {target!r} is absolute"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"the link target {target!r} leads outside the target directory"

    return None


def select_entries(entries: Iterable[Entry], include: Sequence[str]) -> list[Entry]:
    """
    Return the entries matching any *include* glob (a directory brings its
    contents); all entries when *include* is empty.
    """
    if not include:
        return list(entries)

    def wanted(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatchcase(prefix, pattern)
            for pattern in include
            for prefix in prefixes
        )

    return [entry for entry in entries if wanted(entry.path)]


def restore_entries(
    entries: Sequence[Entry],
    target: str,
    store: ChunkStore,
    *,
    restore_setid: bool = False,
    allow_unsafe_links: bool = False,
    owner: bool = False,
    progress: ProgressCallback | None = None,
    workers: int = 4,
) -> RestoreResult:
    """
    Restore *entries* under directory *target* and return what happened.

    Directories come first, then files (*workers* at a time: the time goes
    into fsync, which runs in parallel), then symlinks (so no entry of this
    restore is written through one), then directory modes and times,
    deepest first.
    """
    os.makedirs(target, exist_ok=True)
    root = os.path.realpath(target)
    job = _Job(root, store, restore_setid, allow_unsafe_links, owner, progress)
    job.total = sum(e.size for e in entries if e.type is EntryType.FILE)

    for entry in entries:
        if entry.type is EntryType.DIR:
            job.run(entry)
    files = [entry for entry in entries if entry.type is EntryType.FILE]
    with ThreadPoolExecutor(workers, thread_name_prefix="recovery-restore") as pool:
        for _ in pool.map(job.run, files):
            pass
    for entry in entries:
        if entry.type is EntryType.SYMLINK:
            job.run(entry)
    job.finish_dirs()

    return job.result


class _Job:
    def __init__(
        self,
        root: str,
        store: ChunkStore,
        restore_setid: bool,
        allow_unsafe_links: bool,
        owner: bool,
        progress: ProgressCallback | None,
    ) -> None:
        self.root = root
        self.store = store
        self.restore_setid = restore_setid
        self.allow_unsafe_links = allow_unsafe_links
        self.owner = owner
        self.progress = progress
        self.result = RestoreResult()
        self.total = 0
        self.done = 0
        self.dirs: list[tuple[str, Entry]] = []
        self.touched: set[str] = set()
        # Files are restored from several threads; this guards the totals.
        self.lock = threading.Lock()

    def run(self, entry: Entry) -> None:
        try:
            problem = path_problem(entry.path)
            if problem is None and entry.type is EntryType.SYMLINK:
                problem = self._link_problem(entry)
            if problem is not None:
                raise _RefusedError(problem)
            destination = self._destination(entry.path)
            self._restore(entry, destination)
        except _RefusedError as exc:
            with self.lock:
                self.result.refused[entry.path] = str(exc)
        except (CorruptDataError, OSError) as exc:
            with self.lock:
                self.result.failed[entry.path] = str(exc)

    def _link_problem(self, entry: Entry) -> str | None:
        if not entry.target:
            return "the link has no target"
        if self.allow_unsafe_links:
            return None
        return link_problem(entry.path, entry.target)

    def _destination(self, path: str) -> str:
        # Walk the parents with lstat: a symlink anywhere on the way is
        # refused, so nothing is ever written through a link.
        current = self.root
        for part in path.split("/")[:-1]:
            current = os.path.join(current, part)
            if self._made_dir(current):
                continue
            info = os.lstat(current)
            if stat.S_ISLNK(info.st_mode):
                raise _RefusedError(f"its parent {current!r} is a symlink")
            if not stat.S_ISDIR(info.st_mode):
                raise _RefusedError(f"its parent {current!r} is not a directory")

        return os.path.join(self.root, *path.split("/"))

    def _made_dir(self, path: str) -> bool:
        # Another thread may create the same parent at the same moment.
        if os.path.lexists(path):
            return False
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return False
        with self.lock:
            self.touched.add(os.path.dirname(path))
        return True

    def _restore(self, entry: Entry, destination: str) -> None:
        if entry.type is EntryType.DIR:
            self._restore_dir(entry, destination)
        elif entry.type is EntryType.FILE:
            self._restore_file(entry, destination)
        else:
            self._restore_link(entry, destination)

    def _restore_dir(self, entry: Entry, destination: str) -> None:
        try:
            info = os.lstat(destination)
        except FileNotFoundError:
            os.mkdir(destination, 0o700)
            self.touched.add(os.path.dirname(destination))
        else:
            if not stat.S_ISDIR(info.st_mode):
                raise _RefusedError("something that is not a directory is in the way")
        self.dirs.append((destination, entry))
        self.result.dirs += 1

    def _restore_file(self, entry: Entry, destination: str) -> None:
        if self._already_correct(entry, destination):
            self._apply_metadata(entry, destination)
            with self.lock:
                self.result.files_skipped += 1
            self._advance(entry.size)
            return

        directory = os.path.dirname(destination)
        temp = _temp_name(destination, "restore")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)

        try:
            self._write_verified(entry, temp)
            os.replace(temp, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

        self._apply_metadata(entry, destination)
        with self.lock:
            self.touched.add(directory)
            self.result.files += 1
            self.result.bytes_written += entry.size

    def _write_verified(self, entry: Entry, temp: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(temp, flags, 0o600)
        # A one-chunk file's digest is its chunk's, which `get` verifies.
        whole = None if entry.chunks == (entry.digest,) else hashlib.sha256()
        try:
            size = 0
            for digest in entry.chunks:
                data = self.store.get(digest)
                if whole is not None:
                    whole.update(data)
                size += len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._advance(len(data))
            content = entry.digest if whole is None else whole.hexdigest()
            if size != entry.size or content != entry.digest:
                raise CorruptDataError(
                    f"the restored content of {entry.path!r} does not match its digest",
                    kind="manifest",
                    name=entry.path,
                )
            os.fsync(fd)
        finally:
            os.close(fd)

    def _already_correct(self, entry: Entry, destination: str) -> bool:
        try:
            info = os.lstat(destination)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(info.st_mode):
            raise _RefusedError("a directory is in the way")
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
            return False

        with open(destination, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest() == entry.digest

    def _restore_link(self, entry: Entry, destination: str) -> None:
        assert entry.target is not None
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(destination)
            if stat.S_ISDIR(info.st_mode):
                raise _RefusedError("a directory is in the way")
            if stat.S_ISLNK(info.st_mode) and os.readlink(destination) == entry.target:
                self.result.symlinks += 1
                return

        temp = _temp_name(destination, "link")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        os.symlink(entry.target, temp)
        os.replace(temp, destination)
        with contextlib.suppress(NotImplementedError, OSError):
            os.utime(
                destination, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False
            )
        self.touched.add(os.path.dirname(destination))
        self.result.symlinks += 1

    def _apply_metadata(self, entry: Entry, destination: str) -> None:
        mask = _PERMISSIONS | (_SET_ID if self.restore_setid else 0)
        if self.owner and entry.uid is not None and entry.gid is not None:
            os.lchown(destination, entry.uid, entry.gid)
        os.chmod(destination, entry.mode & mask)
        os.utime(destination, ns=(entry.mtime_ns, entry.mtime_ns))

    def finish_dirs(self) -> None:
        # Deepest first, so setting a parent's time is the last touch on it.
        for destination, entry in sorted(
            self.dirs, key=lambda d: d[0].count(os.sep), reverse=True
        ):
            try:
                info = os.lstat(destination)
                if stat.S_ISDIR(info.st_mode):
                    self._apply_metadata(entry, destination)
            except OSError as exc:
                self.result.failed[entry.path] = str(exc)
        for directory in sorted(self.touched):
            with contextlib.suppress(OSError):
                fsync_dir(directory)

    def _advance(self, count: int) -> None:
        with self.lock:
            self.done += count
            if self.progress is not None:
                self.progress(self.done, self.total)


def _temp_name(destination: str, kind: str) -> str:
    # Derived from the name, so a rerun finds and replaces the leftovers of
    # a killed run; hashed, so a name of maximal length still fits.
    name_hash = hashlib.sha256(os.fsencode(os.path.basename(destination)))
    directory = os.path.dirname(destination)
    return os.path.join(directory, f".recovery-{kind}-{name_hash.hexdigest()[:16]}.tmp")
