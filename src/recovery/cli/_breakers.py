"""
The circuit breakers of the command line, remembered between runs.

`recovery run --breaker NAME` guards a command with the breaker NAME, whose
state lives in an SQLite file (one host; the default) or in Redis (many
hosts), so that separate runs of the command share one breaker. `recovery
status` reads the same place.

The defaults suit commands run from cron or scripts: three failed runs in a
row open the breaker for a minute, doubling on each failed trial up to ten
minutes; one successful trial run closes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigurationError
from ..events import Listener
from ..policies.breaker import CircuitBreaker
from ..stores.base import BreakerStore

__all__ = ["default_state_path", "open_cli_breaker", "open_cli_store"]


def default_state_path() -> Path:
    """
    Return $XDG_STATE_HOME/recovery/state.db, or ~/.local/state/recovery/state.db.
    """
    base = os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base else Path.home() / ".local" / "state"
    return root / "recovery" / "state.db"


def open_cli_store(*, state: str | None, redis: str | None) -> BreakerStore:
    """
    Return the store named by --state PATH or --redis URL (the default file).

    Raises `ConfigurationError` when both are given, and `ImportError`
    (naming the extra) when --redis is used without the redis client.
    """
    if state and redis:
        raise ConfigurationError(
            "give --state PATH or --redis URL, not both: a breaker lives in one place"
        )
    if redis:
        from ..stores.redis import RedisStore

        return RedisStore(redis)

    from ..stores.sqlite import SqliteStore

    return SqliteStore(Path(state) if state else default_state_path())


def open_cli_breaker(
    name: str,
    *,
    state: str | None,
    redis: str | None,
    failure_threshold: int = 3,
    reset_timeout: float = 60.0,
    reset_timeout_multiplier: float = 2.0,
    reset_timeout_max: float = 600.0,
    half_open_timeout: float = 600.0,
    listeners: Iterable[Listener] = (),
) -> CircuitBreaker:
    """
    Return the breaker *name*, stored in SQLite (*state* or the default
    file) or in Redis (*redis*, a URL).

    A trial run holds its permit for `half_open_timeout` seconds at most, so
    a run that was killed cannot keep the breaker half-open for longer.
    """
    store = open_cli_store(state=state, redis=redis)
    keys = getattr(store, "keys", None)
    if keys is not None:
        keys(name)  # a Redis store refuses names it cannot hash-tag

    return CircuitBreaker(
        name,
        failure_threshold=failure_threshold,
        reset_timeout=reset_timeout,
        reset_timeout_multiplier=reset_timeout_multiplier,
        reset_timeout_max=reset_timeout_max,
        half_open_timeout=half_open_timeout,
        store=store,
        listeners=listeners,
    )
