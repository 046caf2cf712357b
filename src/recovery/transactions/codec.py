"""
How a saga turns inputs, results and errors into journal text and back.

The default is JSON. A codec must read back exactly what it wrote:
`decode(encode(x)) == x` for every value a step returns. Values it cannot
encode make the step fail before anything is journalled for them.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

__all__ = ["JSON_CODEC", "Codec", "JsonCodec"]


@runtime_checkable
class Codec(Protocol):
    """
    Turns values into text for the journal, and text back into values.
    """

    def encode(self, value: object) -> str:
        """
        Return *value* as text; raise TypeError or ValueError if impossible.
        """
        ...

    def decode(self, text: str) -> object:
        """
        Return the value *text* encodes; raise ValueError if it is damaged.
        """
        ...


class JsonCodec:
    """
    JSON: strict (no NaN or infinity), compact, keys kept in their order.
    """

    __slots__ = ()

    def encode(self, value: object) -> str:
        """
        Return *value* as compact JSON.
        """
        return json.dumps(value, allow_nan=False, separators=(",", ":"))

    def decode(self, text: str) -> object:
        """
        Return the value of the JSON *text*.
        """
        return json.loads(text)

    def __repr__(self) -> str:
        return "JsonCodec()"


JSON_CODEC: Codec = JsonCodec()
