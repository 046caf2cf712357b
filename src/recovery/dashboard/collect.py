"""
One read-only snapshot of what recovery keeps: breakers, limiters, services,
sagas and backups.

A `Collector` is given the places where state lives (a breaker store, a
limiter table, Redis registries, a saga journal, a backup repository) and
`collect()` reads each of them once into a `Snapshot` of plain, frozen
views. It never writes: it takes no permit, reaps no endpoint, claims no
saga and locks no repository. A source that fails is reported in its own
section (`error`) and the others are still read, so one unreachable Redis
does not blank the whole picture.

The collector keeps one thing between calls: a minute of each breaker's
counters, so that a snapshot can tell the *recent* failure rate (failures
among the calls judged in the last `rate_window` seconds) beside the
all-time one. Create one collector and call it repeatedly; it is not
thread-safe, so one thread should own it (the dashboard server does).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import logging
import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._validation import require_int, require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..policies.breaker_core import BreakerMetrics, BreakerState
from ..stores.base import BreakerStore

if TYPE_CHECKING:
    from ..backup.repository import BackupRepository
    from ..transactions.journal import Journal

__all__ = [
    "BackupView",
    "BackupsSection",
    "BreakerView",
    "BreakersSection",
    "Collector",
    "EndpointView",
    "LimiterView",
    "LimitersSection",
    "LockView",
    "RedisLimiterReader",
    "RedisRegistryReader",
    "RegistrySection",
    "SagaView",
    "SagasSection",
    "ServiceView",
    "Snapshot",
    "SqliteLimiterReader",
    "open_collector",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_US = 1_000_000

# A count above this many sagas in one status reads as "more than".
_SAGA_COUNT_LIMIT = 1000


# -- the views ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerView:
    """
    One circuit breaker as the snapshot saw it.

    `since` is the wall-clock time of its last change of state;
    `next_trial` the seconds until an open breaker lets a trial call through
    (0 when half-open, None otherwise). `failure_rate` counts every judged
    call since the counters were last reset; `recent_failure_rate` only
    those judged in the collector's last `rate_window` seconds (None when
    none were, or on the first snapshot), over `recent_calls` calls.
    """

    name: str
    state: BreakerState
    since: float
    next_trial: float | None
    total_calls: int
    successful_calls: int
    failed_calls: int
    slow_calls: int
    rejected_calls: int
    times_opened: int
    consecutive_failures: int
    failure_rate: float | None
    recent_failure_rate: float | None
    recent_calls: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakersSection:
    """
    The breakers of one store, or the error that kept them from being read.
    """

    source: str
    breakers: tuple[BreakerView, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimiterView:
    """
    A rate limiter that has been used lately: it is full again in `idle_in` s.

    A limiter store keeps only the time at which a limiter is idle again,
    not its rate, so that is all a reader can tell; an idle limiter leaves
    no trace and is not listed.
    """

    name: str
    idle_in: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimitersSection:
    """
    The busy limiters of one store, or the error that kept them from being read.
    """

    source: str
    limiters: tuple[LimiterView, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EndpointView:
    """
    One endpoint of a shared registry and its health.

    `health` is ``healthy``, ``critical`` (its active check fails),
    ``ejected`` (outlier detection took it out for `ejected_for` more
    seconds) or ``expired`` (its heartbeat TTL ran out). `expires_in` is
    None for an endpoint that never expires.
    """

    address: str
    weight: float
    metadata: dict[str, str]
    health: str
    status: str
    expires_in: float | None
    ejected_for: float
    ejections: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceView:
    """
    One service of a shared registry: its endpoints and how many are healthy.
    """

    name: str
    revision: int
    healthy: int
    endpoints: tuple[EndpointView, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySection:
    """
    The services of one shared registry, or the error that kept them from
    being read.
    """

    source: str
    services: tuple[ServiceView, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagaView:
    """
    One saga's header: id, type, status, owner and when it last moved.
    """

    saga_id: str
    saga_type: str
    status: str
    owner: str | None
    updated_at: float
    records: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SagasSection:
    """
    Sagas counted by status, and the most recently updated ones.

    A status whose count reached the collector's limit is listed in `more`:
    there are at least that many.
    """

    source: str
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    more: tuple[str, ...] = ()
    recent: tuple[SagaView, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BackupView:
    """
    One backup snapshot's header.
    """

    snapshot_id: str
    series: str
    created_at: float
    host: str
    source: str
    tags: tuple[str, ...]
    files: int
    size: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LockView:
    """
    A lock held on the backup repository: a backup, prune or check at work.
    """

    kind: str
    host: str
    pid: int
    purpose: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BackupsSection:
    """
    The latest snapshots of a backup repository, newest first, and its locks.
    """

    source: str
    count: int = 0
    snapshots: tuple[BackupView, ...] = ()
    locks: tuple[LockView, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """
    Everything the collector read at wall-clock time `taken_at`.

    A section is None when no source of its kind was given.
    """

    taken_at: float
    breakers: BreakersSection | None = None
    limiters: LimitersSection | None = None
    registries: tuple[RegistrySection, ...] = ()
    sagas: SagasSection | None = None
    backups: BackupsSection | None = None

    def to_json(self) -> dict[str, object]:
        """
        Return the snapshot as JSON-ready data (enums as their values).
        """
        data: dict[str, object] = json.loads(
            json.dumps(dataclasses.asdict(self), default=_json_default)
        )
        return data


def _json_default(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# -- readers of the stores that keep no listing API of their own ---------------


class SqliteLimiterReader:
    """
    Reads the limiter table of an SQLite file that `SqliteLimiterStore` writes.

    The file is opened read-only and never created. Times are the host's
    monotonic clock, the clock the limiters of that host share.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "recovery_ratelimit",
        now_us: Callable[[], int] = lambda: time.monotonic_ns() // 1000,
    ) -> None:
        if not table.replace("_", "").isalnum() or not table.isascii():
            raise ConfigurationError(
                f"table must be a plain identifier (letters, digits, _), got {table!r}"
            )
        self.path = os.fspath(path)
        self.table = table
        self._now_us = now_us

    def describe(self) -> str:
        """
        Return "sqlite:" and the file's path.
        """
        return f"sqlite:{self.path}"

    def limiters(self) -> list[LimiterView]:
        """
        Return the limiters that are not idle yet, by name.
        """
        if not os.path.exists(self.path):
            return []
        uri = pathlib.Path(self.path).absolute().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True)
        try:
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (self.table,),
            ).fetchone()
            if exists is None:
                return []
            rows = connection.execute(
                f"SELECT key, tat_us FROM {self.table} ORDER BY key"  # noqa: S608 - checked identifier
            ).fetchall()
        finally:
            connection.close()

        now = self._now_us()
        return [
            LimiterView(name=str(key), idle_in=(int(tat) - now) / _US)
            for key, tat in rows
            if int(tat) > now
        ]

    def close(self) -> None:
        """
        Nothing to release: each read opens and closes its own connection.
        """


