"""
The service registry: services, their endpoints, health, and the lookup.

`ServiceRegistry` holds named services, each with endpoints, an optional
active check, passive outlier detection and a balancer. `endpoint(name)`
returns a healthy endpoint, failing over to the service's fallback services
when it has none; `use(name)` does the same as a (sync or async) context
manager that also reports the call's outcome and counts outstanding calls.

Health is per endpoint: an endpoint is available when it passes its active
checks and is not ejected. Unhealthy endpoints stay registered. When none
of a service's endpoints is available, `AllEndpointsDown` is emitted once,
and lookups raise `NoHealthyEndpointError`, unless the service is in panic
mode, where they hand out unhealthy endpoints (with `healthy` false).

The lookup is built for speed: each service keeps a tuple of available
endpoints and the clock time at which that tuple may go stale (the end of
the earliest ejection). Every health change recomputes the tuple under the
service's lock; a lookup only reads it and compares one time.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from os import PathLike
from types import TracebackType
from typing import Literal

from .._validation import ExceptionSpec, exception_matcher, require_clock
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError
from ..events import Event, EventEmitter, Listener
from .balancing import Balancer, RoundRobin
from .checks import HealthCheck, HttpCheck, TcpCheck
from .endpoint import Endpoint
from .errors import NoHealthyEndpointError, UnknownServiceError
from .events import (
    AllEndpointsDown,
    EjectionSkipped,
    EndpointEjected,
    EndpointHealthy,
    EndpointRegistered,
    EndpointRemoved,
    EndpointRestored,
    EndpointUnhealthy,
    ServiceFailedOver,
    ServiceRecovered,
)
from .outlier import OutlierDetection

__all__ = ["EndpointLease", "ServiceRegistry"]

logger = logging.getLogger(__name__)

# The endpoint whose call last failed in this thread or task, so that the
# next `use()` (typically a retry) avoids it without being told.
_last_failed: contextvars.ContextVar[Endpoint | None] = contextvars.ContextVar(
    "recovery_last_failed_endpoint", default=None
)


class _Service:
    """
    One service's endpoints, settings and cached selection state.
    """

    __slots__ = (
        "all",
        "available",
        "balancer",
        "check",
        "down",
        "endpoints",
        "expires",
        "fallback",
        "lock",
        "name",
        "outlier",
        "panic",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.endpoints: dict[str, Endpoint] = {}
        self.all: tuple[Endpoint, ...] = ()
        # The hot path reads `available`, then `expires`; writers set them in
        # that order under `lock`, so a reader never trusts a stale tuple.
        self.available: tuple[Endpoint, ...] = ()
        self.expires = -math.inf
        self.balancer: Balancer = RoundRobin()
        self.check: HealthCheck | None = None
        self.outlier: OutlierDetection | None = OutlierDetection()
        self.fallback: tuple[str, ...] = ()
        self.panic = False
        self.down = False
        self.lock = threading.Lock()


class ServiceRegistry:
    """
    Named services and their endpoints, with health, balancing and fail-over.

    Args:
        name: the registry's name, used as `source` on its events.
        clock: where ejection times are read from.
        failure_on: what counts as a failed call in `use()`: an exception
            type, a tuple of them or a predicate (by default any Exception).
        listeners: callables that receive this registry's events.

    Safe to share between threads and tasks.
    """

    def __init__(
        self,
        *,
        name: str = "registry",
        clock: Clock = SYSTEM_CLOCK,
        failure_on: ExceptionSpec = Exception,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.name = name
        self._clock = require_clock("clock", clock)
        self._failure_types, self._failure_predicate = exception_matcher(
            "failure_on", failure_on
        )
        self._emitter = EventEmitter(listeners)
        self._services: dict[str, _Service] = {}
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()

    @classmethod
    def from_toml(
        cls,
        path: str | PathLike[str],
        *,
        name: str = "registry",
        clock: Clock = SYSTEM_CLOCK,
    ) -> ServiceRegistry:
        """
        Build a registry from a TOML file; see `recovery.discovery.config`.
        """
        from .config import load_registry

        return load_registry(path, name=name, clock=clock)

    @property
    def clock(self) -> Clock:
        """
        The clock this registry reads ejection times from.
        """
        return self._clock

    def add_listener(self, listener: Listener) -> None:
        """
        Send this registry's events to *listener* too.
        """
        self._emitter.add(listener)

    # -- membership ---------------------------------------------------------

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
    ) -> list[Endpoint]:
        """
        Add *endpoints* to *service*, creating the service if it is new.

        Settings left as None keep their current value (or the default for a
        new service: no active check, round robin, no fallback, no panic,
        `OutlierDetection()`); `outlier=False` turns passive ejection off.
        An address already in the service is kept as it is. Returns the
        service's endpoints for the addresses given, in order.
        """
        if not isinstance(service, str) or not service:
            raise ConfigurationError(
                f"service must be a non-empty string, got {service!r}"
            )
        if isinstance(endpoints, str | bytes):
            # A lone string would otherwise be read as one address per letter.
            raise ConfigurationError(
                f"endpoints must be a list of addresses, got {endpoints!r}"
            )
        items = [self._adoptable(item) for item in endpoints]
        if isinstance(check, TcpCheck | HttpCheck):
            for item in items:
                if item.port is None:
                    raise ConfigurationError(
                        f"endpoint {item.address!r} names no port, which "
                        f"{type(check).__name__} needs: write host:port or a URL"
                    )
        settings = (check, balancer, fallback_services, panic, outlier)

        svc = self._services.get(service)
        if svc is None:
            fresh = _Service(service)
            # Validate on the private copy, so a bad setting leaves no trace.
            self._configure_locked(fresh, *settings)
            with self._lock:
                svc = self._services.setdefault(service, fresh)

        events: list[Event] = []
        with svc.lock:
            self._configure_locked(svc, *settings)
            result = [self._add_locked(svc, item, events) for item in items]
            self._recompute_locked(svc, self._clock.now(), events)

        self._emit_all(events)
        return result

    def deregister(self, service: str, endpoint: str | Endpoint | None = None) -> None:
        """
        Remove one endpoint of *service*, or the whole service when none is named.

        Raises:
            UnknownServiceError: no such service.
            KeyError: the service has no endpoint at that address.
        """
        svc = self._require(service)
        if endpoint is None:
            with self._lock:
                self._services.pop(service, None)
            with svc.lock:
                removed = list(svc.endpoints.values())
                svc.endpoints.clear()
                self._recompute_locked(svc, self._clock.now(), [])
            self._emit_all([self._removed(svc, ep) for ep in removed])
            return

        address = endpoint.address if isinstance(endpoint, Endpoint) else endpoint
        events: list[Event] = []
        with svc.lock:
            ep = svc.endpoints.pop(address)
            ep._service = None
            events.append(self._removed(svc, ep))
            self._recompute_locked(svc, self._clock.now(), events)

        self._emit_all(events)

    def services(self) -> list[str]:
        """
        Return the names of the registered services, in registration order.
        """
        return list(self._services)

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        """
        Return every endpoint of *service*, healthy or not.
        """
        svc = self._require(service)
        self._fresh(svc)

        return svc.all

    def healthy_endpoints(self, service: str) -> tuple[Endpoint, ...]:
        """
        Return the endpoints of *service* that take calls right now.
        """
        svc = self._require(service)
        return self._fresh(svc)

    def check_of(self, service: str) -> HealthCheck | None:
        """
        Return the active check of *service*, if it has one.
        """
        return self._require(service).check

    def __contains__(self, service: object) -> bool:
        return service in self._services

    def __repr__(self) -> str:
        return f"ServiceRegistry(name={self.name!r}, services={len(self._services)})"

    # -- lookup -------------------------------------------------------------

    def endpoint(
        self,
        service: str,
        *,
        avoid: Endpoint | None = None,
        fallback_services: Sequence[str] | None = None,
    ) -> Endpoint:
        """
        Return a healthy endpoint of *service*, or of a fallback service.

        *avoid* is an endpoint not to return if another healthy one exists
        in the same service (the one a retry just failed on).
        *fallback_services*, when given, replaces the service's own list.

        Raises:
            UnknownServiceError: *service* or a fallback is not registered.
            NoHealthyEndpointError: no service in the chain has a healthy
                endpoint (and the first is not in panic mode).
        """
        svc = self._services.get(service)
        if svc is not None and avoid is None:
            candidates = svc.available
            if candidates and self._clock.now() < svc.expires:
                return svc.balancer.pick(candidates)

        return self._select(service, avoid, fallback_services)

    def use(
        self,
        service: str,
        *,
        avoid: Endpoint | None = None,
        fallback_services: Sequence[str] | None = None,
    ) -> EndpointLease:
        """
        Pick an endpoint for one call, as a sync or async context manager.

        The block's outcome is reported as passive health: leaving it
        normally is a success, an exception matching `failure_on` a failure
        (and the next `use()` in the same thread or task avoids that
        endpoint). Cancellation and other BaseExceptions count as neither.
        """
        return EndpointLease(self, service, avoid, fallback_services)

    def _select(
        self,
        service: str,
        avoid: Endpoint | None,
        fallback_services: Sequence[str] | None,
    ) -> Endpoint:
        first = self._require(service)
        names = first.fallback if fallback_services is None else fallback_services
        chain = [first, *(self._require(name) for name in names)]

        for svc in chain:
            candidates = _without(self._fresh(svc), avoid)
            if candidates:
                if svc is not first:
                    self._emit_failover(first, svc)
                return svc.balancer.pick(candidates)

        candidates = _without(first.all, avoid)
        if first.panic and candidates:
            return first.balancer.pick(candidates)

        raise NoHealthyEndpointError(
            service,
            tried=[svc.name for svc in chain],
            retry_after=self._retry_after(chain),
        )

    def _fresh(self, svc: _Service) -> tuple[Endpoint, ...]:
        now = self._clock.now()
        if now >= svc.expires:
            self._refresh(svc, now)

        return svc.available

    def _refresh(self, svc: _Service, now: float) -> None:
        events: list[Event] = []
        with svc.lock:
            self._recompute_locked(svc, now, events)

        self._emit_all(events)

    def _retry_after(self, chain: Sequence[_Service]) -> float | None:
        now = self._clock.now()
        ends = [
            ep._outlier.ejected_until
            for svc in chain
            for ep in svc.all
            if ep._check.healthy and ep._outlier.ejected
        ]

        return max(0.0, min(ends) - now) if ends else None

    # -- health reports -----------------------------------------------------

    def record_success(self, endpoint: Endpoint) -> None:
        """
        Report a call through *endpoint* that succeeded (passive health).
        """
        # The common case, no failures pending, takes no lock.
        if endpoint._outlier.failures == 0:
            return

        svc = self._owner(endpoint)
        if svc is not None:
            with svc.lock:
                endpoint._outlier.record_success()

    def record_failure(self, endpoint: Endpoint) -> None:
        """
        Report a call through *endpoint* that failed; may eject the endpoint.
        """
        svc = self._owner(endpoint)
        if svc is None or svc.outlier is None:
            return

        events: list[Event] = []
        with svc.lock:
            now = self._clock.now()
            self._restore_locked(svc, endpoint, now, events)
            if endpoint._outlier.record_failure(svc.outlier):
                self._try_eject_locked(svc, endpoint, now, events)
                self._recompute_locked(svc, now, events)

        self._emit_all(events)

    def report_check(
        self,
        endpoint: Endpoint,
        passed: bool,
        *,
        latency: float | None = None,
        error: str | None = None,
    ) -> None:
        """
        Count one active-check result for *endpoint* against its service's
        rise and fall thresholds.
        """
        svc = self._owner(endpoint)
        if svc is None:
            return

        rise, fall = (svc.check.rise, svc.check.fall) if svc.check else (1, 1)
        events: list[Event] = []
        with svc.lock:
            endpoint.last_check_latency = latency
            endpoint.last_check_error = error
            changed = endpoint._check.record(passed, rise=rise, fall=fall)
            if changed is not None:
                events.append(self._health_event(svc, endpoint, changed))
                self._recompute_locked(svc, self._clock.now(), events)

        if changed is not None:
            self._health_changed(svc, endpoint, changed)
        self._emit_all(events)

    def check_targets(self) -> list[tuple[Endpoint, HealthCheck]]:
        """
        Return every endpoint that has an active check, with that check.
        """
        targets = []
        for svc in list(self._services.values()):
            if svc.check is not None:
                self._fresh(svc)
                targets += [(ep, svc.check) for ep in svc.all]

        return targets

    # -- hooks for shared registries ------------------------------------------

    def _try_eject_locked(
        self, svc: _Service, endpoint: Endpoint, now: float, events: list[Event]
    ) -> None:
        """
        Eject *endpoint* if the cap allows; the service's lock is held.
        """
        assert svc.outlier is not None
        # An ejection whose time is up but not yet noticed no longer counts.
        ejected = sum(
            1
            for ep in svc.all
            if ep._outlier.ejected and ep._outlier.ejected_until > now
        )
        if not svc.outlier.may_eject(ejected, len(svc.all)):
            if self._emitter.wants(EjectionSkipped):
                events.append(
                    EjectionSkipped(
                        source=self.name,
                        service=svc.name,
                        address=endpoint.address,
                        ejected=ejected,
                        total=len(svc.all),
                    )
                )
            return

        failures = endpoint._outlier.failures
        duration = endpoint._outlier.eject(svc.outlier, now)
        events.append(self._ejected_event(svc, endpoint, failures, duration))

    def _health_changed(self, svc: _Service, endpoint: Endpoint, healthy: bool) -> None:
        """
        Called after an active-check verdict changed; a no-op here.
        """

    # -- internals ------------------------------------------------------------

    def _adoptable(self, item: str | Endpoint) -> Endpoint:
        if isinstance(item, str):
            return Endpoint(item)
        if not isinstance(item, Endpoint):
            raise ConfigurationError(
                f"endpoints must be address strings or Endpoint objects, got {item!r}"
            )
        if item._service is not None:
            raise ConfigurationError(
                f"endpoint {item.address!r} is already registered in service "
                f"{item._service!r}; build a new Endpoint"
            )

        return item

    def _configure_locked(
        self,
        svc: _Service,
        check: HealthCheck | None,
        balancer: Balancer | None,
        fallback_services: Sequence[str] | None,
        panic: bool | None,
        outlier: OutlierDetection | Literal[False] | None,
    ) -> None:
        if check is not None:
            if not isinstance(check, HealthCheck):
                raise ConfigurationError(f"check must be a HealthCheck, got {check!r}")
            svc.check = check
        if balancer is not None:
            if not isinstance(balancer, Balancer):
                raise ConfigurationError(
                    f"balancer must have a pick() method, got {balancer!r}"
                )
            svc.balancer = balancer
        if fallback_services is not None:
            if isinstance(fallback_services, str) or svc.name in fallback_services:
                raise ConfigurationError(
                    "fallback_services must be a list of other services' names, "
                    f"got {fallback_services!r}"
                )
            svc.fallback = tuple(fallback_services)
        if panic is not None:
            svc.panic = bool(panic)
        if outlier is not None:
            svc.outlier = outlier or None

    def _add_locked(
        self, svc: _Service, item: Endpoint, events: list[Event]
    ) -> Endpoint:
        existing = svc.endpoints.get(item.address)
        if existing is not None:
            return existing

        item._service = svc.name
        item._clock = self._clock
        svc.endpoints[item.address] = item
        events.append(
            EndpointRegistered(source=self.name, service=svc.name, address=item.address)
        )
        return item

    def _restore_locked(
        self, svc: _Service, endpoint: Endpoint, now: float, events: list[Event]
    ) -> None:
        if endpoint._outlier.restore_due(now):
            events.append(
                EndpointRestored(
                    source=self.name, service=svc.name, address=endpoint.address
                )
            )

    def _recompute_locked(self, svc: _Service, now: float, events: list[Event]) -> None:
        """
        Rebuild the available tuple and its expiry; note outages and recoveries.
        """
        svc.all = tuple(svc.endpoints.values())
        expires = math.inf
        available = []
        for ep in svc.all:
            self._restore_locked(svc, ep, now, events)
            if ep._outlier.ejected:
                expires = min(expires, ep._outlier.ejected_until)
            elif ep._check.healthy:
                available.append(ep)

        svc.available = tuple(available)
        svc.expires = expires
        self._note_outage_locked(svc, events)

    def _note_outage_locked(self, svc: _Service, events: list[Event]) -> None:
        if svc.available and svc.down:
            svc.down = False
            events.append(
                ServiceRecovered(
                    source=self.name, service=svc.name, healthy=len(svc.available)
                )
            )
        elif not svc.available and svc.all and not svc.down:
            svc.down = True
            events.append(
                AllEndpointsDown(
                    source=self.name,
                    service=svc.name,
                    endpoints=len(svc.all),
                    panic=svc.panic,
                )
            )

    def _require(self, service: str) -> _Service:
        svc = self._services.get(service)
        if svc is None:
            raise UnknownServiceError(service)

        return svc

    def _owner(self, endpoint: Endpoint) -> _Service | None:
        name = endpoint._service
        svc = self._services.get(name) if name is not None else None
        # An endpoint of another registry with the same service name is not ours.
        if svc is None or svc.endpoints.get(endpoint.address) is not endpoint:
            return None

        return svc

    def _acquire(self, endpoint: Endpoint) -> None:
        with self._count_lock:
            endpoint.outstanding += 1

    def _release(self, endpoint: Endpoint) -> None:
        with self._count_lock:
            endpoint.outstanding -= 1

    def _is_failure(self, exc: BaseException) -> bool:
        if not isinstance(exc, self._failure_types):
            return False

        predicate = self._failure_predicate
        return predicate is None or bool(predicate(exc))

    def _health_event(
        self,
        svc: _Service,
        endpoint: Endpoint,
        healthy: bool,
        reason: str | None = None,
    ) -> Event:
        if healthy:
            return EndpointHealthy(
                source=self.name,
                service=svc.name,
                address=endpoint.address,
                reason=reason or f"{endpoint._check.passes} passed checks in a row",
            )
        return EndpointUnhealthy(
            source=self.name,
            service=svc.name,
            address=endpoint.address,
            reason=reason or f"{endpoint._check.failures} failed checks in a row",
        )

    def _ejected_event(
        self, svc: _Service, endpoint: Endpoint, failures: int, duration: float
    ) -> EndpointEjected:
        return EndpointEjected(
            source=self.name,
            service=svc.name,
            address=endpoint.address,
            failures=failures,
            duration=duration,
            ejections=endpoint._outlier.ejections,
        )

    def _removed(self, svc: _Service, endpoint: Endpoint) -> Event:
        endpoint._service = None
        return EndpointRemoved(
            source=self.name, service=svc.name, address=endpoint.address
        )

    def _emit_failover(self, first: _Service, svc: _Service) -> None:
        if self._emitter.wants(ServiceFailedOver):
            self._emitter.emit(
                ServiceFailedOver(
                    source=self.name, service=first.name, fallback=svc.name
                )
            )

    def _emit_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self._emitter.emit(event)


def _without(
    candidates: tuple[Endpoint, ...], avoid: Endpoint | None
) -> tuple[Endpoint, ...]:
    # Avoiding is a preference: the last candidate is still better than none.
    if avoid is None or len(candidates) < 2 or avoid not in candidates:
        return candidates

    return tuple(ep for ep in candidates if ep is not avoid)


class EndpointLease:
    """
    One call's use of an endpoint: `with registry.use(name) as endpoint:`.

    Works with `with` and `async with`. Entering picks the endpoint and
    counts the call as outstanding; leaving reports the outcome.
    """

    __slots__ = ("_avoid", "_endpoint", "_fallback", "_registry", "_service")

    def __init__(
        self,
        registry: ServiceRegistry,
        service: str,
        avoid: Endpoint | None,
        fallback_services: Sequence[str] | None,
    ) -> None:
        self._registry = registry
        self._service = service
        self._avoid = avoid
        self._fallback = fallback_services
        self._endpoint: Endpoint | None = None

    def __enter__(self) -> Endpoint:
        avoid = self._avoid if self._avoid is not None else _last_failed.get()
        endpoint = self._registry.endpoint(
            self._service, avoid=avoid, fallback_services=self._fallback
        )
        self._registry._acquire(endpoint)
        self._endpoint = endpoint

        return endpoint

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        endpoint = self._endpoint
        if endpoint is None:
            return
        self._endpoint = None
        registry = self._registry
        registry._release(endpoint)

        if exc is None:
            if _last_failed.get() is not None:
                _last_failed.set(None)
            registry.record_success(endpoint)
        elif registry._is_failure(exc):
            _last_failed.set(endpoint)
            registry.record_failure(endpoint)

    async def __aenter__(self) -> Endpoint:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
