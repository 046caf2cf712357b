"""
Choosing one endpoint among the healthy ones.

A balancer gets the tuple of available endpoints (the same tuple object for
as long as health does not change, so it may cache per tuple) and returns
one. Three come built in:

- `RoundRobin`: each endpoint in turn; weights are ignored.
- `WeightedRandom`: at random, in proportion to `weight`.
- `PowerOfTwoChoices`: two at random, then the one with fewer outstanding
  calls per unit of weight (outstanding calls are counted by
  `ServiceRegistry.use`).

Every balancer is safe to share between threads.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError
from .endpoint import Endpoint

__all__ = [
    "Balancer",
    "PowerOfTwoChoices",
    "RoundRobin",
    "WeightedRandom",
    "balancer_named",
]


@runtime_checkable
class Balancer(Protocol):
    """
    Picks one endpoint from a non-empty sequence of candidates.
    """

    def pick(self, candidates: Sequence[Endpoint], /) -> Endpoint:
        """
        Return one of *candidates* (never called with an empty sequence).
        """
        ...


class RoundRobin:
    """
    Each candidate in turn, ignoring weights.
    """

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        # next() on itertools.count is atomic under the GIL: no lock needed.
        self._counter = itertools.count()

    def pick(self, candidates: Sequence[Endpoint], /) -> Endpoint:
        """
        Return the next candidate in turn.
        """
        return candidates[next(self._counter) % len(candidates)]

    def __repr__(self) -> str:
        return "RoundRobin()"


class WeightedRandom:
    """
    A candidate at random, each in proportion to its weight.
    """

    __slots__ = ("_cumulative", "_last", "_rng")

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._last: Sequence[Endpoint] | None = None
        self._cumulative: tuple[list[float], float] = ([], 0.0)

    def pick(self, candidates: Sequence[Endpoint], /) -> Endpoint:
        """
        Return a candidate drawn with probability weight / total weight.
        """
        cumulative, total = self._weights(candidates)
        index = bisect.bisect_right(cumulative, self._rng.random() * total)

        return candidates[min(index, len(candidates) - 1)]

    def _weights(self, candidates: Sequence[Endpoint]) -> tuple[list[float], float]:
        # The registry keeps one tuple per health state, so identity is a
        # cheap and exact cache key; the pair is swapped in one assignment.
        if candidates is not self._last:
            sums = list(itertools.accumulate(ep.weight for ep in candidates))
            self._cumulative = (sums, sums[-1])
            self._last = candidates

        return self._cumulative

    def __repr__(self) -> str:
        return "WeightedRandom()"


class PowerOfTwoChoices:
    """
    The less loaded of two random candidates: least outstanding calls per weight.
    """

    __slots__ = ("_rng",)

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def pick(self, candidates: Sequence[Endpoint], /) -> Endpoint:
        """
        Return the less loaded of two distinct candidates drawn at random.
        """
        count = len(candidates)
        if count == 1:
            return candidates[0]

        first = int(self._rng.random() * count)
        # Draw the second among the others so both choices are distinct.
        second = (first + 1 + int(self._rng.random() * (count - 1))) % count
        a, b = candidates[first], candidates[second]

        return b if b.outstanding * a.weight < a.outstanding * b.weight else a

    def __repr__(self) -> str:
        return "PowerOfTwoChoices()"


_NAMES: dict[str, Callable[[], Balancer]] = {
    "round_robin": RoundRobin,
    "weighted_random": WeightedRandom,
    "power_of_two": PowerOfTwoChoices,
    "p2c": PowerOfTwoChoices,
}


def balancer_named(name: str) -> Balancer:
    """
    Return a new balancer from its configuration name.

    Accepted: ``round_robin``, ``weighted_random``, ``power_of_two`` (or
    ``p2c``).
    """
    factory = _NAMES.get(name)
    if factory is None:
        accepted = ", ".join(sorted(_NAMES))
        raise ConfigurationError(f"balancer must be one of {accepted}, got {name!r}")

    return factory()