class RedisLimiterReader:
    """
    Reads the limiter keys that `RedisLimiterStore` writes under *prefix*.
    """

    def __init__(self, url: str, *, prefix: str = "recovery") -> None:
        self.url = url
        self.prefix = prefix
        self._client = _redis_client(url, "RedisLimiterReader")

    def describe(self) -> str:
        """
        Return the server's address and the key prefix, without credentials.
        """
        return f"{_redis_where(self._client)} prefix {self.prefix}"

    def limiters(self) -> list[LimiterView]:
        """
        Return the limiters that are not idle yet, by name (uses SCAN).
        """
        head = f"{self.prefix}:v1:limiter:{{"
        keys = sorted(_text(k) for k in self._client.scan_iter(match=f"{head}*}}"))
        if not keys:
            return []
        seconds, micros = self._client.time()
        now = int(seconds) * _US + int(micros)
        values = self._client.mget(keys)

        views = []
        for key, value in zip(keys, values, strict=True):
            if value is not None and int(value) > now:
                name = key[len(head) : -1]
                views.append(LimiterView(name=name, idle_in=(int(value) - now) / _US))
        return views

    def close(self) -> None:
        """
        Close the connection pool.
        """
        self._client.close()


class RedisRegistryReader:
    """
    Reads the services of a `RedisServiceRegistry` under *prefix*.

    It uses the registry's own read-only script, so it sees exactly what
    the registry's clients see, but it never reaps expired endpoints: it
    shows them as ``expired`` until a client's poll removes them.
    """

    def __init__(self, url: str, *, prefix: str = "recovery") -> None:
        from ..discovery import _redis_scripts

        self.url = url
        self.prefix = prefix
        self._client = _redis_client(url, "RedisRegistryReader")
        # The registry's own read-only script: one definition of what an
        # endpoint's shared state means, for its clients and for this reader.
        self._resolve = self._client.register_script(_redis_scripts.RESOLVE)

    def describe(self) -> str:
        """
        Return the server's address and the key prefix, without credentials.
        """
        return f"{_redis_where(self._client)} prefix {self.prefix}"

    def services(self) -> list[ServiceView]:
        """
        Return every service in the registry's index, by name.
        """
        index = f"{self.prefix}:v1:reg:services"
        names = sorted(_text(name) for name in self._client.zrange(index, 0, -1))
        return [self._service(name) for name in names]

    def _service(self, name: str) -> ServiceView:
        parts = ("inst", "ttl", "status", "eject", "ejcount", "rev")
        keys = [f"{self.prefix}:v1:reg:{{{name}}}:{part}" for part in parts]
        reply = self._resolve(keys=keys, args=[])

        endpoints = []
        for i in range(1, len(reply), 6):
            address, descriptor, status, left, ejected, count = reply[i : i + 6]
            view = _endpoint(
                _text(address),
                json.loads(descriptor),
                _text(status),
                int(left),
                int(ejected),
                int(count),
            )
            endpoints.append(view)
        healthy = sum(1 for e in endpoints if e.health == "healthy")
        return ServiceView(
            name=name,
            revision=int(reply[0]),
            healthy=healthy,
            endpoints=tuple(endpoints),
        )

    def close(self) -> None:
        """
        Close the connection pool.
        """
        self._client.close()


