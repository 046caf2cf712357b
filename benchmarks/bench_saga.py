"""
What the saga journal costs per step, against the physical limit.

A journalled step writes two records: the intent before the action and the
result after it. The intent is committed before the action runs; the result
shares the commit of the next intent (or of the saga's end). With the
saga's start as its own commit, a saga of n steps makes n + 2 commits. On
SQLite with WAL and `synchronous=FULL`, every commit syncs the WAL, so the
floor is one fsync per commit.

The floor is measured, not assumed: the reference scenario makes the same
number of bare commits (one INSERT and COMMIT each, on a connection with the
same settings) as one saga run. Disk latency on a shared machine drifts a
lot, so every sample is a single saga (or a single floor run), and the
scenarios alternate in shuffled order, many rounds; the ratio reported is
the median of the per-round ratios. The same for PostgreSQL (autocommit
INSERTs, `synchronous_commit=on`). The in-memory journal shows the engine's
own cost, with no I/O.

Run: python benchmarks/bench_saga.py [--rounds N] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from harness import Scenario, run, summarise  # type: ignore[import-not-found]

from recovery.transactions import Journal, MemoryJournal, Saga, SqliteJournal, Step

STEPS = 10
COMMITS = STEPS + 2
DSN = os.environ.get(
    "RECOVERY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def trivial(ctx: object) -> int:
    return 1


def saga_on(journal: Journal) -> Saga:
    return Saga(
        "bench", [Step(f"s{i}", trivial) for i in range(STEPS)], journal=journal
    )


def sqlite_floor(path: Path) -> tuple[Callable[[], None], sqlite3.Connection]:
    """
    Return a function making COMMITS bare commits, and its connection.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    counter = itertools.count()

    def commits() -> None:
        for _ in range(COMMITS):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO t (id, v) VALUES (?, ?)", (next(counter), "x" * 40)
            )
            conn.execute("COMMIT")

    return commits, conn


def postgres_floor(schema: str):  # type: ignore[no-untyped-def]
    import psycopg

    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(f'CREATE TABLE "{schema}".bare (id BIGINT PRIMARY KEY, v TEXT)')
    counter = itertools.count()
    insert = f'INSERT INTO "{schema}".bare (id, v) VALUES (%s, %s)'

    def commits() -> None:
        for _ in range(COMMITS):
            conn.execute(insert, (next(counter), "x" * 40))

    return commits, conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=301)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "saga.md"
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-saga-", dir=Path(__file__).parent))
    floor, floor_conn = sqlite_floor(workdir / "bare.db")
    sqlite_journal = SqliteJournal(workdir / "journal.db")
    scenarios = [
        Scenario(f"sqlite: {COMMITS} bare commits (FULL)", floor, group="sqlite"),
        Scenario(
            f"sqlite: saga of {STEPS} steps (FULL)",
            saga_on(sqlite_journal).run,
            group="sqlite",
        ),
        Scenario(
            f"memory: saga of {STEPS} steps", saga_on(MemoryJournal()).run, group=""
        ),
    ]

    pg_admin = pg_journal = pg_floor_conn = None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    if not args.no_postgres:
        import psycopg

        from recovery.transactions import PostgresJournal

        pg_admin = psycopg.connect(DSN, autocommit=True)
        pg_admin.execute(f'CREATE SCHEMA "{schema}"')
        pg_floor, pg_floor_conn = postgres_floor(schema)
        pg_journal = PostgresJournal(DSN, schema=schema)
        scenarios += [
            Scenario(f"postgres: {COMMITS} bare commits", pg_floor, group="postgres"),
            Scenario(
                f"postgres: saga of {STEPS} steps",
                saga_on(pg_journal).run,
                group="postgres",
            ),
        ]

    try:
        # A tiny target makes every sample a single call, so the scenarios
        # alternate closely and share the disk's drift.
        run(scenarios, rounds=args.rounds, target=1e-6)
    finally:
        sqlite_journal.close()
        floor_conn.close()
        if pg_admin is not None:
            pg_journal.close()  # type: ignore[union-attr]
            pg_floor_conn.close()  # type: ignore[union-attr]
            pg_admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            pg_admin.close()
        for file in workdir.iterdir():
            file.unlink()
        workdir.rmdir()

    floors = {s.group: s.name for s in scenarios if "bare" in s.name}
    results = summarise(scenarios, {"floor": lambda s: floors.get(s.group, "")})
    write(results, args)


def write(results: list[object], args: argparse.Namespace) -> None:
    by_name = {r.name: r for r in results}  # type: ignore[attr-defined]
    lines = [
        "# Saga journal: cost per step",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.rounds} shuffled rounds, one saga per "
        "sample; medians. Generated by `benchmarks/bench_saga.py`.",
        "",
        f"A saga of {STEPS} trivial steps journals {2 * STEPS + 2} records (start, "
        f"an intent and a result per step, end) in {COMMITS} commits: the start; "
        "each intent, carrying the previous step's result; the end, carrying the "
        f"last result. Its floor is {COMMITS} bare commits with the same "
        "durability, measured alternately with it. `x floor` is the median of the "
        "per-round ratios: 1.00 means the journal costs exactly the fsyncs it must "
        "make.",
        "",
        "| scenario | x floor | per step, µs | floor per step, µs |",
        "|---|---:|---:|---:|",
    ]
    for result in results:
        name = result.name  # type: ignore[attr-defined]
        if "saga" not in name:
            continue
        ratio = result.ratios.get("floor")  # type: ignore[attr-defined]
        per_step = result.median_ns / STEPS / 1000  # type: ignore[attr-defined]
        floor_name = next(
            (
                n
                for n in by_name
                if "bare" in n and n.split(":")[0] == name.split(":")[0]
            ),
            None,
        )
        floor_step = (
            None if floor_name is None else by_name[floor_name].median_ns / STEPS / 1000
        )
        lines.append(
            f"| {name} | {'' if ratio is None else f'{ratio:.2f}'} | "
            f"{per_step:,.1f} | {'' if floor_step is None else f'{floor_step:,.1f}'} |"
        )
    lines += [
        "",
        "Above the floor are the engine's own work per step (the memory row: "
        "building records, encoding results, replaying them into the saga's "
        "state, events) and commits that are larger than a bare one: each "
        "updates the saga's row and inserts its records, in two tables.",
        "",
        "Raw figures (ns per call; a call is one saga, or one floor run):",
        "",
        "| scenario | median ns | min-max ns |",
        "|---|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.median_ns:,.0f} | "  # type: ignore[attr-defined]
            f"{result.low_ns:,.0f}-{result.high_ns:,.0f} |"  # type: ignore[attr-defined]
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
