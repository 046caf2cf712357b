"""
Static typing checks for the degradation tools: mypy reads this module,
pytest never collects it (its name does not start with ``test_``).

Each `assert_type` pins what a type checker must infer, so that decorators
and `call`/`acall` keep the signatures and return types of what they wrap.
"""

from __future__ import annotations

from typing import assert_type

from recovery.policies.bulkhead import Bulkhead
from recovery.policies.fallback import (
    Fallback,
    FallbackInfo,
    FallbackResult,
    fallback_info,
)
from recovery.policies.hedging import Hedging
from recovery.policies.pipeline import Pipeline
from recovery.policies.ratelimit import RateLimitDecision, RateLimiter
from recovery.policies.timeout import Timeout, remaining


def parse(text: str, *, base: int = 10) -> int:
    return int(text, base)


async def fetch(url: str) -> bytes:
    return url.encode()


async def check_async() -> None:
    assert_type(await Fallback(default=b"").acall(fetch, "u"), bytes)
    assert_type(await Timeout(1).acall(fetch, "u"), bytes)
    assert_type(await Bulkhead(1).acall(fetch, "u"), bytes)
    assert_type(await RateLimiter(1).acall(fetch, "u"), bytes)
    assert_type(await Hedging(0.1).acall(fetch, "u"), bytes)
    assert_type(await Pipeline(Timeout(1)).acall(fetch, "u"), bytes)
    assert_type(await Hedging(0.1)(fetch)("u"), bytes)
    assert_type(await Fallback().acall_result(fetch, "u"), FallbackResult[bytes])


def check_sync() -> None:
    assert_type(Fallback(default=0).call(parse, "7", base=8), int)
    assert_type(Fallback(default=0)(parse)("7"), int)
    assert_type(Fallback().call_result(parse, "7").value, int)
    assert_type(Timeout(1).call(parse, "7"), int)
    assert_type(Bulkhead(1)(parse)("7", base=16), int)
    assert_type(RateLimiter(1).call(parse, "7"), int)
    assert_type(RateLimiter(1).try_acquire(), RateLimitDecision)
    assert_type(Pipeline(Bulkhead(1), Timeout(1))(parse)("7"), int)
    assert_type(remaining(), float | None)
    assert_type(fallback_info(), FallbackInfo | None)
