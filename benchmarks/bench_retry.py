"""
Retry overhead per call, side by side with tenacity, backoff and stamina.

Two paths, sync and async: the success path (the function returns at once)
and the fail-twice path (two ValueErrors, then success, with zero waits).
References sampled in the same rounds: a bare call, a functools.wraps
pass-through wrapper, and a hand-written try/except loop.

Run: python benchmarks/bench_retry.py [--rounds N] [--out PATH]
"""

from __future__ import annotations

import argparse
import functools
import logging
import platform
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import backoff
import stamina
import tenacity
from harness import Scenario, format_table, run, summarise  # type: ignore[import-not-found]

import recovery
from recovery import constant

logging.getLogger("stamina").addHandler(logging.NullHandler())
logging.getLogger("stamina").propagate = False


def const() -> int:
    return 42


async def aconst() -> int:
    return 42


class FailTwice:
    """
    Fails with ValueError on two calls out of three.
    """

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls % 3:
            raise ValueError("flaky")
        return 42


def AsyncFailTwice() -> Callable[[], Awaitable[int]]:  # noqa: N802
    """
    An async function failing on two calls out of three.
    """
    flaky = FailTwice()

    async def call() -> int:
        return flaky()

    return call


def passthrough(fn: Callable[[], int]) -> Callable[[], int]:
    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> int:
        return fn(*args, **kwargs)

    return wrapper


def apassthrough(fn):  # type: ignore[no-untyped-def]
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return await fn(*args, **kwargs)

    return wrapper


def floor_loop() -> Callable[[], int]:
    flaky = FailTwice()

    def loop() -> int:
        for attempt in range(3):
            try:
                return flaky()
            except ValueError:
                if attempt == 2:
                    raise
        raise AssertionError

    return loop


def afloor_loop():  # type: ignore[no-untyped-def]
    flaky = AsyncFailTwice()

    async def loop() -> int:
        for attempt in range(3):
            try:
                return await flaky()
            except ValueError:
                if attempt == 2:
                    raise
        raise AssertionError

    return loop


def scenarios() -> list[Scenario]:
    zero = constant(0)
    s: list[Scenario] = []

    # Success path, sync.
    s += [
        Scenario("bare call", const, group="success"),
        Scenario("functools.wraps pass-through", passthrough(const), group="success"),
        Scenario(
            "recovery @retry(attempts=3)",
            recovery.retry(attempts=3)(const),
            group="success",
        ),
        Scenario(
            "recovery Retry.call (shared policy)",
            functools.partial(recovery.Retry(attempts=3).call, const),
            group="success",
        ),
        Scenario(
            "backoff.on_exception(expo, max_tries=3)",
            backoff.on_exception(backoff.expo, Exception, max_tries=3)(const),
            group="success",
        ),
        Scenario(
            "tenacity @retry(stop_after_attempt(3))",
            tenacity.retry(stop=tenacity.stop_after_attempt(3))(const),
            group="success",
        ),
        Scenario(
            "stamina.retry(on=Exception, attempts=3)",
            stamina.retry(on=Exception, attempts=3)(const),
            group="success",
        ),
    ]

    # Fail twice, then succeed, with zero waits; sync.
    s += [
        Scenario("FLOOR try/except loop", floor_loop(), group="fail-twice"),
        Scenario(
            "recovery @retry, zero waits (logging quiet)",
            recovery.retry(attempts=3, backoff=zero)(FailTwice()),
            group="fail-twice",
        ),
        Scenario(
            "backoff expo factor=0, logger=None",
            backoff.on_exception(
                backoff.expo, ValueError, max_tries=3, factor=0, logger=None
            )(FailTwice()),
            group="fail-twice",
        ),
        Scenario(
            "tenacity wait_none(), sleep no-op",
            tenacity.retry(
                stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_none(),
                sleep=lambda _: None,
            )(FailTwice()),
            group="fail-twice",
        ),
        Scenario(
            "stamina waits 0, hooks off",
            stamina.retry(
                on=ValueError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0
            )(FailTwice()),
            group="fail-twice",
        ),
    ]

    # Async.
    s += [
        Scenario("async bare call", aconst, is_async=True, group="async success"),
        Scenario(
            "async functools.wraps pass-through",
            apassthrough(aconst),
            is_async=True,
            group="async success",
        ),
        Scenario(
            "async recovery @retry",
            recovery.retry(attempts=3)(aconst),
            is_async=True,
            group="async success",
        ),
        Scenario(
            "async backoff.on_exception",
            backoff.on_exception(backoff.expo, Exception, max_tries=3)(aconst),
            is_async=True,
            group="async success",
        ),
        Scenario(
            "async tenacity @retry",
            tenacity.retry(stop=tenacity.stop_after_attempt(3))(aconst),
            is_async=True,
            group="async success",
        ),
        Scenario(
            "async stamina.retry",
            stamina.retry(on=Exception, attempts=3)(aconst),
            is_async=True,
            group="async success",
        ),
        Scenario(
            "async FLOOR try/except loop",
            afloor_loop(),
            is_async=True,
            group="async fail-twice",
        ),
        Scenario(
            "async recovery @retry, zero waits (logging quiet)",
            recovery.retry(attempts=3, backoff=zero)(AsyncFailTwice()),
            is_async=True,
            group="async fail-twice",
        ),
        Scenario(
            "async backoff expo factor=0, logger=None",
            backoff.on_exception(
                backoff.expo, ValueError, max_tries=3, factor=0, logger=None
            )(AsyncFailTwice()),
            is_async=True,
            group="async fail-twice",
        ),
        Scenario(
            "async tenacity wait_none()",
            tenacity.retry(
                stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none()
            )(AsyncFailTwice()),
            is_async=True,
            group="async fail-twice",
        ),
        Scenario(
            "async stamina waits 0, hooks off",
            stamina.retry(
                on=ValueError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0
            )(AsyncFailTwice()),
            is_async=True,
            group="async fail-twice",
        ),
    ]
    return s