def _endpoint(
    address: str,
    descriptor: dict[str, Any],
    status: str,
    left_ms: int,
    ejected_ms: int,
    ejections: int,
) -> EndpointView:
    # The script answers -1 for "never expires" and 0 for "already expired".
    if left_ms == 0:
        health = "expired"
    elif ejected_ms > 0:
        health = "ejected"
    elif status != "passing":
        health = "critical"
    else:
        health = "healthy"
    metadata = descriptor.get("metadata") or {}
    return EndpointView(
        address=address,
        weight=float(descriptor.get("weight", 1.0)),
        metadata={str(k): str(v) for k, v in metadata.items()},
        health=health,
        status=status,
        expires_in=None if left_ms < 0 else left_ms / 1000,
        ejected_for=ejected_ms / 1000,
        ejections=ejections,
    )


def _redis_client(url: str, who: str) -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the test setup installs redis
        raise ImportError(
            f"{who} needs the redis extra: pip install 'recovery[redis]'"
        ) from exc
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def _redis_where(client: Any) -> str:
    kwargs = client.connection_pool.connection_kwargs
    host = kwargs.get("host", kwargs.get("path", "?"))
    return f"redis://{host}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- the collector ------------------------------------------------------------


class _RateHistory:
    """
    A minute of one breaker's (time, successful, failed) counters.
    """

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, now: float, ok: int, failed: int, window: float) -> tuple[int, int]:
        """
        Add a sample; return (ok, failed) judged since the oldest one kept.
        """
        samples = self.samples
        # Counters that went down were reset: what came before means nothing.
        if samples and (ok < samples[-1][1] or failed < samples[-1][2]):
            samples.clear()
        samples.append((now, ok, failed))
        while len(samples) > 1 and now - samples[1][0] >= window:
            samples.popleft()

        _, first_ok, first_failed = samples[0]
        return ok - first_ok, failed - first_failed


