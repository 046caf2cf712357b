"""
A live terminal view of a dashboard snapshot, refreshed every few seconds.

`watch()` collects a `Snapshot` every *interval* seconds and redraws it in
place with rich's `Live`: one table of circuit breakers (state, time to the
next trial, counters, the failure rate over the last minute and a small
sparkline of it), then busy limiters, services and their endpoints, sagas
by status and the latest backup snapshots, for whichever sources were
given. It is what ``recovery status --watch`` shows. Needs the cli extra
(rich).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import math
from typing import TYPE_CHECKING

from ..clock import SYSTEM_CLOCK, Clock
from ..policies.breaker_core import BreakerState

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

    from ..dashboard.collect import (
        BackupsSection,
        BreakersSection,
        Collector,
        LimitersSection,
        RegistrySection,
        SagasSection,
        Snapshot,
    )

__all__ = ["BreakerTrends", "refresh_seconds", "render", "watch"]

_STYLES = {
    BreakerState.CLOSED: "green",
    BreakerState.HALF_OPEN: "yellow",
    BreakerState.OPEN: "red",
    BreakerState.FORCED_OPEN: "bold red",
    BreakerState.DISABLED: "dim",
}

_HEALTH_STYLES = {
    "healthy": "green",
    "critical": "red",
    "expired": "red",
    "ejected": "yellow",
}

_BARS = "▁▂▃▄▅▆▇█"


def refresh_seconds(text: str) -> float:
    """
    Parse the seconds between two refreshes: a finite number > 0.

    An argparse `type`: a bad value ends the command with exit status 2 and
    a message naming the option.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # nan would never wake the loop up, and inf overflows the timer.
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds > 0, got {text!r}"
        )
    return value


class BreakerTrends:
    """
    Each breaker's failure rate between two refreshes, for the last *points*.
    """

    def __init__(self, points: int = 30) -> None:
        self._points = points
        self._last: dict[str, tuple[int, int]] = {}
        self._rates: dict[str, collections.deque[float | None]] = {}

    def update(self, snapshot: Snapshot) -> None:
        """
        Add one point per breaker from the snapshot's counters.
        """
        section = snapshot.breakers
        views = () if section is None else section.breakers
        for view in views:
            ok, failed = view.successful_calls, view.failed_calls
            last = self._last.get(view.name)
            rate: float | None = None
            if last is not None and ok >= last[0] and failed >= last[1]:
                judged = ok - last[0] + failed - last[1]
                rate = None if judged == 0 else (failed - last[1]) / judged
            self._last[view.name] = (ok, failed)
            rates = self._rates.setdefault(
                view.name, collections.deque(maxlen=self._points)
            )
            rates.append(rate)

    def sparkline(self, name: str) -> str:
        """
        Return the breaker's rates as bar characters (a space for no calls).
        """
        return "".join(
            " " if rate is None else _BARS[min(len(_BARS) - 1, int(rate * len(_BARS)))]
            for rate in self._rates.get(name, ())
        )


def render(snapshot: Snapshot, trends: BreakerTrends | None = None) -> RenderableType:
    """
    Return the snapshot as rich tables, one per source.
    """
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = []
    if snapshot.breakers is not None:
        parts.append(_breakers(snapshot.breakers, trends or BreakerTrends()))
    if snapshot.limiters is not None and (
        snapshot.limiters.limiters or snapshot.limiters.error
    ):
        parts.append(_limiters(snapshot.limiters))
    parts.extend(_registry(section) for section in snapshot.registries)
    if snapshot.sagas is not None:
        parts.append(_sagas(snapshot.sagas))
    if snapshot.backups is not None:
        parts.append(_backups(snapshot.backups))

    taken = _when(snapshot.taken_at, "%H:%M:%S")
    parts.append(Text(f"as of {taken} UTC; Ctrl-C to stop", style="dim"))
    return Group(*parts)


