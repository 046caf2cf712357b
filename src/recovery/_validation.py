"""
Checks for settings, shared by every strategy.

Each check raises `ConfigurationError` naming the parameter, the value given
and the accepted range, so that bad configuration fails when the object is
built rather than on first use.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

from .clock import Clock
from .errors import ConfigurationError

__all__ = [
    "exception_matcher",
    "require_callables",
    "require_clock",
    "require_rng",
    "require_fraction",
    "require_int",
    "require_non_negative",
    "require_positive",
    "require_range",
]


def _require_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{name} must be a number, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if math.isnan(number):
        raise ConfigurationError(f"{name} must be a number, got NaN")

    return number


def require_positive(name: str, value: float, *, finite: bool = True) -> float:
    """
    Return *value* as a float, or raise unless it is > 0 (and finite).
    """
    number = _require_real(name, value)
    if number <= 0 or (finite and math.isinf(number)):
        bound = "a finite number > 0" if finite else "a number > 0"
        raise ConfigurationError(f"{name} must be {bound}, got {value!r}")

    return number


def require_non_negative(name: str, value: float, *, finite: bool = True) -> float:
    """
    Return *value* as a float, or raise unless it is >= 0 (and finite).
    """
    number = _require_real(name, value)
    if number < 0 or (finite and math.isinf(number)):
        bound = "a finite number >= 0" if finite else "a number >= 0"
        raise ConfigurationError(f"{name} must be {bound}, got {value!r}")

    return number


def require_range(name: str, value: float, low: float, high: float) -> float:
    """
    Return *value* as a float, or raise unless low <= value <= high.
    """
    number = _require_real(name, value)
    if not low <= number <= high:
        raise ConfigurationError(
            f"{name} must be between {low:g} and {high:g}, got {value!r}"
        )

    return number


def require_fraction(name: str, value: float, *, allow_zero: bool = False) -> float:
    """
    Return *value* as a float, or raise unless it lies in (0, 1] or [0, 1].
    """
    number = _require_real(name, value)
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigurationError(f"{name} must be in {bound}, got {value!r}")

    return number


def require_int(
    name: str, value: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """
    Return *value*, or raise unless it is an int within [minimum, maximum].
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        )
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigurationError(f"{name} must be an integer {bound}, got {value!r}")

    return value


def require_clock(name: str, value: object) -> Clock:
    """
    Return *value*, or raise unless it has a clock's methods.
    """
    if not isinstance(value, Clock):
        raise ConfigurationError(
            f"{name} must be a Clock (now, time, sleep and asleep), such as "
            f"recovery.SYSTEM_CLOCK or recovery.testing.FakeClock, got {value!r}"
        )

    return value


def require_rng(name: str, value: object) -> random.Random:
    """
    Return *value*, or raise unless it is a `random.Random`.
    """
    if not isinstance(value, random.Random):
        raise ConfigurationError(
            f"{name} must be a random.Random, got {type(value).__name__} {value!r}"
        )

    return value


def require_callables(name: str, value: object) -> tuple[Callable[..., object], ...]:
    """
    Return *value* as a tuple, or raise unless it is an iterable of callables.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"{name} must be an iterable of callables, got {value!r}"
        )
    items = tuple(value)
    for item in items:
        if not callable(item):
            raise ConfigurationError(f"{name} must hold callables, got {item!r}")

    return items


ExceptionSpec = (
    type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
)


def exception_matcher(
    name: str, spec: ExceptionSpec | None
) -> tuple[tuple[type[Exception], ...], Callable[[Exception], bool] | None]:
    """
    Split an exception spec into a tuple of types and an optional predicate.

    A spec is an exception type, a tuple of types, or a predicate that takes
    the exception. Types must be `Exception` subclasses: cancellation,
    `KeyboardInterrupt` and `SystemExit` can never be matched.
    """
    if spec is None:
        return (), None
    if isinstance(spec, type):
        spec = (spec,)
    if isinstance(spec, tuple):
        if not spec:
            raise ConfigurationError(
                f"{name} must name at least one exception type, got ()"
            )
        for item in spec:
            if not (isinstance(item, type) and issubclass(item, Exception)):
                raise ConfigurationError(
                    f"{name} must hold Exception subclasses, got {item!r}; "
                    "BaseException types such as KeyboardInterrupt, SystemExit "
                    "and cancellation are never caught"
                )
        return spec, None
    if callable(spec):
        return (Exception,), spec

    raise ConfigurationError(
        f"{name} must be an exception type, a tuple of them, or a predicate, "
        f"got {spec!r}"
    )
