"""
`recovery backup`: create, list, restore, verify and thin out snapshots.

Sub-commands: ``init``, ``create``, ``list``, ``restore``, ``dump``,
``verify``, ``forget``, ``prune``, ``diff``, ``unlock``. The repository comes from
``-r/--repo`` or the ``RECOVERY_BACKUP_REPO`` environment variable. Long
work shows a progress bar on a terminal (with the ``cli`` extra); every
command can print ``--json`` instead of text. Exit status: 0 on success,
1 when the operation failed or found damage, 2 on bad usage.

``forget`` only shows its plan unless given ``--apply``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..backup import (
    BackupError,
    BackupProgress,
    BackupRepository,
    BackupResult,
    RestoreError,
    RetentionPolicy,
)
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["add_parser"]

_ENV_REPO = "RECOVERY_BACKUP_REPO"
Handler = Callable[[argparse.Namespace], int]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register `recovery backup` and its sub-commands.
    """
    parser = subparsers.add_parser(
        "backup",
        help="deduplicated, verified backups",
        description="Back up files and data into a repository, restore them, "
        "verify the repository and thin out old snapshots.",
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(dest="backup_command", metavar="ACTION")
    for add in (
        _init,
        _create,
        _list,
        _restore,
        _dump,
        _verify,
        _forget,
        _prune,
        _diff,
        _unlock,
    ):
        add(commands)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument(
        "-r",
        "--repo",
        default=os.environ.get(_ENV_REPO),
        help=f"repository directory (default: ${_ENV_REPO})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, not text")
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if not args.repo:
            _err(f"recovery backup: give -r/--repo or set {_ENV_REPO}")
            return 2
        try:
            return handler(args)
        except ConfigurationError as exc:
            _err(f"recovery backup: {exc}")
            return 2
        except (BackupError, OSError) as exc:
            _err(f"recovery backup: {exc}")
            return 1
        except ImportError as exc:
            # A missing extra (zstandard, for a compressed repository).
            _err(f"recovery backup: {exc}")
            return 1

    return run


def _out(text: str) -> None:
    sys.stdout.write(f"{text}\n")


def _err(text: str) -> None:
    sys.stderr.write(f"{text}\n")


def _count(number: int, noun: str) -> str:
    """
    Return "1 file" or "2 files": *number* with *noun*, plural when needed.
    """
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _repo(args: argparse.Namespace) -> BackupRepository:
    return BackupRepository(args.repo)


def _emit(args: argparse.Namespace, data: object, text: str) -> None:
    _out(json.dumps(data, indent=2, default=str) if args.json else text)


# -- init -------------------------------------------------------------------


def _init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "init", _run_init, "create an empty repository")
    parser.add_argument(
        "--chunk-size", type=int, default=1 << 20, help="average bytes per chunk"
    )
    parser.add_argument(
        "--chunking",
        choices=("content", "fixed"),
        default="content",
        help="cut where the content says (default) or every chunk-size bytes",
    )
    parser.add_argument(
        "--compression-level",
        type=int,
        default=3,
        help="zstd level, 0 for none (default: 3; above 0 needs the backup extra)",
    )


def _run_init(args: argparse.Namespace) -> int:
    try:
        _repo(args).init(
            chunk_size=args.chunk_size,
            chunking=args.chunking,
            compression_level=args.compression_level,
        )
    except ImportError:
        _err(
            f"recovery backup init: --compression-level {args.compression_level} "
            "needs the backup extra: pip install 'recovery[backup]'; or give "
            "--compression-level 0 to store data uncompressed"
        )
        return 1
    _emit(args, {"repository": args.repo}, f"created repository {args.repo}")
    return 0


# -- create -----------------------------------------------------------------


