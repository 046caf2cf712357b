"""
A saga journal in PostgreSQL, shared by workers on many hosts.

Needs the postgres extra (psycopg 3), imported when a journal is opened.
Leases and timestamps come from the database's clock, never the hosts'.
Claims select abandoned sagas with ``FOR UPDATE SKIP LOCKED`` and commit at
once, so two workers never take the same saga and no transaction stays open
while a step runs; the fencing token then guards every later write.

Payloads are stored as text, verbatim (not JSONB, which would reformat
them), and times as epoch seconds in double precision, so records read back
exactly as written.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError, StoreUnavailableError
from .errors import (
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

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresJournal"]

_LAYOUT = "1"
_HEADER_COLUMNS = (
    "saga_id, saga_type, definition_hash, status, owner, fence, lease_until, "
    "last_seq, created_at, updated_at"
)
_RECORD_COLUMNS = "seq, kind, step, step_name, attempt, key, payload, owner, fence, at"
_NOW = "extract(epoch from clock_timestamp())::double precision"
# Serialises the CREATE TABLE IF NOT EXISTS of concurrent first openers,
# which can otherwise collide on the catalog's unique indexes.
_SETUP_LOCK = 0x5245434F  # "RECO"


def _schema(t: str, p: str) -> list[str]:
    statuses = ", ".join(f"'{s.value}'" for s in SagaStatus)
    kinds = ", ".join(f"'{k.value}'" for k in RecordKind)
    in_progress = ", ".join(f"'{s.value}'" for s in IN_PROGRESS_STATUSES)
    return [
        f"""CREATE TABLE IF NOT EXISTS {t}journal_meta (
              name TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {t}saga (
              saga_id         TEXT PRIMARY KEY,
              saga_type       TEXT NOT NULL,
              definition_hash TEXT NOT NULL,
              status          TEXT NOT NULL CHECK (status IN ({statuses})),
              owner           TEXT,
              fence           BIGINT NOT NULL,
              lease_until     DOUBLE PRECISION NOT NULL,
              last_seq        BIGINT NOT NULL,
              created_at      DOUBLE PRECISION NOT NULL,
              updated_at      DOUBLE PRECISION NOT NULL)""",
        f"""CREATE INDEX IF NOT EXISTS {p}saga_in_progress ON {t}saga (saga_type)
              WHERE status IN ({in_progress})""",
        f"""CREATE TABLE IF NOT EXISTS {t}saga_record (
              saga_id   TEXT NOT NULL REFERENCES {t}saga (saga_id),
              seq       BIGINT NOT NULL,
              kind      TEXT NOT NULL CHECK (kind IN ({kinds})),
              step      INTEGER,
              step_name TEXT,
              attempt   INTEGER NOT NULL,
              key       TEXT,
              payload   TEXT,
              owner     TEXT NOT NULL,
              fence     BIGINT NOT NULL,
              at        DOUBLE PRECISION NOT NULL,
              PRIMARY KEY (saga_id, seq))""",
    ]


def _identifier(name: str, value: str) -> str:
    if not value or not value.replace("_", "").isalnum() or not value.isascii():
        raise ConfigurationError(
            f"{name} must hold only ASCII letters, digits and '_', got {value!r}"
        )
    return value


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# The SQL types of the record columns, in `record_row` order.
_RECORD_TYPES = [
    "bigint",
    "text",
    "integer",
    "text",
    "integer",
    "text",
    "text",
    "text",
    "bigint",
    "double precision",
]
_ROW = "(" + ", ".join(f"%s::{t}" for t in _RECORD_TYPES) + ")"


def _values(records: Sequence[JournalRecord]) -> tuple[str, list[object]]:
    """
    Return a VALUES list of typed placeholders for *records*, and its params.
    """
    params: list[object] = []
    for record in records:
        params.extend(record_row(record))
    return ", ".join([_ROW] * len(records)), params


class PostgresJournal:
    """
    A journal in PostgreSQL at *dsn* (a ``postgresql://`` URL or conninfo).

    Args:
        dsn: where to connect.
        schema: the schema holding the tables (created if missing); the
            connection's search path by default.
        table_prefix: prefix of the table names, ``recovery_`` by default.
        connect_timeout: seconds to wait for a connection.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        table_prefix: str = "recovery_",
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the test extra installs it
            raise ImportError(
                "PostgresJournal needs the postgres extra: "
                "pip install 'recovery[postgres]'"
            ) from exc

        self._psycopg = psycopg
        self._dsn = dsn
        self._where = _redact(dsn)
        self._p = _identifier("table_prefix", table_prefix)
        self._schema = None if schema is None else _identifier("schema", schema)
        self._t = self._p if schema is None else f'"{schema}".{self._p}'
        self._timeout = max(1, int(connect_timeout))
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._setup()

    @property
    def where(self) -> str:
        """
        The URL, without its password.
        """
        return self._where

    @property
    def blocking(self) -> bool:
        """
        True: every call waits for the server.
        """
        return True

    def __repr__(self) -> str:
        return f"PostgresJournal({self._where!r}, schema={self._schema!r})"

    def _q(self, template: str, **parts: str) -> str:
        # Only checked text reaches the SQL: schema and prefix hold letters,
        # digits and '_' (checked in __init__); the other parts are fixed
        # column lists.
        sql = (
            template.replace("{t}", self._t)
            .replace("{header}", _HEADER_COLUMNS)
            .replace("{record}", _RECORD_COLUMNS)
            .replace("{now}", _NOW)
        )
        for name, value in parts.items():
            sql = sql.replace("{" + name + "}", value)
        return sql

    # -- connections -----------------------------------------------------------

    @contextmanager
    def _transaction(
        self, *, explicit: bool = True
    ) -> Iterator[psycopg.Cursor[tuple[object, ...]]]:
        psycopg = self._psycopg
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self._dsn, autocommit=True, connect_timeout=self._timeout
                    )
                conn = self._conn
                if not explicit:
                    with conn.cursor() as cursor:
                        yield cursor
                else:
                    with conn.transaction(), conn.cursor() as cursor:
                        yield cursor
            except psycopg.OperationalError as exc:
                if self._conn is not None and self._conn.closed:
                    self._conn = None
                raise StoreUnavailableError(
                    f"journal {self._where} is unreachable: {exc}"
                ) from exc
            except psycopg.DatabaseError as exc:
                raise JournalError(f"journal {self._where}: {exc}") from exc

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Cursor[tuple[object, ...]]]:
        # Autocommit: a single statement is its own transaction, which saves
        # the BEGIN and COMMIT round trips of `_transaction`.
        with self._transaction(explicit=False) as cur:
            yield cur

    def _setup(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            if self._schema is not None:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            for statement in _schema(self._t, self._p):
                cur.execute(statement)
            cur.execute(
                self._q("SELECT value FROM {t}journal_meta WHERE name = 'layout'")
            )
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    self._q("INSERT INTO {t}journal_meta VALUES ('layout', %s)"),
                    (_LAYOUT,),
                )
            elif row[0] != _LAYOUT:
                raise JournalError(
                    f"journal {self._where} has layout {row[0]!r}; this version of "
                    f"recovery reads layout {_LAYOUT!r} only"
                )

    def _exec(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        template: str,
        params: Sequence[object] = (),
        **parts: str,
    ) -> psycopg.Cursor[tuple[object, ...]]:
        return cur.execute(self._q(template, **parts), params)

    # -- the contract ----------------------------------------------------------

    def create(
        self,
        record: JournalRecord,
        *,
        saga_type: str,
        definition_hash: str,
        lease: float,
    ) -> None:
        """
        Store a new saga and its first record, in one statement.
        """
        values, params = _values([record])
        with self._statement() as cur:
            self._exec(
                cur,
                "WITH created AS ("
                " INSERT INTO {t}saga ({header})"
                " SELECT %s, %s, %s, %s, %s, %s, n + %s, %s, n, n"
                " FROM (SELECT {now} AS n) AS clock"
                " ON CONFLICT (saga_id) DO NOTHING RETURNING saga_id)"
                " INSERT INTO {t}saga_record (saga_id, {record})"
                " SELECT created.saga_id, v.* FROM created, (VALUES {values}) AS v",
                (
                    record.saga_id,
                    saga_type,
                    definition_hash,
                    SagaStatus.RUNNING.value,
                    record.owner,
                    record.fence,
                    lease,
                    record.seq,
                    *params,
                ),
                values=values,
            )
            if cur.rowcount != 1:
                raise SagaExistsError(
                    f"saga {record.saga_id!r} already exists in {self._where}"
                )

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

        One statement, so one round trip and one commit: the header update
        is fenced, and the records are inserted only if it matched.
        """
        values, params = _values(records)
        with self._statement() as cur:
            self._exec(
                cur,
                "WITH owned AS ("
                " UPDATE {t}saga SET status = %s, last_seq = last_seq + %s,"
                " lease_until = CASE WHEN %s > 0 THEN {now} + %s ELSE 0 END,"
                " updated_at = {now} WHERE saga_id = %s AND fence = %s"
                " RETURNING saga_id)"
                " INSERT INTO {t}saga_record (saga_id, {record})"
                " SELECT owned.saga_id, v.* FROM owned, (VALUES {values}) AS v",
                (status.value, len(records), lease, lease, saga_id, fence, *params),
                values=values,
            )
            if cur.rowcount != len(records):
                raise self._lost(cur, saga_id, fence)

    def _lost(
        self, cur: psycopg.Cursor[tuple[object, ...]], saga_id: str, fence: int
    ) -> JournalError:
        row = self._exec(
            cur, "SELECT owner, fence FROM {t}saga WHERE saga_id = %s", (saga_id,)
        ).fetchone()
        if row is None:
            return SagaNotFoundError(f"no saga {saga_id!r} in {self._where}")
        return SagaOwnershipLostError(
            f"saga {saga_id!r} was claimed by {row[0]!r} (fence {row[1]}, ours {fence})"
        )

    def release(self, saga_id: str, fence: int) -> None:
        """
        Drop the lease if *fence* still holds it.
        """
        with self._transaction() as cur:
            self._exec(
                cur,
                "UPDATE {t}saga SET lease_until = 0 WHERE saga_id = %s AND fence = %s",
                (saga_id, fence),
            )

    def renew(self, saga_id: str, fence: int, lease: float) -> bool:
        """
        Extend the lease if *fence* still holds it.
        """
        with self._statement() as cur:
            self._exec(
                cur,
                "UPDATE {t}saga SET lease_until = {now} + %s "
                "WHERE saga_id = %s AND fence = %s AND lease_until > 0",
                (lease, saga_id, fence),
            )
            return cur.rowcount == 1

    def load(self, saga_id: str) -> SagaHistory:
        """
        Return the saga's header and records, checked for damage.
        """
        with self._transaction() as cur:
            return self._history(cur, saga_id)

    def _history(
        self, cur: psycopg.Cursor[tuple[object, ...]], saga_id: str
    ) -> SagaHistory:
        header = self._exec(
            cur, "SELECT {header} FROM {t}saga WHERE saga_id = %s", (saga_id,)
        ).fetchone()
        if header is None:
            raise SagaNotFoundError(f"no saga {saga_id!r} in {self._where}")
        # Records are committed together with the header that counts them,
        # so reading up to the count read above gives a consistent history
        # even while another worker appends.
        last_seq = header[7] if isinstance(header[7], int) else 0
        rows = self._exec(
            cur,
            "SELECT {record} FROM {t}saga_record WHERE saga_id = %s "
            "AND seq <= %s ORDER BY seq",
            (saga_id, last_seq),
        ).fetchall()

        return history_from_rows(header, rows, self._where)

    def sagas(
        self, statuses: Collection[SagaStatus] | None = None, *, limit: int = 1000
    ) -> list[SagaHeader]:
        """
        Return headers, most recently updated first.
        """
        values = None if statuses is None else [s.value for s in statuses]
        with self._transaction() as cur:
            rows = self._exec(
                cur,
                "SELECT {header} FROM {t}saga "
                "WHERE %s::text[] IS NULL OR status = ANY(%s::text[]) "
                "ORDER BY updated_at DESC, saga_id DESC LIMIT %s",
                (values, values, limit),
            ).fetchall()
        return [header_from_row(row, self._where) for row in rows]

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
        in_progress = [s.value for s in IN_PROGRESS_STATUSES]
        types = None if saga_types is None else list(saga_types)
        with self._transaction() as cur:
            live = self._exec(
                cur,
                "SELECT DISTINCT owner FROM {t}saga WHERE status = ANY(%s) "
                "AND lease_until > {now} AND owner IS NOT NULL",
                (in_progress,),
            ).fetchall()
            dead = [o for (o,) in live if isinstance(o, str) and is_dead(o)]
            rows = self._exec(
                cur,
                "SELECT saga_id, saga_type, fence, owner FROM {t}saga "
                "WHERE status = ANY(%s) AND (lease_until <= {now} OR owner = ANY(%s)) "
                "AND (%s::text[] IS NULL OR saga_type = ANY(%s::text[])) "
                "AND saga_id <> ALL(%s::text[]) "
                "ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (in_progress, dead, types, types, list(exclude), limit),
            ).fetchall()
            claims = []
            for saga_id, saga_type, fence, previous in rows:
                read = functools.partial(self._history, cur, str(saga_id))
                if not vet(check, str(saga_id), read):
                    continue
                self._exec(
                    cur,
                    "UPDATE {t}saga SET owner = %s, fence = %s, "
                    "lease_until = {now} + %s WHERE saga_id = %s",
                    (owner, fence + 1, lease, saga_id),  # type: ignore[operator]
                )
                claims.append(
                    Claim(
                        str(saga_id),
                        str(saga_type),
                        owner,
                        fence + 1,  # type: ignore[operator]
                        None if previous is None else str(previous),
                    )
                )
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
        with self._transaction() as cur:
            row = self._exec(
                cur,
                "SELECT {header} FROM {t}saga WHERE saga_id = %s FOR UPDATE",
                (saga_id,),
            ).fetchone()
            if row is None:
                raise SagaNotFoundError(f"no saga {saga_id!r} in {self._where}")
            header = header_from_row(row, self._where)
            check_seizable(saga_id, header.status, statuses)
            self._exec(
                cur,
                "UPDATE {t}saga SET owner = %s, fence = %s, lease_until = {now} + %s "
                "WHERE saga_id = %s",
                (owner, header.fence + 1, lease, saga_id),
            )
        return Claim(saga_id, header.saga_type, owner, header.fence + 1, header.owner)

    def close(self) -> None:
        """
        Close the connection.
        """
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
