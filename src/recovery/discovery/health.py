"""
The verdict of active checks on one endpoint, with rise and fall thresholds.

A single failed probe should not take an endpoint out, and a single passed
probe should not bring a flapping one back. `HealthState` counts consecutive
results: a healthy endpoint becomes unhealthy after `fall` failures in a
row, an unhealthy one healthy after `rise` passes in a row. It is a pure
object: no clock, no I/O, no lock (the registry holds one around it).
"""

from __future__ import annotations

import dataclasses

__all__ = ["HealthState"]


@dataclasses.dataclass(slots=True)
class HealthState:
    """
    Consecutive active-check results of one endpoint, and their verdict.

    New endpoints start healthy unless told otherwise, so that a registry
    without checks, or before the first round, still serves them.
    """

    healthy: bool = True
    passes: int = 0
    failures: int = 0

    def record(self, passed: bool, *, rise: int, fall: int) -> bool | None:
        """
        Count one check result; return the new verdict if it changed, else None.
        """
        if passed:
            self.failures = 0
            self.passes += 1
            if not self.healthy and self.passes >= rise:
                self.healthy = True
                return True
            return None

        self.passes = 0
        self.failures += 1
        if self.healthy and self.failures >= fall:
            self.healthy = False
            return False

        return None
