"""
Fallback chains: tier order, what each tier receives, last good values,
how the caller learns which tier answered, and the error when all fail.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.errors import CallTimeoutError, CircuitOpenError, ConfigurationError
from recovery.events import Event
from recovery.policies.fallback import (
    Fallback,
    FallbackExhaustedError,
    FallbackInfo,
    FallbackTier,
    FallbackUsed,
    LastGood,
    ResultRejectedError,
    fallback_info,
)
from recovery.testing import FakeClock


def fails(exc: Exception) -> Callable[..., object]:
    def primary(*args: object, **kwargs: object) -> object:
        raise exc

    return primary


class TestTiers:
    def test_primary_success_returns_its_value(self) -> None:
        fallback = Fallback(lambda failure: "alt", default="default")

        result = fallback.call_result(lambda x: x * 2, 21)

        assert result.value == 42
        assert result.tier is FallbackTier.PRIMARY
        assert result.errors == ()
        assert result.staleness == 0.0
        assert not result.degraded

    def test_alternatives_are_tried_in_order_each_with_the_previous_failure(
        self,
    ) -> None:
        seen: list[tuple[str, object, tuple[object, ...]]] = []
        first = CircuitOpenError("payments", retry_after=3.0)
        second = ConnectionError("replica down")

        def alt1(failure: Exception, *args: object) -> object:
            seen.append(("alt1", failure, args))
            raise second

        def alt2(failure: Exception, *args: object) -> object:
            seen.append(("alt2", failure, args))
            return "from alt2"

        result = Fallback(alt1, alt2).call_result(fails(first), "a", 1)

        assert result.value == "from alt2"
        assert result.tier is FallbackTier.ALTERNATIVE
        assert result.info.alternative == 1
        assert seen == [("alt1", first, ("a", 1)), ("alt2", second, ("a", 1))]
        assert result.errors == (first, second)

    def test_keyword_arguments_reach_alternatives(self) -> None:
        fallback = Fallback(lambda failure, *, user: f"cached {user}")

        assert fallback.call(fails(KeyError()), user="ada") == "cached ada"

    def test_default_value_after_alternatives(self) -> None:
        fallback = Fallback(fails(OSError("alt")), default=0)

        result = fallback.call_result(fails(OSError("primary")))

        assert result.value == 0
        assert result.tier is FallbackTier.DEFAULT
        assert [str(e) for e in result.errors] == ["primary", "alt"]

    def test_default_factory_receives_the_last_failure(self) -> None:
        timeout = CallTimeoutError("slow", timeout=2.0)
        fallback = Fallback(default_factory=lambda failure: ("empty", failure))

        assert fallback.call(fails(timeout)) == ("empty", timeout)

    def test_default_none_is_a_real_default(self) -> None:
        assert Fallback(default=None).call(fails(ValueError())) is None

    def test_default_and_factory_together_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="default_factory"):
            Fallback(default=1, default_factory=lambda failure: 2)

    def test_non_callable_alternative_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match=r"alternatives\[0\]"):
            Fallback("nope")  # type: ignore[arg-type]


class TestTriggers:
    def test_unmatched_exception_propagates_untouched(self) -> None:
        error = TypeError("bug")
        fallback = Fallback(lambda failure: "alt", on=ConnectionError)

        with pytest.raises(TypeError) as caught:
            fallback.call(fails(error))

        assert caught.value is error

    def test_predicate_on_exceptions(self) -> None:
        fallback = Fallback(
            lambda failure: "alt",
            on=lambda exc: isinstance(exc, OSError) and exc.errno == 111,
        )

        assert fallback.call(fails(OSError(111, "refused"))) == "alt"
        with pytest.raises(OSError, match="other"):
            fallback.call(fails(OSError(5, "other")))

    def test_unmatched_exception_in_an_alternative_propagates(self) -> None:
        fallback = Fallback(fails(TypeError("alt bug")), default=1, on=OSError)

        with pytest.raises(TypeError, match="alt bug"):
            fallback.call(fails(OSError()))

    def test_rejected_result_moves_to_the_next_tier(self) -> None:
        fallback = Fallback(
            lambda failure: "fine", on_result=lambda value: value is None
        )

        nothing: Callable[[], object] = lambda: None  # noqa: E731

        result = fallback.call_result(nothing)

        assert result.value == "fine"
        assert isinstance(result.errors[0], ResultRejectedError)
        assert result.errors[0].result is None
        assert result.errors[0].__traceback__ is not None

    async def test_on_result_is_asked_once_per_result(self) -> None:
        asked: list[object] = []

        def refuse_none(value: object) -> bool:
            asked.append(value)
            return value is None

        async def primary() -> str:
            return "p"

        fallback = Fallback(on_result=refuse_none, last_good=LastGood(5))
        fallback.call(lambda: "p")
        await fallback.acall(primary)

        assert asked == ["p", "p"]

    def test_rejected_alternative_result_moves_on(self) -> None:
        fallback = Fallback(
            lambda failure: None, on_result=lambda value: value is None, default=7
        )

        result = fallback.call_result(fails(KeyError()))

        assert result.tier is FallbackTier.DEFAULT
        assert [type(e) for e in result.errors] == [KeyError, ResultRejectedError]

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
    def test_base_exceptions_are_never_replaced(
        self, exc_type: type[BaseException]
    ) -> None:
        def primary() -> None:
            raise exc_type

        with pytest.raises(exc_type):
            Fallback(lambda failure: "alt", default=1).call(primary)

    async def test_cancellation_is_never_replaced(self) -> None:
        started = asyncio.Event()

        async def primary() -> str:
            started.set()
            await asyncio.Event().wait()
            return "never"

        task = asyncio.ensure_future(Fallback(default="no").acall(primary))
        await started.wait()
        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task

    def test_base_exception_types_cannot_be_configured(self) -> None:
        with pytest.raises(ConfigurationError, match="KeyboardInterrupt"):
            Fallback(on=KeyboardInterrupt)  # type: ignore[arg-type]


class TestLastGood:
    def test_serves_the_last_primary_result_with_its_age(self) -> None:
        clock = FakeClock()
        fallback = Fallback(last_good=LastGood(60), clock=clock)
        fallback.call(lambda: "fresh")
        clock.advance(12.5)

        result = fallback.call_result(fails(ConnectionError()))

        assert result.value == "fresh"
        assert result.tier is FallbackTier.LAST_GOOD
        assert result.staleness == 12.5

    def test_served_only_after_alternatives_fail(self) -> None:
        fallback = Fallback(lambda failure: "alt", last_good=LastGood(60))
        fallback.call(lambda: "fresh")

        assert fallback.call(fails(ConnectionError())) == "alt"

    def test_served_before_the_default(self) -> None:
        fallback = Fallback(last_good=LastGood(60), default="default")
        fallback.call(lambda: "fresh")

        assert fallback.call(fails(ConnectionError())) == "fresh"

    def test_expires_after_max_age(self) -> None:
        clock = FakeClock()
        fallback = Fallback(last_good=LastGood(10), default="default", clock=clock)
        fallback.call(lambda: "fresh")

        clock.advance(10)
        assert fallback.call_result(fails(OSError())).staleness == 10.0
        clock.advance(0.001)
        assert fallback.call(fails(OSError())) == "default"

    def test_keys_come_from_the_arguments(self) -> None:
        fallback = Fallback(last_good=LastGood(60, key=lambda user: user))
        fallback.call(lambda user: f"profile of {user}", "ada")
        fallback.call(lambda user: f"profile of {user}", "bob")

        assert fallback.call(fails(OSError()), "ada") == "profile of ada"
        assert fallback.call(fails(OSError()), "bob") == "profile of bob"
        with pytest.raises(FallbackExhaustedError):
            fallback.call(fails(OSError()), "eve")

    def test_least_recently_used_key_is_dropped(self) -> None:
        cache = LastGood(60, max_keys=2, key=lambda k: k)
        fallback = Fallback(last_good=cache)
        for k in ("a", "b"):
            fallback.call(lambda k: k.upper(), k)
        fallback.call(fails(OSError()), "a")  # serving "a" makes "b" the oldest
        fallback.call(lambda k: k.upper(), "c")

        assert len(cache) == 2
        assert fallback.call(fails(OSError()), "a") == "A"
        assert fallback.call(fails(OSError()), "c") == "C"
        with pytest.raises(FallbackExhaustedError):
            fallback.call(fails(OSError()), "b")

    def test_alternative_results_are_not_remembered(self) -> None:
        fallback = Fallback(
            lambda failure: "degraded", last_good=LastGood(60), on_result=None
        )
        fallback.call(fails(OSError()))

        assert fallback.last_good is not None
        assert len(fallback.last_good) == 0

    def test_bad_settings(self) -> None:
        with pytest.raises(ConfigurationError, match="max_age"):
            LastGood(0)
        with pytest.raises(ConfigurationError, match="max_keys"):
            LastGood(1, max_keys=0)


class TestTransparentMode:
    def test_fallback_info_after_a_degraded_call(self) -> None:
        failure = ConnectionError()
        fallback = Fallback(lambda f: "alt", name="profiles")

        assert fallback.call(fails(failure)) == "alt"

        assert fallback_info() == FallbackInfo(
            "profiles", FallbackTier.ALTERNATIVE, 0, 0.0, (failure,)
        )

    def test_fallback_info_is_none_after_a_primary_answer(self) -> None:
        fallback = Fallback(lambda f: "alt", name="profiles")
        fallback.call(fails(OSError()))

        fallback.call(lambda: "ok")

        assert fallback_info() is None

    def test_fallback_info_is_cleared_when_every_tier_fails(self) -> None:
        Fallback(lambda f: "alt").call(fails(OSError()))

        with pytest.raises(FallbackExhaustedError):
            Fallback().call(fails(OSError()))

        assert fallback_info() is None

    def test_event_for_a_degraded_answer_only(self) -> None:
        events: list[Event] = []
        clock = FakeClock()
        fallback = Fallback(
            last_good=LastGood(60), name="feed", clock=clock, listeners=(events.append,)
        )
        fallback.call(lambda: "fresh")
        clock.advance(3)

        fallback.call(fails(TimeoutError()))

        assert events == [
            FallbackUsed(
                source="feed",
                pipeline=None,
                tier="last_good",
                alternative=None,
                staleness=3.0,
                error="TimeoutError",
            )
        ]


class TestExhausted:
    def test_every_failure_is_reachable_in_order_with_tracebacks(self) -> None:
        errors = [ConnectionError("primary"), TimeoutError("alt1"), KeyError("alt2")]
        fallback = Fallback(fails(errors[1]), fails(errors[2]), name="orders")

        with pytest.raises(FallbackExhaustedError) as caught:
            fallback.call(fails(errors[0]))

        group = caught.value
        assert list(group.exceptions) == errors
        assert all(e.__traceback__ is not None for e in group.exceptions)
        assert str(group) == "orders: every tier failed (3 sub-exceptions)"
        assert group.__suppress_context__
        assert "primary" in "".join(traceback.format_exception(group))

    def test_is_a_recovery_error_and_an_exception_group(self) -> None:
        from recovery.errors import RecoveryError

        with pytest.raises(FallbackExhaustedError) as caught:
            Fallback().call(fails(OSError()))

        assert isinstance(caught.value, RecoveryError)
        assert isinstance(caught.value, ExceptionGroup)

    def test_except_star_picks_out_one_kind(self) -> None:
        picked: list[BaseException] = []
        open_error = CircuitOpenError("x", retry_after=1.0)
        try:
            Fallback(fails(KeyError())).call(fails(open_error))
        except* CircuitOpenError as group:
            picked.extend(group.exceptions)
        except* KeyError:
            pass

        assert picked == [open_error]

    def test_split_keeps_the_type(self) -> None:
        group = FallbackExhaustedError("x", [KeyError(), OSError()])

        match, rest = group.split(KeyError)

        assert isinstance(match, FallbackExhaustedError)
        assert isinstance(rest, FallbackExhaustedError)

    def test_failing_default_factory_joins_the_group(self) -> None:
        fallback = Fallback(default_factory=fails(ValueError("factory")))

        with pytest.raises(FallbackExhaustedError) as caught:
            fallback.call(fails(OSError("primary")))

        assert [str(e) for e in caught.value.exceptions] == ["primary", "factory"]


class TestAsync:
    async def test_async_and_sync_alternatives_and_factory(self) -> None:
        async def primary(x: int) -> int:
            raise ConnectionError

        async def alt1(failure: Exception, x: int) -> int:
            raise TimeoutError

        def alt2(failure: Exception, x: int) -> int:
            assert isinstance(failure, TimeoutError)
            return x + 1

        result = await Fallback(alt1, alt2).acall_result(primary, 1)

        assert result.value == 2
        assert result.info.alternative == 1

    async def test_async_default_factory(self) -> None:
        async def factory(failure: Exception) -> str:
            return f"default after {type(failure).__name__}"

        async def primary() -> str:
            raise KeyError

        assert await Fallback(default_factory=factory).acall(primary) == (
            "default after KeyError"
        )

    async def test_last_good_and_info_in_the_awaiting_task(self) -> None:
        clock = FakeClock()
        fallback = Fallback(last_good=LastGood(5), clock=clock)

        async def good() -> str:
            return "v1"

        async def bad() -> str:
            raise OSError

        await fallback.acall(good)
        clock.advance(4)
        assert await fallback.acall(bad) == "v1"

        info = fallback_info()
        assert info is not None
        assert (info.tier, info.staleness) == (FallbackTier.LAST_GOOD, 4.0)

    def test_async_alternative_in_a_sync_call_is_an_error(self) -> None:
        async def alt(failure: Exception) -> str:
            return "x"

        with pytest.raises(TypeError, match="acall"):
            Fallback(alt).call(fails(OSError()))


class TestDecorator:
    def test_sync(self) -> None:
        @Fallback(lambda failure, x: -x)
        def compute(x: int) -> int:
            raise ArithmeticError

        assert compute(3) == -3
        assert compute.__name__ == "compute"

    async def test_async(self) -> None:
        @Fallback(default=0)
        async def compute(x: int) -> int:
            raise ArithmeticError

        assert await compute(3) == 0


# One scenario table through both shells: (primary, alternatives, has last
# good, default) -> (tier, value, number of errors). "ok:x" answers x,
# "boom" raises ConnectionError, "none" returns None (rejected by on_result).
SCENARIOS = [
    ("ok:p", [], False, None, (FallbackTier.PRIMARY, "p", 0)),
    ("boom", ["ok:a"], False, None, (FallbackTier.ALTERNATIVE, "a", 1)),
    ("boom", ["boom", "ok:b"], False, None, (FallbackTier.ALTERNATIVE, "b", 2)),
    ("none", ["ok:a"], False, None, (FallbackTier.ALTERNATIVE, "a", 1)),
    ("boom", ["boom"], True, "d", (FallbackTier.LAST_GOOD, "stale", 2)),
    ("boom", ["none"], False, "d", (FallbackTier.DEFAULT, "d", 2)),
    ("none", [], True, None, (FallbackTier.LAST_GOOD, "stale", 1)),
    ("boom", ["boom", "boom"], False, None, None),
]


def behaviour(spec: str) -> Callable[..., object]:
    def sync(*args: object) -> object:
        if spec == "boom":
            raise ConnectionError(spec)
        return None if spec == "none" else spec.removeprefix("ok:")

    return sync


def asynced(fn: Callable[..., object]) -> Callable[..., Awaitable[object]]:
    async def run(*args: object) -> object:
        await asyncio.sleep(0)
        return fn(*args)

    return run


def build(
    alternatives: list[str], has_last_good: bool, default: str | None
) -> Fallback:
    clock = FakeClock()
    fallback = Fallback(
        *(behaviour(spec) for spec in alternatives),
        on_result=lambda value: value is None,
        last_good=LastGood(60) if has_last_good else None,
        default_factory=None if default is None else (lambda failure: default),
        clock=clock,
    )
    if has_last_good:
        fallback.call(lambda: "stale")
    return fallback


@pytest.mark.parametrize(
    ("primary", "alternatives", "has_last_good", "default", "expected"), SCENARIOS
)
async def test_sync_and_async_shells_agree(
    primary: str,
    alternatives: list[str],
    has_last_good: bool,
    default: str | None,
    expected: tuple[FallbackTier, str, int] | None,
) -> None:
    outcomes: list[tuple[object, ...]] = []
    for shell in ("sync", "async"):
        fallback = build(alternatives, has_last_good, default)
        try:
            if shell == "sync":
                result = fallback.call_result(behaviour(primary))
            else:
                result = await fallback.acall_result(asynced(behaviour(primary)))
        except FallbackExhaustedError as exc:
            outcomes.append(("exhausted", len(exc.exceptions)))
        else:
            outcomes.append((result.tier, result.value, len(result.errors)))

    want = ("exhausted", 1 + len(alternatives)) if expected is None else expected
    assert outcomes == [want, want]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["store", "lookup"]),
            st.integers(0, 4),
            st.integers(0, 30),
        ),
        max_size=60,
    )
)
def test_last_good_matches_an_lru_model(ops: list[tuple[str, int, int]]) -> None:
    """Expiry after max_age and LRU eviction over max_keys, against a model."""
    cache = LastGood(50, max_keys=3)
    model: dict[int, tuple[str, float]] = {}  # insertion order = recency
    now = 0.0
    for op, key, step in ops:
        now += step
        if op == "store":
            model.pop(key, None)
            model[key] = (f"v{now}", now)
            if len(model) > 3:
                del model[next(iter(model))]
            cache.store(key, f"v{now}", now)
            continue

        entry = model.get(key)
        expected = None
        if entry is not None and now - entry[1] > 50:
            del model[key]
        elif entry is not None:
            expected = (entry[0], now - entry[1])
            model[key] = model.pop(key)
        assert cache.lookup(key, now) == expected
