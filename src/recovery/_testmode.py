"""
The process-wide switch that `recovery.testing.fast_retries` turns on.

Kept in its own module so strategies can read it without importing the
testing helpers. Only the failure path reads it, never the success path.
"""

from __future__ import annotations

import dataclasses

__all__ = ["TestMode", "current"]


@dataclasses.dataclass(frozen=True, slots=True)
class TestMode:
    """
    While active: waits are zero, and attempts are capped at `max_attempts`.
    """

    max_attempts: int | None


_current: TestMode | None = None


def current() -> TestMode | None:
    """
    Return the active test mode, or None outside of it.
    """
    return _current


def set_current(mode: TestMode | None) -> TestMode | None:
    """
    Install *mode* and return the one it replaces.
    """
    global _current
    previous, _current = _current, mode
    return previous
