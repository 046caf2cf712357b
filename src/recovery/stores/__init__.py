"""
Stores for shared strategy state: in memory, in SQLite, in Redis.

`SqliteStore` and `RedisStore` are imported on first use, so that importing
`recovery.stores` never imports `sqlite3` or the redis client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BreakerStore
from .memory import MemoryStore

if TYPE_CHECKING:
    from .redis import RedisStore
    from .sqlite import SqliteStore

__all__ = ["BreakerStore", "MemoryStore", "RedisStore", "SqliteStore"]


def __getattr__(name: str) -> object:
    if name == "SqliteStore":
        from .sqlite import SqliteStore

        return SqliteStore
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
