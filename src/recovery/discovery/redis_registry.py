"""
A service registry shared between processes and hosts through Redis.

`RedisServiceRegistry` is a `ServiceRegistry` whose membership, active
health and ejections live in Redis, so every client sees the same picture:

- Endpoints are announced with a heartbeat TTL (`register(..., ttl=...)`
  plus `keep_alive()`, which heartbeats every TTL / 3). An endpoint whose
  heartbeats stop is listed as unhealthy once its TTL runs out, and removed
  for good after `grace` more seconds.
- Active-check verdicts are published as the endpoint's shared status.
- Ejections go through one script that applies the cap to the *shared*
  count of ejected endpoints, so two clients cannot together eject more
  than `max_ejection_percent`. Consecutive failures are counted by each
  client on its own.
- Every shared change increments the service's revision and publishes it.
  Clients cache the service by revision: a lookup is served from the local
  copy, which is revalidated at most every `refresh_interval` seconds with
  one script call (the poll also reaps expired endpoints), and at once when
  the change is published (`watch=True`).

When Redis cannot be reached, lookups keep serving the last copy for up to
`max_stale` seconds (a `SharedStateUnavailable` event says so, once), then
raise `StoreUnavailableError`.

Timestamps come from Redis (`TIME`); only durations cross the wire, so the
local `clock` may be a `FakeClock` in tests while Redis keeps real time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from .._validation import ExceptionSpec, require_non_negative, require_positive
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError, StoreUnavailableError
from ..events import Event, Listener
from . import _redis_scripts as scripts
from .balancing import Balancer
from .checks import HealthCheck
from .endpoint import Endpoint
from .errors import UnknownServiceError
from .events import (
    EjectionSkipped,
    EndpointExpired,
    EndpointRegistered,
    EndpointRemoved,
    SharedStateRestored,
    SharedStateUnavailable,
)
from .outlier import OutlierDetection
from .registry import ServiceRegistry, _Service

if TYPE_CHECKING:
    import redis

__all__ = ["KeepAlive", "RedisServiceRegistry"]

logger = logging.getLogger(__name__)

_PASSING = "passing"
_CRITICAL = "critical"


@dataclasses.dataclass(slots=True)
class _Member:
    address: str
    descriptor: dict[str, object]
    status: str
    expires_in: float  # seconds; inf when it never expires
    ejected_for: float
    ejections: int


@dataclasses.dataclass(slots=True)
class _Sync:
    """
    What this client last saw of one service in Redis.
    """

    next_poll: float = -math.inf
    revision: int = -1
    expired: int = -1
    # Addresses whose heartbeat TTL had run out at the last look.
    lapsed: set[str] = dataclasses.field(default_factory=set)
    last_ok: float | None = None
    failing_since: float | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class RedisServiceRegistry(ServiceRegistry):
    """
    A `ServiceRegistry` whose membership and health are shared through Redis.

    Args:
        redis_client: a `redis.Redis` client or a ``redis://`` URL.
        prefix: the first part of every key, so that several registries (or
            test runs) share one Redis without seeing each other.
        refresh_interval: seconds between two revalidations of a service.
        grace: seconds an endpoint stays listed (as unhealthy) after its
            heartbeat TTL ran out, before it is removed.
        max_stale: seconds to keep serving the last copy while Redis is
            unreachable.
        watch: subscribe to change notifications in a background thread.

    The remaining arguments are those of `ServiceRegistry`. Call `close()`
    (or use it as a context manager) to stop its threads.
    """

    def __init__(
        self,
        redis_client: redis.Redis | str,
        *,
        prefix: str = "recovery",
        name: str = "registry",
        clock: Clock = SYSTEM_CLOCK,
        refresh_interval: float = 1.0,
        grace: float = 30.0,
        max_stale: float = 60.0,
        watch: bool = True,
        failure_on: ExceptionSpec = Exception,
        listeners: Iterable[Listener] = (),
    ) -> None:
        super().__init__(
            name=name, clock=clock, failure_on=failure_on, listeners=listeners
        )
        self._redis = _client(redis_client)
        self._owns_client = isinstance(redis_client, str)
        self._prefix = prefix
        self._refresh_interval = require_positive("refresh_interval", refresh_interval)
        self._grace_ms = int(require_non_negative("grace", grace) * 1000)
        self._max_stale = require_non_negative("max_stale", max_stale)
        self._syncs: dict[str, _Sync] = {}
        self._scripts = {
            name: self._redis.register_script(source)
            for name, source in (
                ("register", scripts.REGISTER),
                ("heartbeat", scripts.HEARTBEAT),
                ("withdraw", scripts.WITHDRAW),
                ("set_status", scripts.SET_STATUS),
                ("poll", scripts.POLL),
                ("resolve", scripts.RESOLVE),
                ("eject", scripts.EJECT),
            )
        }
        self._unavailable = False
        self._closing = threading.Event()
        # Set while the watcher is subscribed (tests wait on it).
        self._subscribed = threading.Event()
        self._keepalives: list[KeepAlive] = []
        self._watcher: threading.Thread | None = None
        if watch:
            self._watcher = threading.Thread(
                target=self._watch_main, name="recovery-registry-watch", daemon=True
            )
            self._watcher.start()

    # -- membership in Redis --------------------------------------------------

    def register(
        self,
        service: str,
        endpoints: Iterable[str | Endpoint] = (),
        *,
        check: HealthCheck | None = None,
        balancer: Balancer | None = None,
        fallback_services: Sequence[str] | None = None,
        panic: bool | None = None,
        outlier: OutlierDetection | Literal[False] | None = None,
        ttl: float | None = None,
    ) -> list[Endpoint]:
        """
        Announce *endpoints* in Redis and set this client's service settings.

        With *ttl*, each endpoint must be kept alive by heartbeats (see
        `keep_alive`); without, it stays until deregistered. Settings
        (check, balancer, ...) are local to this client. Returns the local
        endpoints for the addresses given.
        """
        _check_name(service)
        ttl_ms = -1 if ttl is None else int(require_positive("ttl", ttl) * 1000)
        items = [
            item if isinstance(item, Endpoint) else Endpoint(item) for item in endpoints
        ]
        with self._store_errors():
            for item in items:
                self._announce(service, item, ttl_ms)

        super().register(
            service,
            (),
            check=check,
            balancer=balancer,
            fallback_services=fallback_services,
            panic=panic,
            outlier=outlier,
        )
        svc = self._services[service]
        self._sync_now(svc)

        return [
            svc.endpoints[item.address]
            for item in items
            if item.address in svc.endpoints
        ]

    def heartbeat(self, service: str, address: str, *, ttl: float) -> bool:
        """
        Extend an endpoint's TTL; return False if it was already reaped.
        """
        ttl_ms = int(require_positive("ttl", ttl) * 1000)
        with self._store_errors():
            result = self._scripts["heartbeat"](
                keys=self._keys(service), args=[self._channel(service), address, ttl_ms]
            )
        return int(result) >= 0

    def keep_alive(
        self, service: str, endpoint: str | Endpoint, *, ttl: float
    ) -> KeepAlive:
        """
        Announce *endpoint* and heartbeat it every TTL / 3 from a thread.
        """
        item = endpoint if isinstance(endpoint, Endpoint) else Endpoint(endpoint)
        ttl = require_positive("ttl", ttl)
        with self._store_errors():
            self._announce(service, item, int(ttl * 1000))
        keeper = KeepAlive(self, service, item, ttl)
        self._keepalives.append(keeper)
        keeper.start()

        return keeper

    def deregister(self, service: str, endpoint: str | Endpoint | None = None) -> None:
        """
        Withdraw one endpoint, or every endpoint of the service, from Redis.
        """
        svc = self._require(service)
        addresses = (
            [ep.address for ep in svc.all]
            if endpoint is None
            else [endpoint.address if isinstance(endpoint, Endpoint) else endpoint]
        )
        with self._store_errors():
            for address in addresses:
                self._withdraw(service, address)
            if endpoint is None:
                self._redis.zrem(self._key("services", None), service)

        self._sync_now(svc)
        if endpoint is None:
            super().deregister(service)

    def revision(self, service: str) -> int:
        """
        Return the revision of *service* this client's copy reflects.
        """
        self._require(service)
        return self._syncs[service].revision

    def close(self) -> None:
        """
        Stop the keep-alive and watch threads (endpoints stay announced).
        """
        self._closing.set()
        for keeper in self._keepalives:
            keeper.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        if self._owns_client:
            self._redis.close()

    def __enter__(self) -> RedisServiceRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- hooks of ServiceRegistry ----------------------------------------------

    def _require(self, service: str) -> _Service:
        svc = self._services.get(service)
        if svc is not None:
            return svc

        # A service announced by another client becomes known on first use.
        with self._store_errors():
            known = self._redis.zscore(self._key("services", None), service)
        if known is None:
            raise UnknownServiceError(service)
        super().register(service)
        svc = self._services[service]
        self._sync_now(svc)

        return svc

    def _refresh(self, svc: _Service, now: float) -> None:
        sync = self._sync_of(svc.name)
        if now >= sync.next_poll and sync.lock.acquire(blocking=False):
            # One thread revalidates; the others serve the copy meanwhile.
            try:
                self._poll(svc, sync, now)
            finally:
                sync.lock.release()

        if sync.failing_since is not None:
            since = sync.last_ok if sync.last_ok is not None else sync.failing_since
            if now - since > self._max_stale:
                raise StoreUnavailableError(
                    f"registry {self.name}: Redis unreachable for more than "
                    f"{self._max_stale:g} s; the copy of {svc.name!r} is too stale"
                )
        super()._refresh(svc, now)

    def _recompute_locked(self, svc: _Service, now: float, events: list[Event]) -> None:
        super()._recompute_locked(svc, now, events)
        sync = self._sync_of(svc.name)
        # The copy also goes stale when the next revalidation is due, and at
        # once while Redis fails, so that every lookup checks `max_stale`.
        stale_at = -math.inf if sync.failing_since is not None else sync.next_poll
        svc.expires = min(svc.expires, stale_at)

    def _try_eject_locked(
        self, svc: _Service, endpoint: Endpoint, now: float, events: list[Event]
    ) -> None:
        assert svc.outlier is not None
        settings = svc.outlier
        try:
            # The shared cap needs the shared count: one script call, made
            # under this service's lock (never held around a user's call).
            reply = self._scripts["eject"](
                keys=self._keys(svc.name),
                args=[
                    self._channel(svc.name),
                    endpoint.address,
                    int(settings.base_ejection_time * 1000),
                    int(settings.max_ejection_time * 1000),
                    settings.max_ejection_percent,
                ],
            )
        except _redis_errors() as exc:
            self._note_unavailable(exc)
            super()._try_eject_locked(svc, endpoint, now, events)
            return

        code = int(reply[0])
        if code == -1 and self._emitter.wants(EjectionSkipped):
            events.append(
                EjectionSkipped(
                    source=self.name,
                    service=svc.name,
                    address=endpoint.address,
                    ejected=int(reply[1]),
                    total=int(reply[2]),
                )
            )
        if code >= 0 or code == -3:
            duration = (code if code >= 0 else int(reply[1])) / 1000
            failures = endpoint._outlier.failures
            state = endpoint._outlier
            state.ejected, state.ejected_until, state.failures = True, now + duration, 0
            if code >= 0:
                state.ejections = int(reply[1])
                events.append(self._ejected_event(svc, endpoint, failures, duration))

    def _health_changed(self, svc: _Service, endpoint: Endpoint, healthy: bool) -> None:
        try:
            self._scripts["set_status"](
                keys=self._keys(svc.name),
                args=[
                    self._channel(svc.name),
                    endpoint.address,
                    _PASSING if healthy else _CRITICAL,
                ],
            )
        except _redis_errors() as exc:
            self._note_unavailable(exc)

    # -- synchronisation ----------------------------------------------------

    def _sync_of(self, service: str) -> _Sync:
        sync = self._syncs.get(service)
        if sync is None:
            sync = self._syncs.setdefault(service, _Sync())

        return sync

    def _sync_now(self, svc: _Service) -> None:
        sync = self._sync_of(svc.name)
        with sync.lock:
            sync.revision = -1
            self._poll(svc, sync, self._clock.now())
        super()._refresh(svc, self._clock.now())

    def _poll(self, svc: _Service, sync: _Sync, now: float) -> None:
        try:
            reply = self._scripts["poll"](
                keys=self._keys(svc.name),
                args=[self._channel(svc.name), self._grace_ms],
            )
            revision, expired = int(reply[0]), int(reply[1])
            if (revision, expired) != (sync.revision, sync.expired):
                members = self._resolve(svc.name)
                self._apply(svc, sync, members, now)
                sync.revision, sync.expired = revision, expired
        except _redis_errors() as exc:
            self._note_unavailable(exc)
            if sync.failing_since is None:
                sync.failing_since = now
            sync.next_poll = now + self._refresh_interval
            return

        sync.last_ok = now
        sync.failing_since = None
        sync.next_poll = now + self._refresh_interval
        self._note_available()

    def _resolve(self, service: str) -> list[_Member]:
        reply = self._scripts["resolve"](keys=self._keys(service), args=[])
        members = []
        for i in range(1, len(reply), 6):
            address, descriptor, status, left, ejected, count = reply[i : i + 6]
            left = int(left)
            members.append(
                _Member(
                    address=_text(address),
                    descriptor=json.loads(descriptor),
                    status=_text(status),
                    expires_in=math.inf if left < 0 else left / 1000,
                    ejected_for=int(ejected) / 1000,
                    ejections=int(count),
                )
            )

        return members

    def _apply(
        self, svc: _Service, sync: _Sync, members: list[_Member], now: float
    ) -> None:
        events: list[Event] = []
        with svc.lock:
            seen = set()
            for member in members:
                seen.add(member.address)
                endpoint = svc.endpoints.get(member.address)
                if endpoint is None:
                    endpoint = self._adopt_locked(svc, member, events)
                self._apply_member_locked(svc, endpoint, member, now, events)

            for address in [a for a in svc.endpoints if a not in seen]:
                svc.endpoints.pop(address)._service = None
                # Gone after its TTL ran out: reaped, not withdrawn.
                kind = EndpointExpired if address in sync.lapsed else EndpointRemoved
                events.append(kind(source=self.name, service=svc.name, address=address))
            sync.lapsed = {m.address for m in members if m.expires_in <= 0}
            self._recompute_locked(svc, now, events)

        self._emit_all(events)

    def _adopt_locked(
        self, svc: _Service, member: _Member, events: list[Event]
    ) -> Endpoint:
        metadata = member.descriptor.get("metadata") or {}
        weight = member.descriptor.get("weight", 1.0)
        endpoint = Endpoint(
            member.address,
            weight=float(weight) if isinstance(weight, int | float) else 1.0,
            metadata={str(k): str(v) for k, v in dict(metadata).items()}
            if isinstance(metadata, dict)
            else None,
        )
        endpoint._service = svc.name
        endpoint._clock = self._clock
        svc.endpoints[member.address] = endpoint
        events.append(
            EndpointRegistered(
                source=self.name, service=svc.name, address=member.address
            )
        )
        return endpoint

    def _apply_member_locked(
        self,
        svc: _Service,
        endpoint: Endpoint,
        member: _Member,
        now: float,
        events: list[Event],
    ) -> None:
        # An endpoint whose heartbeat TTL ran out is listed, but unhealthy.
        lapsed = member.expires_in <= 0
        healthy = member.status == _PASSING and not lapsed
        check = endpoint._check
        if check.healthy != healthy:
            check.healthy = healthy
            if lapsed:
                reason = "its heartbeats stopped"
            elif healthy:
                reason = "its shared status is passing"
            else:
                reason = "its shared status is critical"
            events.append(self._health_event(svc, endpoint, healthy, reason))

        state = endpoint._outlier
        if member.ejected_for > 0:
            state.ejected = True
            state.ejected_until = now + member.ejected_for
            state.ejections = member.ejections

    # -- watching -------------------------------------------------------------

    def _watch_main(self) -> None:
        pattern = f"{self._prefix}:v1:reg:{{*}}:events"
        while not self._closing.is_set():
            pubsub = self._redis.pubsub(  # type: ignore[no-untyped-call]
                ignore_subscribe_messages=True
            )
            try:
                pubsub.psubscribe(pattern)
                # Notifications sent while unsubscribed are lost: re-list.
                self._invalidate_all()
                self._subscribed.set()
                while not self._closing.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None:
                        self._invalidate(_text(message["channel"]))
            except _redis_errors() as exc:
                self._note_unavailable(exc)
                self._closing.wait(self._refresh_interval)
            finally:
                self._subscribed.clear()
                pubsub.close()

    def _invalidate_all(self) -> None:
        for name in list(self._services):
            self._invalidate_service(name)

    def _invalidate(self, channel: str) -> None:
        head = f"{self._prefix}:v1:reg:{{"
        if channel.startswith(head) and channel.endswith("}:events"):
            self._invalidate_service(channel[len(head) : -len("}:events")])

    def _invalidate_service(self, name: str) -> None:
        svc = self._services.get(name)
        if svc is not None:
            self._sync_of(name).next_poll = -math.inf
            svc.expires = -math.inf

    # -- helpers --------------------------------------------------------------

    def _announce(self, service: str, endpoint: Endpoint, ttl_ms: int) -> None:
        _check_name(service)
        descriptor = json.dumps(
            {
                "address": endpoint.address,
                "weight": endpoint.weight,
                "metadata": dict(endpoint.metadata),
            }
        )
        self._scripts["register"](
            keys=self._keys(service),
            args=[
                self._channel(service),
                endpoint.address,
                descriptor,
                ttl_ms,
                _PASSING,
            ],
        )
        # The index lives in another cluster slot, so it is a command apart.
        self._redis.zadd(self._key("services", None), {service: 0})

    def _withdraw(self, service: str, address: str) -> None:
        self._scripts["withdraw"](
            keys=self._keys(service), args=[self._channel(service), address]
        )

    @contextlib.contextmanager
    def _store_errors(self) -> Iterator[None]:
        try:
            yield
        except _redis_errors() as exc:
            self._note_unavailable(exc)
            raise StoreUnavailableError(
                f"registry {self.name}: Redis unreachable: {exc}"
            ) from exc

    def _key(self, part: str, service: str | None) -> str:
        if service is None:
            return f"{self._prefix}:v1:reg:{part}"
        return f"{self._prefix}:v1:reg:{{{service}}}:{part}"

    def _keys(self, service: str) -> list[str]:
        return [
            self._key(part, service)
            for part in ("inst", "ttl", "status", "eject", "ejcount", "rev")
        ]

    def _channel(self, service: str) -> str:
        return self._key("events", service)

    def _note_unavailable(self, exc: BaseException) -> None:
        if self._unavailable:
            return
        self._unavailable = True
        self._emitter.emit(
            SharedStateUnavailable(source=self.name, error=type(exc).__name__)
        )

    def _note_available(self) -> None:
        if self._unavailable:
            self._unavailable = False
            self._emitter.emit(SharedStateRestored(source=self.name))


class KeepAlive:
    """
    A thread that heartbeats one endpoint every TTL / 3 until stopped.

    When the endpoint was reaped meanwhile (a long pause, a Redis restart),
    it is announced again: this process is the authority on its endpoint.
    """

    def __init__(
        self,
        registry: RedisServiceRegistry,
        service: str,
        endpoint: Endpoint,
        ttl: float,
    ) -> None:
        self._registry = registry
        self._service = service
        self._endpoint = endpoint
        self._ttl = ttl
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._main,
            name=f"recovery-keepalive-{endpoint.address}",
            daemon=True,
        )

    def start(self) -> None:
        """
        Start heartbeating.
        """
        self._thread.start()

    def stop(self, *, withdraw: bool = False) -> None:
        """
        Stop heartbeating; with *withdraw*, also remove the endpoint at once.
        """
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if withdraw:
            with self._registry._store_errors():
                self._registry._withdraw(self._service, self._endpoint.address)

    def _main(self) -> None:
        registry = self._registry
        # Real time on purpose: the TTL it renews runs on the Redis clock.
        while not self._stopped.wait(self._ttl / 3):
            try:
                alive = registry.heartbeat(
                    self._service, self._endpoint.address, ttl=self._ttl
                )
                if not alive:
                    registry._announce(
                        self._service, self._endpoint, int(self._ttl * 1000)
                    )
            except StoreUnavailableError:
                # Already reported; the next beat tries again.
                pass
            except _redis_errors() as exc:
                registry._note_unavailable(exc)


def _client(redis_client: redis.Redis | str) -> redis.Redis:
    try:
        import redis as redis_module
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "RedisServiceRegistry needs the redis extra: pip install 'recovery[redis]'"
        ) from exc

    if isinstance(redis_client, str):
        return redis_module.Redis.from_url(redis_client)
    return redis_client


def _redis_errors() -> tuple[type[Exception], ...]:
    import redis as redis_module

    return (redis_module.RedisError, OSError)


def _check_name(service: str) -> None:
    if not service or "{" in service or "}" in service:
        raise ConfigurationError(
            f"service must be a non-empty name without braces, got {service!r}"
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
