"""
`recovery sagas`: list, inspect, recover and repair journalled sagas.

    recovery sagas list    --journal PATH_OR_URL [--status STATUS ...] [--json]
    recovery sagas show ID --journal PATH_OR_URL [--json]
    recovery sagas recover --journal PATH_OR_URL --definitions MODULE:NAME
                           [--leases-only]
    recovery sagas retry ID --journal PATH_OR_URL [--definitions MODULE:NAME]
    recovery sagas abort ID --journal PATH_OR_URL [--force] [--note TEXT]

PATH is an SQLite file; a ``postgresql://`` URL names a PostgreSQL journal.
``--definitions`` names an importable dict (or list) of `Saga` objects, the
same ones the application runs; the current directory is importable.
Exit status: 0 on success, 1 when a saga could not be handled (a damaged
journal, a changed definition, a state that forbids the action).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import enum
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..errors import RecoveryError
from ..transactions import (
    Journal,
    JournalError,
    JournalRecord,
    RecoveryReport,
    Saga,
    SagaHeader,
    SagaStatus,
    abort_saga,
    arecover_sagas,
    open_journal,
    retry_saga,
)

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register `recovery sagas` and its actions.
    """
    parser = subparsers.add_parser(
        "sagas",
        help="list, show, recover and repair journalled sagas",
        description="Inspect and repair sagas in a journal (an SQLite file or a "
        "postgresql:// URL).",
    )
    actions = parser.add_subparsers(dest="saga_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list sagas, most recent first")
    listing.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in SagaStatus],
        help="only sagas in this state (repeatable)",
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="show one saga's history")
    show.add_argument("saga_id", metavar="ID")
    show.set_defaults(handler=_show)

    recover = actions.add_parser("recover", help="finish sagas whose process died")
    recover.add_argument(
        "--definitions",
        required=True,
        metavar="MODULE:NAME",
        help="an importable dict or list of the application's Saga objects",
    )
    recover.add_argument(
        "--lease", type=float, default=60.0, help="seconds to own each saga"
    )
    recover.add_argument(
        "--leases-only",
        action="store_true",
        help="take over only sagas whose lease expired, not those whose owner "
        "process on this host is gone (for containers sharing a host name)",
    )
    recover.set_defaults(handler=_recover)

    retry = actions.add_parser("retry", help="send a stuck saga back to recovery")
    retry.add_argument("saga_id", metavar="ID")
    retry.add_argument("--note", default="", help="why, for the journal")
    retry.add_argument(
        "--definitions",
        metavar="MODULE:NAME",
        help="also recover it now with these definitions",
    )
    retry.set_defaults(handler=_retry)

    abort = actions.add_parser("abort", help="give up on a saga; run nothing more")
    abort.add_argument("saga_id", metavar="ID")
    abort.add_argument("--note", default="", help="why, for the journal")
    abort.add_argument(
        "--force", action="store_true", help="also abort a saga still in progress"
    )
    abort.set_defaults(handler=_abort)

    for sub in (listing, show):
        sub.add_argument("--json", action="store_true", help="print JSON, not a table")
    for sub in (listing, show, recover, retry, abort):
        sub.add_argument(
            "--journal",
            required=True,
            metavar="PATH_OR_URL",
            help="an SQLite file, or a postgresql:// URL",
        )


# -- actions -------------------------------------------------------------------


