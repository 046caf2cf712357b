"""
Static checks of the breaker's public types: mypy reads this file, pytest
never runs it (its name does not start with test_).

Each `assert_type` fails the type check if a decorator or call loses the
wrapped function's signature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import assert_type

from recovery.policies.breaker import CircuitBreaker
from recovery.policies.breaker_core import BreakerMetrics, BreakerState

breaker = CircuitBreaker("typing")


@breaker
def fetch(url: str, *, timeout: float = 1.0) -> bytes:
    return url.encode()


@breaker
async def afetch(url: str) -> bytes:
    return url.encode()


@breaker
def lines(path: str) -> Iterator[str]:
    yield path


@breaker
async def alines(path: str) -> AsyncIterator[str]:
    yield path


class Client:
    @breaker
    def get(self, key: str) -> int:
        return len(key)


assert_type(fetch("u", timeout=2.0), bytes)
coroutine = assert_type(afetch("u"), Coroutine[object, object, bytes])
coroutine.close()
assert_type(lines("p"), Iterator[str])
assert_type(alines("p"), AsyncIterator[str])
assert_type(Client().get("k"), int)
assert_type(breaker.call(fetch, "u", timeout=3.0), bytes)
assert_type(breaker.state, BreakerState)
assert_type(breaker.metrics(), BreakerMetrics)


async def use_acall() -> None:
    assert_type(await breaker.acall(afetch, "u"), bytes)
    async with breaker:
        pass
    with breaker:
        pass
