"""
Breaker state in an SQLite file, shared by every process on one host.

Each operation is one ``BEGIN IMMEDIATE`` transaction: read the breaker's
row, run the transition of `BreakerMachine` on it, write it back. SQLite's
write lock makes the read-modify-write atomic across processes, and the
busy timeout makes concurrent writers queue rather than fail. The file uses
WAL mode with ``synchronous=NORMAL``: losing the last instant of breaker
state on a power cut is acceptable for state that heals itself.

Times are the wall clock of the host (`clock.time()`), which every process
on the host shares. A row that cannot be read is reported as `StoreError`
and never overwritten, except by an operator's `force` (a reset).

Table (created on first use)::

    recovery_breaker(name TEXT PRIMARY KEY, state TEXT, generation INTEGER,
                     open_until REAL, updated REAL, data TEXT)

`data` holds the whole machine as JSON; the other columns repeat the parts
a person would query by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .._sqlite import connect
from .._validation import require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import StoreError, StoreUnavailableError
from ..policies.breaker_core import (
    Admission,
    BreakerConfig,
    BreakerMachine,
    BreakerMetrics,
    BreakerState,
    Outcome,
    StateView,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS recovery_breaker (
    name       TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    generation INTEGER NOT NULL,
    open_until REAL NOT NULL,
    updated    REAL NOT NULL,
    data       TEXT NOT NULL
)
"""

_UPSERT = """
INSERT INTO recovery_breaker (name, state, generation, open_until, updated, data)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    state = excluded.state,
    generation = excluded.generation,
    open_until = excluded.open_until,
    updated = excluded.updated,
    data = excluded.data
"""


class SqliteStore:
    """
    Breaker state in the SQLite file at *path* (created if missing).

    *busy_timeout* is how long an operation waits for another process's
    write lock before the store counts as unavailable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = require_positive("busy_timeout", busy_timeout)
        self._clock = clock
        self._local = threading.local()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def describe(self) -> str:
        """
        Return "sqlite:" and the file's path.
        """
        return f"sqlite:{self.path}"

    # -- connections --------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not
        # cross threads, and a forked child must not reuse its parent's.
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        if connection is not None and local.pid == os.getpid():
            return connection
        if self._closed:
            raise StoreError(f"{self.describe()} is closed")

        connection = self._open()
        local.connection, local.pid = connection, os.getpid()
        return connection

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = connect(
                self.path, busy_timeout=self._busy_timeout, synchronous="NORMAL"
            )
            connection.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open {self.describe()}: {exc}"
            ) from exc
        return connection

    def close(self) -> None:
        """
        Close this thread's connection; later use raises `StoreError`.
        """
        self._closed = True
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # -- the transaction around every operation ----------------------------

    def _transact(
        self,
        name: str,
        config: BreakerConfig,
        step: Callable[[BreakerMachine, float], T],
        *,
        overwrite_unreadable: bool = False,
    ) -> T:
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.describe()}: {exc}") from exc

        try:
            now = self._clock.time()
            row = connection.execute(
                "SELECT data FROM recovery_breaker WHERE name = ?", (name,)
            ).fetchone()
            machine = self._machine(name, config, row, now, overwrite_unreadable)
            result = step(machine, now)
            connection.execute(
                _UPSERT,
                (
                    name,
                    machine.state.value,
                    machine.generation,
                    machine.open_until,
                    now,
                    json.dumps(machine.to_data(), separators=(",", ":")),
                ),
            )
            connection.execute("COMMIT")
        except BaseException as exc:
            self._rollback(connection)
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreUnavailableError(f"{self.describe()}: {exc}") from exc
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.describe()}: {exc}") from exc
            raise
        return result

    @staticmethod
    def _rollback(connection: sqlite3.Connection) -> None:
        # SQLite may have rolled back already (on some errors it does).
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")

    def _machine(
        self,
        name: str,
        config: BreakerConfig,
        row: tuple[str] | None,
        now: float,
        overwrite_unreadable: bool,
    ) -> BreakerMachine:
        if row is None:
            return BreakerMachine(config, now)
        try:
            return BreakerMachine.from_data(config, json.loads(row[0]), now)
        except (ValueError, TypeError, KeyError, AssertionError) as exc:
            if overwrite_unreadable:
                return BreakerMachine(config, now)
            raise StoreError(
                f"breaker {name!r} in {self.describe()} holds data that cannot be "
                f"read ({type(exc).__name__}: {exc}); reset it to replace it"
            ) from exc

    # -- the breaker store operations ---------------------------------------

    def acquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Decide whether a call may run; see `BreakerStore.acquire`.
        """

        def step(machine: BreakerMachine, now: float) -> Admission:
            machine.rejected += rejected
            return machine.acquire(now, permit)

        return self._transact(name, config, step)

    def record(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Count an outcome and apply it; see `BreakerStore.record`.
        """

        def step(machine: BreakerMachine, now: float) -> StateView:
            machine.rejected += rejected
            return machine.record(now, generation, permit, outcome, duration)

        return self._transact(name, config, step)

    def force(self, name: str, config: BreakerConfig, state: BreakerState) -> StateView:
        """
        Set an operator state; replaces a row that cannot be read.
        """
        return self._transact(
            name,
            config,
            lambda machine, now: machine.force(now, state),
            overwrite_unreadable=True,
        )

    def reset_metrics(self, name: str, config: BreakerConfig) -> None:
        """
        Set the counters of *name* to zero.
        """
        self._transact(name, config, lambda machine, now: machine.reset_metrics())

    def metrics(
        self, name: str, config: BreakerConfig | None = None
    ) -> BreakerMetrics | None:
        """
        Return the state and counters of *name*, or None if unknown.

        Without *config*, the window totals read as zero (the window's shape
        is part of the settings, not of the stored state).
        """
        try:
            row = (
                self._connection()
                .execute("SELECT data FROM recovery_breaker WHERE name = ?", (name,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.describe()}: {exc}") from exc
        if row is None:
            return None

        now = self._clock.time()
        machine = self._machine(name, config or BreakerConfig(), row, now, False)
        return machine.metrics(name, now)

    def names(self) -> list[str]:
        """
        Return the names of the breakers in the file, sorted.
        """
        try:
            rows = (
                self._connection()
                .execute("SELECT name FROM recovery_breaker ORDER BY name")
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.describe()}: {exc}") from exc
        return [str(row[0]) for row in rows]

    async def aacquire(
        self, name: str, config: BreakerConfig, permit: str, *, rejected: int = 0
    ) -> Admission:
        """
        Async twin of `acquire`; runs inline, blocking the loop for the
        transaction (tens of microseconds, or up to `busy_timeout` while
        another process holds the write lock).
        """
        return self.acquire(name, config, permit, rejected=rejected)

    async def arecord(
        self,
        name: str,
        config: BreakerConfig,
        generation: int,
        permit: str | None,
        outcome: Outcome,
        duration: float,
        *,
        rejected: int = 0,
    ) -> StateView:
        """
        Async twin of `record`; runs inline, like `aacquire`.
        """
        return self.record(
            name, config, generation, permit, outcome, duration, rejected=rejected
        )