def watch(
    collector: Collector,
    *,
    interval: float,
    iterations: int | None = None,
    console: Console | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """
    Redraw the collector's snapshot every *interval* seconds until Ctrl-C,
    or *iterations* times; return the exit status (0).
    """
    trends = BreakerTrends()
    done = 0
    try:
        from rich.console import Console
        from rich.live import Live

        console = console or Console(emoji=False, highlight=False)
        with Live(console=console, auto_refresh=False) as live:
            while True:
                snapshot = collector.collect()
                trends.update(snapshot)
                live.update(render(snapshot, trends), refresh=True)
                done += 1
                if iterations is not None and done >= iterations:
                    break
                clock.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        collector.close()
    return 0


# -- one table per source --------------------------------------------------------


def _table(columns: tuple[str, ...], numeric: tuple[str, ...]) -> Table:
    from rich import box
    from rich.table import Table

    # A light box leaves more of a narrow terminal to the cells.
    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in columns:
        # Numbers never wrap; names may, so that a narrow terminal still
        # shows every column.
        if column in numeric:
            table.add_column(column, justify="right", no_wrap=True)
        elif column in ("state", "health", "status"):
            table.add_column(column, no_wrap=True, min_width=len("forced_open"))
        else:
            table.add_column(column, overflow="fold", min_width=8)
    return table


def _titled(title: str, *parts: RenderableType) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    # A title of its own line, not the table's: a long path then wraps at
    # the terminal's width rather than the table's.
    return Group(Text(title, style="bold"), *parts)


def _error(title: str, error: str) -> RenderableType:
    from rich.text import Text

    return Text(f"{title}: cannot read: {error}", style="red")


def _breakers(section: BreakersSection, trends: BreakerTrends) -> RenderableType:
    title = f"circuit breakers in {section.source}"
    if section.error is not None:
        return _error(title, section.error)
    numeric = ("trial in", "calls", "ok", "fail", "rej", "trips", "1 min")
    table = _table(
        (
            "breaker",
            "state",
            "trial in",
            "calls",
            "ok",
            "fail",
            "rej",
            "trips",
            "1 min",
            "trend",
        ),
        numeric,
    )
    table.caption = (
        "rej: rejected; trips: times opened; "
        "1 min: failed share of the calls judged in the last minute"
    )
    for view in section.breakers:
        style = _STYLES[view.state]
        if view.state is BreakerState.HALF_OPEN:
            trial = "now"
        elif view.next_trial is None:
            trial = "-"
        else:
            trial = f"{view.next_trial:.1f} s"
        table.add_row(
            view.name,
            f"[{style}]{view.state.value}[/]",
            trial,
            str(view.total_calls),
            str(view.successful_calls),
            str(view.failed_calls),
            str(view.rejected_calls),
            str(view.times_opened),
            _percent(view.recent_failure_rate),
            f"[red]{trends.sparkline(view.name)}[/]",
        )
    if not section.breakers:
        table.caption = "no circuit breakers yet"
    return _titled(title, table)


def _limiters(section: LimitersSection) -> RenderableType:
    title = f"busy rate limiters in {section.source}"
    if section.error is not None:
        return _error(title, section.error)
    table = _table(("limiter", "full again in"), ("full again in",))
    for view in section.limiters:
        table.add_row(view.name, f"{view.idle_in:.2f} s")
    return _titled(title, table)


def _registry(section: RegistrySection) -> RenderableType:
    title = f"services in {section.source}"
    if section.error is not None:
        return _error(title, section.error)
    table = _table(
        ("service", "endpoint", "health", "expires in", "ejected for", "ejections"),
        ("expires in", "ejected for", "ejections"),
    )
    for service in section.services:
        label = f"{service.name} ({service.healthy}/{len(service.endpoints)})"
        for view in service.endpoints:
            style = _HEALTH_STYLES.get(view.health, "")
            expires = "never" if view.expires_in is None else f"{view.expires_in:.1f} s"
            ejected = f"{view.ejected_for:.1f} s" if view.ejected_for else "-"
            table.add_row(
                label,
                view.address,
                f"[{style}]{view.health}[/]",
                expires,
                ejected,
                str(view.ejections),
            )
            label = ""
    if not section.services:
        table.caption = "no services registered"
    return _titled(title, table)


def _sagas(section: SagasSection) -> RenderableType:
    from rich.text import Text

    title = f"sagas in {section.source}"
    if section.error is not None:
        return _error(title, section.error)
    counts = "  ".join(
        f"{status} {count}{'+' if status in section.more else ''}"
        for status, count in section.counts.items()
    )
    table = _table(("saga", "type", "status", "owner", "updated (UTC)"), ())
    for view in section.recent:
        table.add_row(
            view.saga_id,
            view.saga_type,
            view.status,
            view.owner or "-",
            _when(view.updated_at, "%Y-%m-%d %H:%M:%S"),
        )
    return _titled(title, table, Text(counts))


def _backups(section: BackupsSection) -> RenderableType:
    title = f"backups in {section.source} ({section.count} snapshots)"
    if section.error is not None:
        return _error(title, section.error)
    table = _table(
        ("snapshot", "series", "created (UTC)", "files", "size"),
        ("files", "size"),
    )
    for view in section.snapshots:
        table.add_row(
            view.snapshot_id[:12],
            view.series,
            _when(view.created_at, "%Y-%m-%d %H:%M:%S"),
            str(view.files),
            f"{view.size} B",
        )
    if section.locks:
        table.caption = "locked: " + ", ".join(
            f"{lock.kind} by {lock.host} pid {lock.pid} ({lock.purpose})"
            for lock in section.locks
        )
    return _titled(title, table)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _when(epoch: float, pattern: str) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime(pattern)
