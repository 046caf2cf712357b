"""
Helpers shared by the dashboard tests: breakers with state on disk.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from recovery.clock import SYSTEM_CLOCK, Clock
from recovery.policies.breaker import CircuitBreaker
from recovery.stores.base import BreakerStore
from recovery.stores.sqlite import SqliteStore

__all__ = ["calls", "sqlite_breaker"]


def sqlite_breaker(
    path: Path,
    name: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    failure_threshold: int = 3,
    reset_timeout: float = 60.0,
) -> CircuitBreaker:
    """
    Return the breaker *name* kept in the SQLite file *path*.
    """
    return breaker_in(
        SqliteStore(path, clock=clock),
        name,
        clock=clock,
        failure_threshold=failure_threshold,
        reset_timeout=reset_timeout,
    )


def breaker_in(
    store: BreakerStore,
    name: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    failure_threshold: int = 3,
    reset_timeout: float = 60.0,
) -> CircuitBreaker:
    """
    Return the breaker *name* kept in *store*.
    """
    return CircuitBreaker(
        name,
        failure_threshold=failure_threshold,
        reset_timeout=reset_timeout,
        store=store,
        clock=clock,
    )


def calls(breaker: CircuitBreaker, *, ok: int = 0, failed: int = 0) -> None:
    """
    Run *ok* successful, then *failed* failing calls through *breaker*.
    """
    for _ in range(ok):
        breaker.call(lambda: None)
    for _ in range(failed):
        with contextlib.suppress(OSError):
            breaker.call(_fail)


def _fail() -> None:
    raise OSError("the dependency is down")