def logged_scenarios() -> list[Scenario]:
    """
    The fail-twice path with recovery's default logging (a WARNING record is
    built per retry and dropped by the package's NullHandler).
    """
    zero = constant(0)
    return [
        Scenario(
            "recovery @retry, zero waits (default logging)",
            recovery.retry(attempts=3, backoff=zero)(FailTwice()),
            group="fail-twice",
        ),
    ]


REFERENCE_BARE = {
    "success": "bare call",
    "fail-twice": "bare call",
    "async success": "async bare call",
    "async fail-twice": "async bare call",
}
REFERENCE_WRAPS = {
    "success": "functools.wraps pass-through",
    "fail-twice": "functools.wraps pass-through",
    "async success": "async functools.wraps pass-through",
    "async fail-twice": "async functools.wraps pass-through",
}
REFERENCE_FLOOR = {
    "fail-twice": "FLOOR try/except loop",
    "async fail-twice": "async FLOOR try/except loop",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "retry.md"
    )
    args = parser.parse_args()

    # The quiet rows are what a user gets after raising recovery's log level;
    # the default-logging row is measured in a second pass with it restored.
    retry_logger = logging.getLogger("recovery")
    retry_logger.setLevel(logging.ERROR)
    quiet_list = scenarios()
    logged = logged_scenarios()
    base = [
        sc
        for sc in quiet_list
        if sc.name
        in ("bare call", "FLOOR try/except loop", "functools.wraps pass-through")
    ]

    results = summarise(
        run(quiet_list, rounds=args.rounds),
        {
            "bare": lambda sc: REFERENCE_BARE.get(sc.group, ""),
            "wraps": lambda sc: REFERENCE_WRAPS.get(sc.group, ""),
            "floor": lambda sc: REFERENCE_FLOOR.get(sc.group, ""),
        },
    )

    retry_logger.setLevel(logging.NOTSET)
    for sc in base:
        sc.samples = []
    logged_results = summarise(
        run([*base, *logged], rounds=args.rounds),
        {
            "bare": lambda sc: REFERENCE_BARE.get(sc.group, ""),
            "wraps": lambda sc: REFERENCE_WRAPS.get(sc.group, ""),
            "floor": lambda sc: REFERENCE_FLOOR.get(sc.group, ""),
        },
    )

    columns = ["bare", "wraps", "floor"]
    text = "\n".join(
        [
            "## Retry",
            "",
            f"Python {platform.python_version()} on {platform.machine()}, "
            f"{args.rounds} shuffled rounds, ~10 ms per sample; ratios are medians "
            "of per-round paired ratios. Run: `python benchmarks/bench_retry.py`.",
            "",
            format_table(results, columns),
            "",
            "Second pass, recovery's loggers at their default levels (a WARNING "
            "record per retry is built and dropped by the package's NullHandler):",
            "",
            format_table(
                [r for r in logged_results if r.name.startswith("recovery")]
                + [r for r in logged_results if r.name.startswith("FLOOR")],
                columns,
            ),
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