class Collector:
    """
    Reads every given source into a `Snapshot`, one section per source.

    Args:
        breakers: the store of the circuit breakers to show.
        limiters: a `SqliteLimiterReader` or `RedisLimiterReader`.
        registries: `RedisRegistryReader`s, one per shared registry.
        journal: the saga journal to count and list.
        repository: the backup repository whose latest snapshots to show.
        rate_window: seconds of counters behind `recent_failure_rate`.
        recent: how many sagas and backup snapshots to list (newest first).
        clock: gives the wall-clock `taken_at` and the monotonic ages of
            the rate history.

    `close()` closes every source it was given.
    """

    def __init__(
        self,
        *,
        breakers: BreakerStore | None = None,
        limiters: SqliteLimiterReader | RedisLimiterReader | None = None,
        registries: Sequence[RedisRegistryReader] = (),
        journal: Journal | None = None,
        repository: BackupRepository | None = None,
        rate_window: float = 60.0,
        recent: int = 10,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.breakers = breakers
        self.limiters = limiters
        self.registries = tuple(registries)
        self.journal = journal
        self.repository = repository
        self._rate_window = require_positive("rate_window", rate_window)
        self._recent = require_int("recent", recent, minimum=1, maximum=1000)
        self._clock = clock
        self._rates: dict[str, _RateHistory] = {}
        self._backups: tuple[tuple[str, ...], list[BackupView]] | None = None

    def collect(self) -> Snapshot:
        """
        Read every source once and return what they hold now.
        """
        return Snapshot(
            taken_at=self._clock.time(),
            breakers=None if self.breakers is None else self._breakers(self.breakers),
            limiters=None if self.limiters is None else self._limiters(self.limiters),
            registries=tuple(self._registry(reader) for reader in self.registries),
            sagas=None if self.journal is None else self._sagas(self.journal),
            backups=(
                None if self.repository is None else self._backups_of(self.repository)
            ),
        )

    def close(self) -> None:
        """
        Close every source.
        """
        closers: list[Callable[[], None]] = []
        if self.breakers is not None:
            closers.append(self.breakers.close)
        if self.limiters is not None:
            closers.append(self.limiters.close)
        closers.extend(reader.close for reader in self.registries)
        if self.journal is not None:
            closers.append(self.journal.close)
        for close in closers:
            _read(close)

    # -- one section per source ------------------------------------------------

    def _breakers(self, store: BreakerStore) -> BreakersSection:
        source = store.describe()

        def read() -> list[BreakerMetrics]:
            return [m for n in store.names() if (m := store.metrics(n)) is not None]

        metrics, error = _read(read)
        if error is not None:
            return BreakersSection(source=source, error=error)

        now = self._clock.now()
        views = tuple(self._breaker_view(m, now) for m in metrics or [])
        for gone in set(self._rates) - {view.name for view in views}:
            del self._rates[gone]
        return BreakersSection(source=source, breakers=views)

    def _breaker_view(self, metrics: BreakerMetrics, now: float) -> BreakerView:
        history = self._rates.setdefault(metrics.name, _RateHistory())
        ok, failed = history.add(
            now, metrics.successful_calls, metrics.failed_calls, self._rate_window
        )
        if metrics.state is BreakerState.HALF_OPEN:
            next_trial: float | None = 0.0
        else:
            next_trial = metrics.retry_after

        return BreakerView(
            name=metrics.name,
            state=metrics.state,
            since=metrics.since,
            next_trial=next_trial,
            total_calls=metrics.total_calls,
            successful_calls=metrics.successful_calls,
            failed_calls=metrics.failed_calls,
            slow_calls=metrics.slow_calls,
            rejected_calls=metrics.rejected_calls,
            times_opened=metrics.times_opened,
            consecutive_failures=metrics.consecutive_failures,
            failure_rate=metrics.failure_rate,
            recent_failure_rate=None if ok + failed == 0 else failed / (ok + failed),
            recent_calls=ok + failed,
        )

    def _limiters(
        self, reader: SqliteLimiterReader | RedisLimiterReader
    ) -> LimitersSection:
        views, error = _read(reader.limiters)
        return LimitersSection(
            source=reader.describe(), limiters=tuple(views or ()), error=error
        )

    def _registry(self, reader: RedisRegistryReader) -> RegistrySection:
        services, error = _read(reader.services)
        return RegistrySection(
            source=reader.describe(), services=tuple(services or ()), error=error
        )

    def _sagas(self, journal: Journal) -> SagasSection:
        from ..transactions.records import SagaStatus

        def read() -> SagasSection:
            counts: dict[str, int] = {}
            more: list[str] = []
            for status in SagaStatus:
                found = len(journal.sagas([status], limit=_SAGA_COUNT_LIMIT + 1))
                counts[status.value] = min(found, _SAGA_COUNT_LIMIT)
                if found > _SAGA_COUNT_LIMIT:
                    more.append(status.value)
            recent = tuple(
                SagaView(
                    saga_id=h.saga_id,
                    saga_type=h.saga_type,
                    status=h.status.value,
                    owner=h.owner,
                    updated_at=h.updated_at,
                    records=h.last_seq,
                )
                for h in journal.sagas(limit=self._recent)
            )
            return SagasSection(
                source=journal.where, counts=counts, more=tuple(more), recent=recent
            )

        section, error = _read(read)
        return section or SagasSection(source=journal.where, error=error)

    def _backups_of(self, repository: BackupRepository) -> BackupsSection:
        from ..backup.locks import read_locks

        def read() -> BackupsSection:
            views = self._snapshot_views(repository)
            locks = tuple(
                LockView(
                    kind=lock.kind.value,
                    host=lock.host,
                    pid=lock.pid,
                    purpose=lock.purpose,
                )
                for lock in read_locks(os.path.join(repository.path, "locks"))
            )
            return BackupsSection(
                source=repository.path,
                count=len(views),
                snapshots=tuple(views[: self._recent]),
                locks=locks,
            )

        section, error = _read(read)
        return section or BackupsSection(source=repository.path, error=error)

    def _snapshot_views(self, repository: BackupRepository) -> list[BackupView]:
        # Manifests never change once written, so the headers are read again
        # only when the set of snapshot files did: a big repository is not
        # re-read every second.
        names = tuple(sorted(os.listdir(os.path.join(repository.path, "snapshots"))))
        if self._backups is not None and self._backups[0] == names:
            return self._backups[1]

        views = [
            BackupView(
                snapshot_id=s.id,
                series=s.series,
                created_at=s.created_at,
                host=s.host,
                source=s.source,
                tags=tuple(s.tags),
                files=s.files,
                size=s.size,
            )
            for s in reversed(repository.snapshots())
        ]
        self._backups = (names, views)
        return views


def _read(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """
    Run one source's read; return its result, or the error to show instead.
    """
    try:
        return read(), None
    except Exception as exc:  # shown in the source's section instead
        logger.debug("reading a dashboard source failed", exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"


# -- opening the sources the command line names -----------------------------


def open_collector(
    *,
    state: str | os.PathLike[str] | None = None,
    redis: str | None = None,
    prefix: str = "recovery",
    journal: str | None = None,
    repo: str | None = None,
    registry_redis: Sequence[str] = (),
    rate_window: float = 60.0,
) -> Collector:
    """
    Return a collector over sources named by paths and URLs.

    Breakers and limiters are read from *redis* (a URL) or from the SQLite
    file *state*; with neither, the snapshot has no breaker section. A
    journal is an SQLite path or a ``postgresql://`` URL; *repo* a backup
    repository directory; *registry_redis* the URLs of shared registries.
    Raises `ConfigurationError` for a journal or repository that does not
    exist, rather than create an empty one.
    """
    if state and redis:
        raise ConfigurationError("give --state PATH or --redis URL, not both")
    # The sources that may be refused come first, so nothing is left open.
    repository = None if repo is None else _open_repository(repo)
    saga_journal = None if journal is None else _open_journal(journal)

    breakers: BreakerStore | None = None
    limiters: SqliteLimiterReader | RedisLimiterReader | None = None
    if redis:
        from ..stores.redis import RedisStore

        breakers = RedisStore(redis, prefix=prefix, socket_timeout=1.0)
        limiters = RedisLimiterReader(redis, prefix=prefix)
    elif state:
        from ..stores.sqlite import SqliteStore

        # Opening a state file creates it; a reader must not.
        if not os.path.exists(state):
            raise ConfigurationError(f"state: no state file at {os.fspath(state)}")
        breakers = SqliteStore(state)
        limiters = SqliteLimiterReader(state)

    return Collector(
        breakers=breakers,
        limiters=limiters,
        registries=[RedisRegistryReader(u, prefix=prefix) for u in registry_redis],
        journal=saga_journal,
        repository=repository,
        rate_window=rate_window,
    )


def _open_journal(target: str) -> Journal:
    from ..transactions import open_journal

    is_url = target.startswith(("postgresql://", "postgres://"))
    if not is_url and not os.path.exists(target):
        raise ConfigurationError(f"journal: no saga journal at {target}")
    return open_journal(target)


def _open_repository(path: str) -> BackupRepository:
    from ..backup.repository import BackupRepository

    if not os.path.isfile(os.path.join(path, "recovery-repo.json")):
        raise ConfigurationError(f"repo: no backup repository at {path}")
    return BackupRepository(path)
