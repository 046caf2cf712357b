"""
`recovery dashboard`: a live page of breakers, services, sagas and backups.

    recovery dashboard [--state PATH | --redis URL] [--prefix PREFIX]
                       [--journal PATH_OR_URL] [--repo PATH]
                       [--registry-redis URL ...] [--host 127.0.0.1]
                       [--port 0] [--interval 1] [--open] [--allow-remote]

Serves a page that refreshes itself every `--interval` seconds, and its JSON
at /api/snapshot, on a loopback address. It prints the page's URL and runs
until interrupted (Ctrl-C). It only reads: no breaker, saga or repository
is changed. Exit status: 0 after an interrupt, 2 for bad options or a
source that does not exist.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ._breakers import default_state_path
from ._watch import refresh_seconds

if TYPE_CHECKING:
    from ..dashboard.collect import Collector

__all__ = ["add_parser", "add_source_arguments", "collector_from_args"]

# Ports are 16-bit; 0 asks the system for any free one.
_MAX_PORT = 65535


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """
    Add --state/--redis, --prefix, --journal, --repo and --registry-redis.
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--state",
        metavar="PATH",
        help="the SQLite file that keeps breaker (and limiter) state "
        f"(default: {default_state_path()})",
    )
    where.add_argument(
        "--redis", metavar="URL", help="read breaker and limiter state from Redis"
    )
    parser.add_argument(
        "--prefix",
        default="recovery",
        help="the key prefix in Redis (default: recovery)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="a saga journal: an SQLite file or a postgresql:// URL",
    )
    parser.add_argument("--repo", metavar="PATH", help="a backup repository")
    parser.add_argument(
        "--registry-redis",
        action="append",
        default=[],
        metavar="URL",
        help="a Redis holding a shared service registry (repeatable)",
    )


def collector_from_args(args: argparse.Namespace) -> Collector:
    """
    Return a `Collector` over the sources the arguments name; breakers come
    from the command line's state file unless --state or --redis says else.

    A default state file that does not exist yet is left alone (opening it
    would create it) and no breakers are shown; a missing --state is refused.
    """
    from ..dashboard.collect import open_collector

    state = args.state
    if state is None and args.redis is None:
        state = default_state_path()
        if not state.exists():
            state = None
    return open_collector(
        state=state,
        redis=args.redis,
        prefix=getattr(args, "prefix", "recovery"),
        journal=args.journal,
        repo=args.repo,
        registry_redis=args.registry_redis,
    )


def add_parser(subparsers: Any) -> None:
    """
    Register the `dashboard` sub-command.
    """
    parser = subparsers.add_parser(
        "dashboard",
        help="serve a live page of breakers, services, sagas and backups",
        description="Serve a page on a loopback address that shows, live, the "
        "circuit breakers and limiters of a store, the services of shared "
        "registries, the sagas of a journal and the snapshots of a backup "
        "repository.",
    )
    add_source_arguments(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1; loopback only "
        "unless --allow-remote)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="the port, 0 to 65535 (default: 0, any free port)",
    )
    parser.add_argument(
        "--interval",
        type=refresh_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two refreshes (default: 1)",
    )
    parser.add_argument(
        "--open", action="store_true", help="open the page in a web browser"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host: anyone who reaches it sees the state",
    )
    parser.set_defaults(handler=_handle)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"must be a port number from 0 to {_MAX_PORT}, got {text!r}"
        )
    return value


def _handle(args: argparse.Namespace) -> int:
    from ..dashboard.server import DashboardServer, is_loopback

    if not is_loopback(args.host) and not args.allow_remote:
        sys.stderr.write(
            f"recovery dashboard: --host {args.host} is not a loopback address; "
            "the page shows internal state, so add --allow-remote to serve it "
            "there\n"
        )
        return 2
    try:
        collector = collector_from_args(args)
        server = DashboardServer(
            collector,
            host=args.host,
            port=args.port,
            interval=args.interval,
            allow_remote=args.allow_remote,
        )
    except (ConfigurationError, ImportError, OSError) as exc:
        sys.stderr.write(f"recovery dashboard: {exc}\n")
        return 2

    server.start()
    sys.stdout.write(f"recovery dashboard: serving on {server.url}\n")
    sys.stdout.flush()
    if args.open:
        webbrowser.open(server.url)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
