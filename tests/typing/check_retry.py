"""
Static checks of the public types: mypy reads this file, pytest never runs it.

Each `assert_type` fails the type check if a decorator or call loses the
wrapped function's signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, assert_type

from recovery import Retry, RetryStatistics, retry


@retry
def bare(url: str, *, timeout: float = 1.0) -> bytes:
    return url.encode()


@retry(on=ConnectionError, attempts=5)
def configured(url: str) -> bytes:
    return url.encode()


@retry(attempts=2)
async def fetch(url: str) -> bytes:
    return url.encode()


policy = Retry(attempts=3)


@policy
def from_policy(n: int) -> int:
    return n


assert_type(bare("x"), bytes)
assert_type(configured("x"), bytes)
coroutine_function: Callable[[str], Coroutine[Any, Any, bytes]] = fetch
assert_type(from_policy(3), int)
assert_type(policy.call(configured, "x"), bytes)
assert_type(policy.call_with_statistics(configured, "x"), tuple[bytes, RetryStatistics])


async def use_async() -> None:
    assert_type(await policy.acall(fetch, "x"), bytes)
    assert_type(await fetch("x"), bytes)


def takes_awaitable(fn: Callable[[str], Awaitable[bytes]]) -> None:
    fn("x")


takes_awaitable(fetch)
policy.call(configured, 3)  # type: ignore[arg-type]
policy.call(configured, "x", extra=1)  # type: ignore[call-arg]
Retry(retry_if_result=lambda value: value < 10)