def _create(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "create", _run_create, "back up a path or stdin")
    parser.add_argument("source", nargs="?", help="file or directory to back up")
    parser.add_argument(
        "--stdin", metavar="NAME", help="back up standard input as NAME"
    )
    parser.add_argument("--series", help="series name (default: host and path)")
    parser.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    parser.add_argument(
        "--exclude", action="append", default=[], help="glob to leave out"
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="capture SQLite databases consistently"
    )
    parser.add_argument(
        "--force-reread", action="store_true", help="read files even if unchanged"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def _run_create(args: argparse.Namespace) -> int:
    repo = _repo(args)
    if (args.source is None) == (args.stdin is None):
        _err("recovery backup create: give a SOURCE or --stdin NAME")
        return 2

    if args.stdin is not None:
        result = repo.backup_data(
            args.stdin, sys.stdin.buffer, series=args.series, tags=args.tag
        )
    else:
        with _backup_bar(not args.no_progress) as progress:
            result = repo.backup(
                args.source,
                series=args.series,
                tags=args.tag,
                exclude=args.exclude,
                sqlite=args.sqlite,
                force_reread=args.force_reread,
                progress=progress,
            )

    _emit(args, _result_json(result), _result_text(result))
    return 0


def _result_json(result: BackupResult) -> dict[str, object]:
    summary = dataclasses.asdict(result.summary)
    ratio = result.summary.dedup_ratio
    summary["dedup_ratio"] = None if math.isinf(ratio) else ratio
    return {"snapshot": dataclasses.asdict(result.snapshot), "summary": summary}


def _result_text(result: BackupResult) -> str:
    s = result.summary
    ratio = (
        "all data already stored"
        if math.isinf(s.dedup_ratio)
        else f"{s.dedup_ratio:.2f}"
    )
    lines = [
        f"snapshot {result.snapshot.id} saved (series {result.snapshot.series})",
        f"files:        {s.files} ({s.files_new} new, {s.files_changed} changed, "
        f"{s.files_unchanged} unchanged), {_count(s.dirs, 'dir')}, "
        f"{_count(s.symlinks, 'symlink')}",
        f"bytes read:   {_size(s.bytes_read)} of {_size(s.bytes_total)}",
        f"bytes stored: {_size(s.bytes_stored)} ({_size(s.bytes_new)} new before "
        "compression)",
        f"dedup ratio:  {ratio}",
        f"time:         {s.duration:.2f} s",
    ]
    lines.extend(f"skipped {path!r}: {reason}" for path, reason in s.skipped.items())
    return "\n".join(lines)


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


@contextlib.contextmanager
def _backup_bar(wanted: bool) -> Iterator[Callable[[BackupProgress], None] | None]:
    with _bar(wanted, "backup") as bar:
        if bar is None:
            yield None
            return
        progress, task = bar

        def update(report: BackupProgress) -> None:
            progress.update(
                task,
                completed=report.bytes_done,
                total=max(report.bytes_total, 1),
                description=f"backup {report.files_done}/{report.files_total} files",
            )

        yield update


@contextlib.contextmanager
def _bar(wanted: bool, label: str) -> Iterator[tuple[Progress, TaskID] | None]:
    if not (wanted and sys.stderr.isatty()):
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:
        # The bar is a convenience: without the cli extra, work goes on
        # without one.
        yield None
        return

    columns = (
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(
        "[progress.description]{task.description}",
        *columns,
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress, progress.add_task(label, total=None)


# -- list, diff -------------------------------------------------------------


def _list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "list", _run_list, "list snapshots, oldest first")
    parser.add_argument("--series", help="only this series")


def _run_list(args: argparse.Namespace) -> int:
    snapshots = _repo(args).snapshots(series=args.series)
    rows = [
        (
            s.id,
            _utc(s.created_at),
            s.series,
            ",".join(s.tags),
            str(s.files),
            _size(s.size),
        )
        for s in snapshots
    ]
    header = ("id", "created (UTC)", "series", "tags", "files", "size")
    _emit(args, [dataclasses.asdict(s) for s in snapshots], _table(header, rows))
    return 0


def _utc(seconds: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [
        max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)
    ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def _diff(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "diff", _run_diff, "compare two snapshots")
    parser.add_argument("a", help="older snapshot (id, prefix or 'latest')")
    parser.add_argument("b", help="newer snapshot")


def _run_diff(args: argparse.Namespace) -> int:
    diff = _repo(args).diff(args.a, args.b)
    lines = [f"+ {p}" for p in diff.added]
    lines += [f"- {p}" for p in diff.removed]
    lines += [f"M {p}" for p in diff.changed]
    _emit(args, dataclasses.asdict(diff), "\n".join(lines) or "no differences")
    return 0


# -- restore, dump ----------------------------------------------------------


def _restore(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "restore", _run_restore, "restore a snapshot")
    parser.add_argument("snapshot", help="snapshot id, prefix or 'latest'")
    parser.add_argument("target", help="directory to restore into")
    parser.add_argument(
        "--include", action="append", default=[], help="glob to restore"
    )
    parser.add_argument(
        "--restore-setid", action="store_true", help="keep setuid/setgid"
    )
    parser.add_argument(
        "--allow-unsafe-links", action="store_true", help="allow links leading outside"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def _run_restore(args: argparse.Namespace) -> int:
    repo = _repo(args)
    with _bar(not args.no_progress, "restore") as bar:
        callback = None
        if bar is not None:
            progress, task = bar

            def callback(done: int, total: int) -> None:
                progress.update(task, completed=done, total=max(total, 1))

        try:
            result = repo.restore(
                args.snapshot,
                args.target,
                include=args.include,
                restore_setid=args.restore_setid,
                allow_unsafe_links=args.allow_unsafe_links,
                progress=callback,
            )
        except RestoreError as exc:
            problems = {**exc.refused, **exc.failed}
            text = "\n".join(
                f"not restored {p!r}: {why}" for p, why in sorted(problems.items())
            )
            _emit(args, {"refused": exc.refused, "failed": exc.failed}, text)
            return 1

    text = (
        f"restored {_count(result.files, 'file')} ({result.files_skipped} "
        f"already correct), {_count(result.dirs, 'dir')}, "
        f"{_count(result.symlinks, 'symlink')}, "
        f"{_size(result.bytes_written)} written"
    )
    _emit(args, dataclasses.asdict(result), text)
    return 0


def _dump(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        commands, "dump", _run_dump, "write one file of a snapshot to stdout"
    )
    parser.add_argument("snapshot", help="snapshot id, prefix or 'latest'")
    parser.add_argument("name", help="path of the file in the snapshot")


def _run_dump(args: argparse.Namespace) -> int:
    data = _repo(args).read_data(args.snapshot, args.name)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


# -- verify, forget, prune --------------------------------------------------


def _verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(commands, "verify", _run_verify, "check the repository")
    parser.add_argument("--read-data", action="store_true", help="re-hash every chunk")
    parser.add_argument("--subset", metavar="K/N", help="re-hash slice K of N only")


def _run_verify(args: argparse.Namespace) -> int:
    subset = None
    if args.subset:
        try:
            k, n = (int(part) for part in args.subset.split("/"))
        except ValueError:
            _err(f"recovery backup verify: --subset must be K/N, got {args.subset!r}")
            return 2
        subset = (k, n)

    with _bar(args.read_data or subset is not None, "verify") as bar:
        callback = None
        if bar is not None:
            progress, task = bar

            def callback(done: int, total: int) -> None:
                progress.update(task, completed=done, total=max(total, 1))

        report = _repo(args).verify(
            read_data=args.read_data, subset=subset, progress=callback
        )
    lines = [
        f"{_count(report.snapshots, 'snapshot')}, "
        f"{_count(report.chunks_referenced, 'chunk')} referenced, "
        f"{_count(report.chunks_read, 'chunk')} re-hashed"
    ]
    lines += [
        f"damaged manifest {i}: {why}" for i, why in report.damaged_manifests.items()
    ]
    lines += [f"missing chunk {d}" for d in report.missing_chunks]
    lines += [f"corrupt chunk {d}" for d in report.corrupt_chunks]
    lines += [f"affected: snapshot {s} file {p!r}" for s, p in report.affected_files()]
    lines.append("no errors found" if report.ok else "the repository is damaged")
    data = dataclasses.asdict(report) | {"ok": report.ok}
    _emit(args, data, "\n".join(lines))
    return 0 if report.ok else 1


def _forget(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        commands,
        "forget",
        _run_forget,
        "remove snapshots a retention policy does not keep",
    )
    for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        parser.add_argument(f"--keep-{rule}", type=int, default=0, metavar="N")
    parser.add_argument("--keep-within", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--keep-tag", action="append", default=[], metavar="TAG")
    parser.add_argument("--tz", default="UTC", help="zone for calendar buckets")
    parser.add_argument("--series", help="only this series")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="remove them (the default only shows the plan)",
    )


def _run_forget(args: argparse.Namespace) -> int:
    policy = RetentionPolicy(
        keep_last=args.keep_last,
        keep_within=args.keep_within,
        keep_hourly=args.keep_hourly,
        keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly,
        keep_monthly=args.keep_monthly,
        keep_yearly=args.keep_yearly,
        keep_tags=frozenset(args.keep_tag),
        tz=args.tz,
    )
    plan = _repo(args).forget(policy, dry_run=not args.apply, series=args.series)

    verb = "removed" if args.apply else "would remove"
    lines = [
        f"keep   {k.snapshot.id}  {_utc(k.snapshot.created_at)}  {k.snapshot.series}"
        f"  ({', '.join(k.reasons)})"
        for k in plan.keep
    ]
    lines += [f"remove {s.id}  {_utc(s.created_at)}  {s.series}" for s in plan.remove]
    removed = _count(len(plan.remove), "snapshot")
    lines.append(f"{verb} {removed}, kept {len(plan.keep)}")
    if not args.apply and plan.remove:
        lines.append("(dry run: pass --apply to remove them; run prune to free space)")
    data = {
        "applied": args.apply,
        "keep": [{"id": k.snapshot.id, "reasons": list(k.reasons)} for k in plan.keep],
        "remove": [s.id for s in plan.remove],
    }
    _emit(args, data, "\n".join(lines))
    return 0


def _unlock(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        commands, "unlock", _run_unlock, "remove locks left by dead processes"
    )
    parser.add_argument(
        "--all", action="store_true", help="remove every lock, even live ones"
    )


def _run_unlock(args: argparse.Namespace) -> int:
    count = _repo(args).break_locks(stale_only=not args.all)
    _emit(args, {"removed": count}, f"removed {_count(count, 'lock')}")
    return 0


def _prune(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _command(commands, "prune", _run_prune, "delete chunks no snapshot uses")


def _run_prune(args: argparse.Namespace) -> int:
    report = _repo(args).prune()
    text = (
        f"removed {_count(report.chunks_removed, 'chunk')} "
        f"({_size(report.bytes_freed)} freed), kept {report.chunks_kept}, "
        f"removed {_count(report.temp_files_removed, 'leftover file')}"
    )
    _emit(args, dataclasses.asdict(report), text)
    return 0
