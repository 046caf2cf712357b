"""
Opening SQLite files the way every shared-state store here needs them.

All of them share one recipe: autocommit mode (transactions are begun
explicitly, with BEGIN IMMEDIATE where a transition writes), a busy timeout
so that processes queue for the write lock instead of failing, and WAL so
that readers never block the writer. Only the durability differs: soft
state (breakers, limiters) uses synchronous=NORMAL, journals FULL.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Literal

__all__ = ["connect"]


def connect(
    path: str | os.PathLike[str],
    *,
    busy_timeout: float,
    synchronous: Literal["NORMAL", "FULL"],
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """
    Open *path* in autocommit and WAL mode with the given durability.

    Raises what `sqlite3` raises; callers turn it into their own error.
    """
    connection = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        connection.close()
        raise

    return connection