def _reported(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """
    Turn the library's own errors into a message and exit status 1.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except RecoveryError as exc:
            sys.stderr.write(f"recovery: {exc}\n")
            return 1

    return run


@_reported
def _list(args: argparse.Namespace) -> int:
    with _journal(args) as journal:
        statuses = None if args.status is None else [SagaStatus(s) for s in args.status]
        headers = journal.sagas(statuses, limit=args.limit)
    if args.json:
        _out(json.dumps([_plain(h) for h in headers], indent=2))
        return 0

    rows = [
        (
            h.saga_id,
            h.saga_type,
            h.status.value,
            _when(h.updated_at),
            str(h.last_seq),
            h.owner or "",
        )
        for h in headers
    ]
    _table("sagas", ("id", "type", "status", "updated", "records", "owner"), rows)
    return 0


@_reported
def _show(args: argparse.Namespace) -> int:
    with _journal(args) as journal:
        history = journal.load(args.saga_id)
    header = history.header
    if args.json:
        document = {
            "saga": _plain(header),
            "records": [_plain(r) for r in history.records],
        }
        _out(json.dumps(document, indent=2))
        return 0

    _out(
        f"saga {header.saga_id}  type {header.saga_type}  "
        f"status {header.status.value}  definition {header.definition_hash}  "
        f"owner {header.owner or '-'}  fence {header.fence}"
    )
    rows = [
        (
            str(r.seq),
            _when(r.at),
            r.kind.value,
            r.step_name or "",
            str(r.attempt or ""),
            r.key or "",
            _short(r.payload),
        )
        for r in history.records
    ]
    _table(
        "history",
        ("seq", "at", "record", "step", "attempt", "idempotency key", "payload"),
        rows,
    )
    return 0


@_reported
def _recover(args: argparse.Namespace) -> int:
    definitions = _definitions(args.definitions)
    with _journal(args) as journal:
        # The async twin runs sync and async steps alike.
        report = asyncio.run(
            arecover_sagas(
                journal,
                definitions,
                lease=args.lease,
                detect_dead_owners=not args.leases_only,
            )
        )
    return _report(report)


@_reported
def _retry(args: argparse.Namespace) -> int:
    definitions = None if args.definitions is None else _definitions(args.definitions)
    with _journal(args) as journal:
        status = retry_saga(journal, args.saga_id, note=args.note)
        _out(f"saga {args.saga_id} is {status.value} again")
        if definitions is None:
            return 0
        report = asyncio.run(arecover_sagas(journal, definitions))
    return _report(report)


@_reported
def _abort(args: argparse.Namespace) -> int:
    with _journal(args) as journal:
        abort_saga(journal, args.saga_id, note=args.note, force=args.force)
    _out(f"saga {args.saga_id} aborted: it is failed and nothing more will run")
    return 0


# -- helpers -------------------------------------------------------------------


class _journal:  # noqa: N801 - used as a context manager, reads like a function
    """
    Open the journal named by --journal; report journal errors as exit 1.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._target = args.journal
        self._journal: Journal | None = None

    def __enter__(self) -> Journal:
        # A mistyped path must not quietly create an empty journal.
        is_url = self._target.startswith(("postgresql://", "postgres://"))
        if not is_url and not os.path.exists(self._target):
            raise JournalError(f"no journal at {self._target}")
        self._journal = open_journal(self._target)
        return self._journal

    def __exit__(self, *exc_info: object) -> None:
        if self._journal is not None:
            self._journal.close()


def _definitions(spec: str) -> Mapping[str, Saga] | Iterable[Saga]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"recovery: --definitions must be MODULE:NAME, got {spec!r}")

    # Like other application runners, let the current directory be imported.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"recovery: cannot load --definitions {spec}: {exc}") from exc
    if isinstance(value, Saga):
        return [value]
    if isinstance(value, Mapping | list | tuple):
        return value
    raise SystemExit(
        f"recovery: {spec} must be a Saga, or a dict or list of Saga objects, "
        f"got {type(value).__name__}"
    )


def _report(report: RecoveryReport) -> int:
    rows = [(saga_id, status.value, "") for saga_id, status in report.finished.items()]
    rows += [
        (saga_id, "not recovered", f"{type(error).__name__}: {error}")
        for saga_id, error in report.errors.items()
    ]
    rows += [(saga_id, "taken over by another worker", "") for saga_id in report.lost]
    if not rows:
        _out("nothing to recover")
        return 0
    _table("recovered sagas", ("id", "status", "error"), rows)

    return 0 if report.ok else 1


def _plain(record: SagaHeader | JournalRecord) -> dict[str, object]:
    fields = dataclasses.asdict(record)
    return {
        key: value.value if isinstance(value, enum.Enum) else value
        for key, value in fields.items()
    }


def _out(text: str) -> None:
    sys.stdout.write(f"{text}\n")


def _when(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(text: str | None, limit: int = 60) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        # Without the cli extra, plain tab-separated text says the same.
        _out("\t".join(columns))
        for row in rows:
            _out("\t".join(row))
        return

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    # Journal text is data: ":b:" in a key must not become an emoji, nor
    # "[x]" in a payload markup.
    Console(emoji=False, markup=False, highlight=False).print(table)
