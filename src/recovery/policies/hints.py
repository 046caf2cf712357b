"""
Server hints: turning a `retry_after` value into seconds to wait.

An exception may carry `retry_after`, as HTTP's Retry-After header does:
either a number of seconds or an HTTP-date. A hint that is negative,
unparsable, infinite or already in the past is ignored (`None`), so a broken
server can never make a client wait forever or retry in a tight loop.
"""

from __future__ import annotations

import datetime
import email.utils
import math

__all__ = ["hint_seconds"]


def hint_seconds(value: object, wall_now: float) -> float | None:
    """
    Return the wait a `retry_after` *value* asks for, or None if invalid.

    *value* may be an int or float of seconds, a string holding seconds or
    an HTTP-date, or an aware `datetime`; *wall_now* is the current wall
    time in seconds since the epoch, used for dates.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _valid_seconds(float(value))
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return _from_text(value.strip(), wall_now)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return _valid_seconds(value.timestamp() - wall_now, allow_zero=False)

    return None


def _from_text(text: str, wall_now: float) -> float | None:
    try:
        return _valid_seconds(float(text))
    except ValueError:
        pass

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT; a date without a zone is not one.
        return None

    return _valid_seconds(when.timestamp() - wall_now, allow_zero=False)


def _valid_seconds(seconds: float, *, allow_zero: bool = True) -> float | None:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    if seconds == 0 and not allow_zero:
        # A date equal to now is in the past by the time anyone reads it.
        return None

    return seconds
