"""
`recovery services check FILE`: probe the endpoints of a services file.

The file is the TOML that `ServiceRegistry.from_toml` reads. Every endpoint
is probed once, concurrently, with its service's check (a TCP connect for a
service without one), and a table shows each service, endpoint, verdict,
latency and the reason for a failure. With `--watch`, every endpoint is
probed again at each refresh and the table updates live, showing each
endpoint's health verdict (after its service's rise and fall thresholds)
beside its last probe.

Exit status: 0 when every endpoint is healthy, 1 when one is not, 2 for a
bad file or options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..clock import SYSTEM_CLOCK
from ..discovery.checker import HealthChecker
from ..discovery.checks import CheckResult, TcpCheck
from ..discovery.config import load_registry
from ..discovery.endpoint import EndpointStatus
from ..discovery.registry import ServiceRegistry
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["add_parser"]

_EXIT_HEALTHY = 0
_EXIT_UNHEALTHY = 1
_EXIT_USAGE = 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register the `services` sub-command and its `check` action.
    """
    parser = subparsers.add_parser(
        "services",
        help="check the endpoints of a services file",
        description="Work with the services of a TOML services file.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="probe every endpoint and print a table",
        description="Probe every endpoint once (or on schedule with --watch) and "
        "print services, endpoints, health and latency.",
        epilog="exit status: 0 all healthy, 1 some unhealthy, 2 bad file or options",
    )
    check.add_argument("file", help="the services file (TOML)")
    check.add_argument(
        "-s",
        "--service",
        action="append",
        dest="services",
        metavar="NAME",
        help="check only this service (repeatable)",
    )
    check.add_argument(
        "-w", "--watch", action="store_true", help="keep checking and refresh live"
    )
    check.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two table refreshes with --watch (default 1)",
    )
    # Bounds --watch, so that tests and scripts can run it to an end.
    check.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        from rich.console import Console
    except ImportError:
        sys.stderr.write(
            "recovery services needs the cli extra: pip install 'recovery[cli]'\n"
        )
        return _EXIT_USAGE

    try:
        registry = load_registry(args.file, name="services")
        names = _selected(registry, args.services)
        if args.refresh <= 0:
            raise ConfigurationError(f"--refresh must be > 0, got {args.refresh!r}")
    except (ConfigurationError, OSError) as exc:
        sys.stderr.write(f"recovery services: {exc}\n")
        return _EXIT_USAGE

    for name in names:
        # A service without a check is probed for an open port.
        if registry.check_of(name) is None:
            registry.register(name, check=TcpCheck())

    console = Console()
    if args.watch:
        return asyncio.run(
            _watch(registry, names, console, args.refresh, args.iterations)
        )
    return asyncio.run(_once(registry, names, console))


def _selected(registry: ServiceRegistry, wanted: Sequence[str] | None) -> list[str]:
    if not wanted:
        return registry.services()
    unknown = [name for name in wanted if name not in registry]
    if unknown:
        raise ConfigurationError(f"no such service in the file: {', '.join(unknown)}")

    return list(dict.fromkeys(wanted))


async def _once(registry: ServiceRegistry, names: list[str], console: Console) -> int:
    results = await HealthChecker(registry).check_once(names)
    console.print(_table(registry, names, results, verdicts=False))

    return _EXIT_HEALTHY if all(r.passed for r in results) else _EXIT_UNHEALTHY


async def _watch(
    registry: ServiceRegistry,
    names: list[str],
    console: Console,
    refresh: float,
    iterations: int | None,
) -> int:
    from rich.live import Live

    checker = HealthChecker(registry)
    latest: dict[tuple[str, str], CheckResult] = {}
    status = _EXIT_HEALTHY
    with Live(console=console, auto_refresh=False) as live:
        rounds = 0
        while iterations is None or rounds < iterations:
            for result in await checker.check_once(names):
                latest[(result.service, result.address)] = result
            live.update(_table(registry, names, list(latest.values()), verdicts=True))
            live.refresh()
            status = _status(registry, names)
            rounds += 1
            if iterations is None or rounds < iterations:
                await SYSTEM_CLOCK.asleep(refresh)
    console.line()

    return status


def _status(registry: ServiceRegistry, names: list[str]) -> int:
    healthy = all(ep.healthy for name in names for ep in registry.endpoints(name))
    return _EXIT_HEALTHY if healthy else _EXIT_UNHEALTHY


def _table(
    registry: ServiceRegistry,
    names: list[str],
    results: list[CheckResult],
    *,
    verdicts: bool,
) -> Table:
    from rich.table import Table

    by_endpoint = {(r.service, r.address): r for r in results}
    table = Table(title="services", title_justify="left")
    table.add_column("service")
    table.add_column("endpoint")
    table.add_column("health")
    if verdicts:
        table.add_column("last check")
    table.add_column("latency", justify="right")
    table.add_column("detail", overflow="fold")

    for name in names:
        for ep in registry.endpoints(name):
            result = by_endpoint.get((name, ep.address))
            probe = _probe_cell(result)
            health = _health_cell(ep.status) if verdicts else probe
            latency = "-" if result is None else f"{result.latency * 1000:.1f} ms"
            detail = "" if result is None or result.error is None else result.error
            cells = [name, ep.address, health]
            if verdicts:
                cells.append(probe)
            table.add_row(*cells, latency, detail)

    return table


def _probe_cell(result: CheckResult | None) -> str:
    if result is None:
        return "[dim]pending[/dim]"
    return "[green]up[/green]" if result.passed else "[bold red]down[/bold red]"


def _health_cell(status: EndpointStatus) -> str:
    if status is EndpointStatus.HEALTHY:
        return "[green]healthy[/green]"
    return f"[bold red]{status.value}[/bold red]"
