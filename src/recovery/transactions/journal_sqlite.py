"""
A saga journal in an SQLite file: the default on disk, for one host.

Settings chosen for durability: WAL mode, `synchronous=FULL` (the WAL is
synced at every commit, so a committed record survives power loss),
`foreign_keys=ON` and a busy timeout. Every write is one `BEGIN IMMEDIATE`
transaction: a deferred transaction that reads before writing cannot wait
for the write lock and fails at once with "database is locked" despite the
busy timeout (python/cpython#124510).

Each thread gets its own connection. The file must be on a local disk: WAL's
shared memory does not work across hosts or on network file systems.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager

from .._sqlite import connect
from .._validation import require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from .errors import (
    JournalCorruptError,
    JournalError,
    SagaExistsError,
    SagaNotFoundError,
    SagaOwnershipLostError,
)
from .journal import (
    IN_PROGRESS_STATUSES,
    Claim,
    ClaimCheck,
    SagaHistory,
    header_from_row,
    history_from_rows,
    record_row,
    vet,
)
from .ownership import check_seizable
from .records import JournalRecord, RecordKind, SagaHeader, SagaStatus

__all__ = ["SqliteJournal"]

# The layout version stored in the file; a journal written with another
# layout is refused rather than misread.
_LAYOUT = "1"

_HEADER_COLUMNS = (
    "saga_id, saga_type, definition_hash, status, owner, fence, lease_until, "
    "last_seq, created_at, updated_at"
)
_RECORD_COLUMNS = "seq, kind, step, step_name, attempt, key, payload, owner, fence, at"


def _schema(p: str) -> str:
    statuses = ", ".join(f"'{s.value}'" for s in SagaStatus)
    kinds = ", ".join(f"'{k.value}'" for k in RecordKind)
    return f"""
CREATE TABLE IF NOT EXISTS {p}journal_meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}saga (
  saga_id         TEXT PRIMARY KEY,
  saga_type       TEXT NOT NULL,
  definition_hash TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ({statuses})),
  owner           TEXT,
  fence           INTEGER NOT NULL,
  lease_until     REAL NOT NULL,
  last_seq        INTEGER NOT NULL,
  created_at      REAL NOT NULL,
  updated_at      REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {p}saga_by_status ON {p}saga (status, saga_type);
