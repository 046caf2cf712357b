"""
`recovery status`: the circuit breakers the command line remembers.

    recovery status [--state PATH | --redis URL] [--journal PATH_OR_URL]
                    [--repo PATH] [--registry-redis URL ...] [--watch [SECONDS]]

Shows one row per breaker: its state, since when, the time left before a
trial run is allowed, and its counters. Reads the same store as
``recovery run --breaker``, and never writes it: a missing --state file is
an error, and a missing default file means no breaker was recorded yet.
Exit status: 0, or 1 when the store is missing or cannot be read.

With ``--watch``, the view refreshes in place every SECONDS (default 1)
until Ctrl-C, and adds the failure rate of the last minute and its trend,
busy limiters, and whatever ``--journal`` (sagas by status), ``--repo``
(the latest backup snapshots) and ``--registry-redis`` (services and their
endpoints' health) name; those options alone show the same view once.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RecoveryError
from ..policies.breaker_core import BreakerMetrics, BreakerState
from ._breakers import default_state_path, open_cli_store
from ._watch import refresh_seconds

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["add_parser"]

_COLUMNS = (
    "breaker",
    "state",
    "since (UTC)",
    "next trial",
    "calls",
    "ok",
    "failed",
    "rejected",
    "opened",
)

# Wider than any terminal, for measuring what a table needs.
_UNLIMITED = 1 << 16

_STYLES = {
    BreakerState.CLOSED: "green",
    BreakerState.HALF_OPEN: "yellow",
    BreakerState.OPEN: "red",
    BreakerState.FORCED_OPEN: "bold red",
    BreakerState.DISABLED: "dim",
}


def add_parser(subparsers: Any) -> None:
    """
    Register the `status` sub-command.
    """
    parser = subparsers.add_parser(
        "status",
        help="show the circuit breakers remembered between runs",
        description="Show each circuit breaker kept by `recovery run --breaker`: "
        "its state, counters and the time left before a trial run.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--state",
        metavar="PATH",
        help="the SQLite file that keeps breaker state "
        f"(default: {default_state_path()})",
    )
    where.add_argument(
        "--redis", metavar="URL", help="read breaker state from Redis instead"
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="also show the sagas of this journal (an SQLite file or a "
        "postgresql:// URL)",
    )
    parser.add_argument(
        "--repo", metavar="PATH", help="also show this backup repository"
    )
    parser.add_argument(
        "--registry-redis",
        action="append",
        default=[],
        metavar="URL",
        help="also show the shared service registry in this Redis (repeatable)",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=refresh_seconds,
        const=1.0,
        default=None,
        metavar="SECONDS",
        help="refresh in place every SECONDS (default 1) until Ctrl-C",
    )
    # Bounds --watch, so that tests and scripts can run it to an end.
    parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Status only looks: opening a missing SQLite file would create it.
    if args.state is not None and not Path(args.state).exists():
        sys.stderr.write(f"recovery status: no state file at {args.state}\n")
        return 1
    if args.watch is not None or args.journal or args.repo or args.registry_redis:
        return _handle_live(args)

    if args.redis is None and args.state is None:
        default = default_state_path()
        if not default.exists():
            _write(f"no breakers recorded yet (no state file at {default})")
            return 0
    try:
        store = open_cli_store(state=args.state, redis=args.redis)
    except ImportError as exc:
        sys.stderr.write(f"recovery status: {exc}\n")
        return 1
    try:
        rows = [m for m in (store.metrics(name) for name in store.names()) if m]
    except RecoveryError as exc:
        where = store.describe()
        sys.stderr.write(f"recovery status: cannot read {where}: {exc}\n")
        return 1
    finally:
        store.close()

    if not rows:
        _write(f"no circuit breakers in {store.describe()}")
        return 0
    _print_table(rows, store.describe())
    return 0


def _handle_live(args: argparse.Namespace) -> int:
    from ._watch import watch
    from .dashboard import collector_from_args

    try:
        collector = collector_from_args(args)
    except (RecoveryError, ImportError) as exc:
        sys.stderr.write(f"recovery status: {exc}\n")
        return 1
    try:
        return watch(
            collector,
            interval=args.watch or 1.0,
            iterations=1 if args.watch is None else args.iterations,
        )
    except ImportError as exc:
        sys.stderr.write(
            f"recovery status: the live view needs the cli extra "
            f"(pip install 'recovery[cli]'): {exc}\n"
        )
        return 1


def _cells(metrics: BreakerMetrics) -> list[str]:
    since = datetime.datetime.fromtimestamp(metrics.since, datetime.UTC)
    retry = metrics.retry_after
    if metrics.state is BreakerState.HALF_OPEN:
        next_trial = "now"
    elif retry is None:
        next_trial = "-"
    else:
        next_trial = f"{retry:.1f} s"
    return [
        metrics.name,
        metrics.state.value,
        since.strftime("%Y-%m-%d %H:%M:%S"),
        next_trial,
        str(metrics.total_calls),
        str(metrics.successful_calls),
        str(metrics.failed_calls),
        str(metrics.rejected_calls),
        str(metrics.times_opened),
    ]


def _print_table(rows: Sequence[BreakerMetrics], where: str) -> None:
    try:
        from rich.console import Console
        from rich.measure import Measurement
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        _print_plain(rows, where)
        return

    table = Table(title=f"circuit breakers in {where}")
    for column in _COLUMNS:
        numeric = column in ("calls", "ok", "failed", "rejected", "opened")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for metrics in rows:
        cells = _cells(metrics)
        style = _STYLES[metrics.state]
        table.add_row(Text(cells[0]), Text(cells[1], style=style), *cells[2:])
    console = Console(emoji=False, highlight=False)
    # A table too wide for the terminal (or the 80 columns of a pipe) would
    # be cut, state and next trial first: one short block per breaker is not.
    # Measured without a limit: a measurement never exceeds the width given.
    unlimited = console.options.update_width(_UNLIMITED)
    if Measurement.get(console, unlimited, table).minimum > console.width:
        _print_blocks(rows, where, console)
        return
    console.print(table)


def _print_blocks(rows: Sequence[BreakerMetrics], where: str, console: Console) -> None:
    from rich.text import Text

    console.print(Text(f"circuit breakers in {where}"), soft_wrap=True)
    for metrics in rows:
        cells = _cells(metrics)
        line = Text(cells[0], style="bold")
        line.append("  ")
        line.append(cells[1], style=_STYLES[metrics.state])
        if cells[3] == "now":
            line.append("  a trial run may start now")
        elif cells[3] != "-":
            line.append(f"  next trial in {cells[3]}")
        console.print(line, soft_wrap=True)
        opened = {0: "never opened", 1: "opened once"}.get(
            metrics.times_opened, f"opened {cells[8]} times"
        )
        console.print(Text(f"  since {cells[2]} UTC; {opened}"), soft_wrap=True)
        console.print(
            Text(
                f"  calls {cells[4]}: ok {cells[5]}, failed {cells[6]}, "
                f"rejected {cells[7]}"
            ),
            soft_wrap=True,
        )


def _print_plain(rows: Sequence[BreakerMetrics], where: str) -> None:
    # Without rich (the cli extra), a plain aligned table still does the job.
    lines = [list(_COLUMNS), *(_cells(metrics) for metrics in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    _write(f"circuit breakers in {where}")
    for line in lines:
        cells = zip(line, widths, strict=True)
        _write("  ".join(cell.ljust(width) for cell, width in cells).rstrip())


def _write(text: str) -> None:
    sys.stdout.write(f"{text}\n")
