"""
httpx transports that send every request through a recovery strategy.

Wrap the transport a client would use, and give it any strategy: a
`Retry`, a `CircuitBreaker`, or a `Pipeline` of several::

    policy = Pipeline(
        Retry(on=TRANSIENT_ERRORS, attempts=4, backoff=exponential(0.2, cap=5)),
        CircuitBreaker("payments-api", failure_threshold=5),
        name="payments-api",
    )
    client = httpx.Client(transport=RecoveryTransport(policy))

What the transport does for each request:

- A response whose status is in `failure_statuses` (429 and every 5xx by
  default) is read, closed and raised inside the strategy as
  `ResponseStatusError`, so a breaker counts it as a failure and a retry
  retries it. Its `retry_after` is the response's ``Retry-After`` header
  (seconds as a float, or the HTTP-date as it came), which `Retry` honours.
- Only idempotent requests are retried: GET, HEAD, OPTIONS, PUT, DELETE and
  TRACE, or any request carrying an ``Idempotency-Key`` header. Other
  requests (POST, PATCH) go through the same strategy with its `Retry`
  stages left out, so a breaker still guards them.
- If the strategy gives up on a failure status, the caller receives that
  last response, as httpx would have returned it without the transport; a
  rejection (`CircuitOpenError`, ...) or a network error propagates.

A request body that is a one-shot stream (a generator) cannot be sent
twice; give retried requests bytes or a re-iterable body.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import RecoveryError
from ..policies.pipeline import Pipeline, Strategy

try:
    import httpx
except ImportError as exc:  # pragma: no cover - the test environment has httpx
    raise ImportError(
        "recovery.integrations.httpx needs the httpx extra: "
        "pip install 'recovery[httpx]'"
    ) from exc

__all__ = [
    "FAILURE_STATUSES",
    "IDEMPOTENT_METHODS",
    "TRANSIENT_ERRORS",
    "AsyncRecoveryTransport",
    "RecoveryTransport",
    "ResponseStatusError",
]

IDEMPOTENT_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
)
"""Methods that may be sent twice with the same effect (RFC 9110, 9.2.2)."""

FAILURE_STATUSES: frozenset[int] = frozenset({429, *range(500, 600)})
"""Statuses that count as a failure: too many requests and server errors."""


class ResponseStatusError(RecoveryError):
    """
    A response whose status counts as a failure; raised inside the strategy.

    `response` has been read, so its body is available; `retry_after` is
    its ``Retry-After`` header: float seconds, the HTTP-date text, or None.
    """

    def __init__(self, response: httpx.Response, request: httpx.Request) -> None:
        super().__init__(
            f"{request.method} {request.url} answered "
            f"{response.status_code} {response.reason_phrase}"
        )
        self.response = response
        self.status_code = response.status_code
        self.retry_after = _retry_after(response.headers.get("Retry-After"))


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ResponseStatusError,
    httpx.TransportError,
)
"""What a `Retry` in front of a transport usually retries: `on=TRANSIENT_ERRORS`."""


class RecoveryTransport(httpx.BaseTransport):
    """
    A sync httpx transport applying *strategy* to every request.

    Args:
        strategy: any strategy (a `Pipeline`, a `Retry`, a breaker...).
        transport: the transport that sends requests; a new
            `httpx.HTTPTransport()` by default.
        retry_methods: methods that may be retried.
        failure_statuses: statuses raised as `ResponseStatusError`.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        transport: httpx.BaseTransport | None = None,
        retry_methods: Collection[str] = IDEMPOTENT_METHODS,
        failure_statuses: Collection[int] = FAILURE_STATUSES,
    ) -> None:
        self._transport = transport if transport is not None else httpx.HTTPTransport()
        self._strategy = strategy
        self._unsafe_strategy = _without_retries(strategy)
        self._retry_methods = frozenset(method.upper() for method in retry_methods)
        self._failure_statuses = frozenset(failure_statuses)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """
        Send *request* through the strategy; return the final response.
        """
        strategy = (
            self._strategy
            if _may_retry(request, self._retry_methods)
            else self._unsafe_strategy
        )
        try:
            if strategy is None:
                return self._attempt(request)
            return strategy.call(self._attempt, request)
        except ResponseStatusError as exc:
            return exc.response

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = self._transport.handle_request(request)
        if response.status_code not in self._failure_statuses:
            return response

        try:
            response.read()
        finally:
            response.close()
        raise ResponseStatusError(response, request)

    def close(self) -> None:
        """
        Close the wrapped transport.
        """
        self._transport.close()


class AsyncRecoveryTransport(httpx.AsyncBaseTransport):
    """
    The async twin of `RecoveryTransport`, for `httpx.AsyncClient`.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_methods: Collection[str] = IDEMPOTENT_METHODS,
        failure_statuses: Collection[int] = FAILURE_STATUSES,
    ) -> None:
        self._transport = (
            transport if transport is not None else httpx.AsyncHTTPTransport()
        )
        self._strategy = strategy
        self._unsafe_strategy = _without_retries(strategy)
        self._retry_methods = frozenset(method.upper() for method in retry_methods)
        self._failure_statuses = frozenset(failure_statuses)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """
        Send *request* through the strategy; return the final response.
        """
        strategy = (
            self._strategy
            if _may_retry(request, self._retry_methods)
            else self._unsafe_strategy
        )
        try:
            if strategy is None:
                return await self._attempt(request)
            return await strategy.acall(self._attempt, request)
        except ResponseStatusError as exc:
            return exc.response

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        if response.status_code not in self._failure_statuses:
            return response

        try:
            await response.aread()
        finally:
            await response.aclose()
        raise ResponseStatusError(response, request)

    async def aclose(self) -> None:
        """
        Close the wrapped transport.
        """
        await self._transport.aclose()


def _without_retries(strategy: Strategy) -> Strategy | None:
    """
    Return *strategy* with its `Retry` stages left out (None if nothing is left).
    """
    from ..policies.retry import Retry

    if isinstance(strategy, Retry):
        return None
    if not isinstance(strategy, Pipeline):
        return strategy

    stages = [
        stage
        for stage in (_without_retries(each) for each in strategy.strategies)
        if stage is not None
    ]
    if not stages:
        return None
    return Pipeline(*stages, name=strategy.name, check_order=False)


def _may_retry(request: httpx.Request, methods: frozenset[str]) -> bool:
    return request.method in methods or "Idempotency-Key" in request.headers


def _retry_after(header: str | None) -> float | str | None:
    if header is None:
        return None
    try:
        return float(header)
    except ValueError:
        return header.strip()