CREATE TABLE IF NOT EXISTS {p}saga_record (
  saga_id   TEXT NOT NULL REFERENCES {p}saga (saga_id),
  seq       INTEGER NOT NULL,
  kind      TEXT NOT NULL CHECK (kind IN ({kinds})),
  step      INTEGER,
  step_name TEXT,
  attempt   INTEGER NOT NULL,
  key       TEXT,
  payload   TEXT,
  owner     TEXT NOT NULL,
  fence     INTEGER NOT NULL,
  at        REAL NOT NULL,
  PRIMARY KEY (saga_id, seq)
) WITHOUT ROWID;
"""


class SqliteJournal:
    """
    A journal in the SQLite file at *path*, shared by processes on one host.

    Args:
        path: the database file (created if missing).
        table_prefix: prefix of the three tables, ``recovery_`` by default.
        busy_timeout: seconds a writer waits for another's lock.
        clock: leases are measured on `clock.time()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table_prefix: str = "recovery_",
        busy_timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not table_prefix.replace("_", "").isalnum() or not table_prefix.isascii():
            raise ConfigurationError(
                f"table_prefix must hold only ASCII letters, digits and '_', "
                f"got {table_prefix!r}"
            )
        self._path = os.fspath(path)
        self._p = table_prefix
        self._busy_ms = int(require_positive("busy_timeout", busy_timeout) * 1000)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._shared_lock = threading.Lock()
        self._shared_conn: sqlite3.Connection | None = None
        self._setup()

    @property
    def where(self) -> str:
        """
        The database file's path.
        """
        return self._path

    @property
    def blocking(self) -> bool:
        """
        True: every write waits for the disk.
        """
        return True

    def __repr__(self) -> str:
        return f"SqliteJournal({self._path!r})"

    def _q(self, template: str, **parts: str) -> str:
        # Only checked text reaches the SQL: the prefix holds letters, digits
        # and '_' (checked in __init__); the other parts are fixed column
        # lists, status filters and runs of '?' marks.
        sql = (
            template.replace("{p}", self._p)
            .replace("{header}", _HEADER_COLUMNS)
            .replace("{record}", _RECORD_COLUMNS)
        )
        for name, value in parts.items():
            sql = sql.replace("{" + name + "}", value)
        return sql

    # -- connections and transactions -------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(
                self._path,
                busy_timeout=self._busy_ms / 1000,
                synchronous="FULL",
                check_same_thread=False,
            )
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    @contextmanager
    def _shared(self) -> Iterator[sqlite3.Connection]:
        # Lease renewals come from short-lived heartbeat threads; one shared
        # connection (under a lock) serves them all, rather than one left
        # open per thread.
        with self._shared_lock:
            if self._shared_conn is None:
                self._shared_conn = self._open()
            yield self._shared_conn

    def _damaged(self, exc: sqlite3.DatabaseError) -> JournalError:
        if isinstance(exc, sqlite3.OperationalError):
            return JournalError(f"journal {self._path}: {exc}")
        return JournalCorruptError(
            f"journal {self._path} is not a readable SQLite database: {exc}; "
            "it was left untouched",
            saga_id=None,
            seq=None,
            where=self._path,
        )

    @contextmanager
    def _write(
        self, conn: sqlite3.Connection | None = None
    ) -> Iterator[sqlite3.Connection]:
        conn = self._connect() if conn is None else conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.execute("ROLLBACK")
            raise self._damaged(exc) from exc

    def _read(
        self, sql: str, params: Sequence[object] = ()
    ) -> list[tuple[object, ...]]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc

    def _setup(self) -> None:
        with self._write() as conn:
            for statement in _schema(self._p).split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute(
                self._q("SELECT value FROM {p}journal_meta WHERE name = 'layout'")
            ).fetchone()
            if row is None:
                conn.execute(
                    self._q(
                        "INSERT INTO {p}journal_meta (name, value) VALUES ('layout', ?)"
                    ),
                    (_LAYOUT,),
                )
            elif row[0] != _LAYOUT:
                raise JournalError(
                    f"journal {self._path} has layout {row[0]!r}; this version of "
                    f"recovery reads layout {_LAYOUT!r} only"
                )

    # -- the contract ------------------------------------------------------

    def create(
        self,
        record: JournalRecord,
        *,
        saga_type: str,
        definition_hash: str,
        lease: float,
    ) -> None:
        """
        Store a new saga and its first record.
        """
        now = self._clock.time()
        with self._write() as conn:
            try:
                conn.execute(
                    self._q(
                        "INSERT INTO {p}saga ({header}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        record.saga_id,
                        saga_type,
                        definition_hash,
                        SagaStatus.RUNNING.value,
                        record.owner,
                        record.fence,
                        now + lease,
                        record.seq,
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise SagaExistsError(
                    f"saga {record.saga_id!r} already exists in {self._path}"
                ) from None
            self._insert(conn, [record])

    def append(
        self,
        saga_id: str,
        fence: int,
        records: Sequence[JournalRecord],
        *,
        status: SagaStatus,
        lease: float,
    ) -> None:
        """
        Append records and set the status, if *fence* still owns the saga.
        """
        now = self._clock.time()
        with self._write() as conn:
            updated = conn.execute(
                self._q(
                    "UPDATE {p}saga SET status = ?, last_seq = last_seq + ?, "
                    "lease_until = ?, updated_at = ? WHERE saga_id = ? AND fence = ?"
                ),
                (
                    status.value,
                    len(records),
                    now + lease if lease > 0 else 0.0,
                    now,
                    saga_id,
                    fence,
                ),
            ).rowcount
            if updated != 1:
                raise self._lost(conn, saga_id, fence)
            self._insert(conn, records)

    def _insert(
        self, conn: sqlite3.Connection, records: Sequence[JournalRecord]
    ) -> None:
        conn.executemany(
            self._q(
                "INSERT INTO {p}saga_record (saga_id, {record}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [(r.saga_id, *record_row(r)) for r in records],
        )

    def _lost(self, conn: sqlite3.Connection, saga_id: str, fence: int) -> JournalError:
        row = conn.execute(
            self._q("SELECT owner, fence FROM {p}saga WHERE saga_id = ?"), (saga_id,)
        ).fetchone()
        if row is None:
            return SagaNotFoundError(f"no saga {saga_id!r} in {self._path}")
        return SagaOwnershipLostError(
            f"saga {saga_id!r} was claimed by {row[0]!r} (fence {row[1]}, ours {fence})"
        )

    def release(self, saga_id: str, fence: int) -> None:
        """
        Drop the lease if *fence* still holds it.
        """
        with self._write() as conn:
            conn.execute(
                self._q(
                    "UPDATE {p}saga SET lease_until = 0 WHERE saga_id = ? AND fence = ?"
                ),
                (saga_id, fence),
            )

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        """
        Extend the lease if *fence* still holds it.
        """
        now = self._clock.time()
        with self._shared() as shared, self._write(shared) as conn:
            updated = conn.execute(
                self._q(
                    "UPDATE {p}saga SET lease_until = ? "
                    "WHERE saga_id = ? AND fence = ? AND lease_until > 0"
                ),
                (now + lease, saga_id, fence),
            ).rowcount
        return updated == 1

    def load(self, saga_id: str) -> SagaHistory:
        """
        Return the saga's header and records, checked for damage.
        """
        conn = self._connect()
        try:
            # One read transaction, so header and records agree.
            conn.execute("BEGIN")
            try:
                return self._history(conn, saga_id)
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc

    def _history(self, conn: sqlite3.Connection, saga_id: str) -> SagaHistory:
        header = conn.execute(
            self._q("SELECT {header} FROM {p}saga WHERE saga_id = ?"), (saga_id,)
        ).fetchone()
        if header is None:
            raise SagaNotFoundError(f"no saga {saga_id!r} in {self._path}")
        rows = conn.execute(
            self._q(
                "SELECT {record} FROM {p}saga_record WHERE saga_id = ? ORDER BY seq"
            ),
            (saga_id,),
        ).fetchall()

        return history_from_rows(header, rows, self._path)

    def sagas(
        self, statuses: Collection[SagaStatus] | None = None, *, limit: int = 1000
    ) -> list[SagaHeader]:
        """
        Return headers, most recently updated first.
        """
        where, params = self._status_filter(statuses)
        rows = self._read(
            self._q(
                "SELECT {header} FROM {p}saga {where} "
                "ORDER BY updated_at DESC, saga_id DESC LIMIT ?",
                where=where,
            ),
            (*params, limit),
        )
        return [header_from_row(row, self._path) for row in rows]

    @staticmethod
    def _status_filter(
        statuses: Collection[SagaStatus] | None,
    ) -> tuple[str, tuple[str, ...]]:
        if statuses is None:
            return "", ()
        values = tuple(s.value for s in statuses)
        marks = ", ".join("?" * len(values)) or "NULL"
        return f"WHERE status IN ({marks})", values

    def claim(
        self,
        owner: str,
        *,
        lease: float,
        limit: int,
        is_dead: Callable[[str], bool],
        saga_types: Collection[str] | None = None,
        check: ClaimCheck | None = None,
        exclude: Collection[str] = (),
    ) -> list[Claim]:
        """
        Claim in-progress sagas whose lease expired or whose owner is dead.
        """
        now = self._clock.time()
        where, params = self._status_filter(IN_PROGRESS_STATUSES)
        with self._write() as conn:
            live_owners = conn.execute(
                self._q(
                    "SELECT DISTINCT owner FROM {p}saga {where} "
                    "AND lease_until > ? AND owner IS NOT NULL",
                    where=where,
                ),
                (*params, now),
            ).fetchall()
            dead = [o for (o,) in live_owners if is_dead(o)]
            marks = ", ".join("?" * len(dead)) or "NULL"
            types = () if saga_types is None else tuple(saga_types)
            type_filter = (
                ""
                if saga_types is None
                else f"AND saga_type IN ({', '.join('?' * len(types)) or 'NULL'}) "
            )
            skipped = tuple(exclude)
            # Not "NOT IN (NULL)" when there is nothing to skip: that is
            # never true, and would claim nothing.
            skip_filter = (
                f"AND saga_id NOT IN ({', '.join('?' * len(skipped))}) "
                if skipped
                else ""
            )
            rows = conn.execute(
                self._q(
                    "SELECT saga_id, saga_type, fence, owner FROM {p}saga {where} "
                    "AND (lease_until <= ? OR owner IN ({marks})) {types}{skipped}"
                    "ORDER BY updated_at LIMIT ?",
                    where=where,
                    marks=marks,
                    types=type_filter,
                    skipped=skip_filter,
                ),
                (*params, now, *dead, *types, *skipped, limit),
            ).fetchall()
            claims = []
            for saga_id, saga_type, fence, previous in rows:
                if not vet(
                    check, saga_id, functools.partial(self._history, conn, saga_id)
                ):
                    continue
                conn.execute(
                    self._q(
                        "UPDATE {p}saga SET owner = ?, fence = ?, lease_until = ? "
                        "WHERE saga_id = ?"
                    ),
                    (owner, fence + 1, now + lease, saga_id),
                )
                claims.append(Claim(saga_id, saga_type, owner, fence + 1, previous))

        return claims

    def seize(
        self,
        saga_id: str,
        owner: str,
        *,
        lease: float,
        statuses: Collection[SagaStatus],
    ) -> Claim:
        """
        Claim one saga for an operator, whatever its lease.
        """
        now = self._clock.time()
        with self._write() as conn:
            row = conn.execute(
                self._q("SELECT {header} FROM {p}saga WHERE saga_id = ?"),
                (saga_id,),
            ).fetchone()
            if row is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in {self._path}")
            header = header_from_row(row, self._path)
            check_seizable(saga_id, header.status, statuses)
            conn.execute(
                self._q(
                    "UPDATE {p}saga SET owner = ?, fence = ?, lease_until = ? "
                    "WHERE saga_id = ?"
                ),
                (owner, header.fence + 1, now + lease, saga_id),
            )

        return Claim(saga_id, header.saga_type, owner, header.fence + 1, header.owner)

    def close(self) -> None:
        """
        Close every thread's connection.
        """
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
        self._shared_conn = None
