"""Fill an aurora database with realistic, reproducible data: the same seed and size give
byte-identical tables.

Users are made one at a time with everything they own (:func:`sync.dev.fake.user_tree`) and
their rows go into per-table buffers that leave as multi-row INSERTs of a few thousand rows,
so memory stays constant whatever the size. The statements are built on the calling thread
and sent by loader threads, so building the next statement overlaps the server's work on the
last one. Ids are explicit; foreign key and unique checks are switched off in the loaders'
sessions only, since the data is consistent by construction.

Command line::

    SOURCE_DB_PASSWORD=... python -m sync.dev.generate --host 127.0.0.1 --port 3306 \\
        --user root --database aurora --rows 1000000 --seed 1 --create
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from sync.dev import fake
from sync.dev.cliconn import add_connection_arguments, connector_from_args
from sync.dev.sqltext import (
    TABLES,
    Row,
    create_database_sql,
    insert_prefix,
    row_literal,
    schema_statements,
)

Connector = Callable[[], "pymysql.Connection[Any]"]

BULK_SESSION = "SET SESSION foreign_key_checks = 0, unique_checks = 0, time_zone = '+00:00'"


@dataclass(frozen=True)
class GenerateStats:
    """What :func:`generate` wrote."""

    database: str
    seed: int
    users: int
    rows: dict[str, int]
    max_ids: dict[str, int]
    statements: int
    bytes_sent: int
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else 0.0


def users_for_rows(rows: int) -> int:
    """The user count that gives about ``rows`` rows over all tables."""
    return max(1, round(rows / fake.mean_rows_per_user()))


def create_schema(conn: pymysql.Connection[Any], database: str, *, drop: bool = False) -> None:
    """Create ``database`` (dropping it first if asked) and aurora's tables in it."""
    with conn.cursor() as cur:
        for sql in create_database_sql(database, drop=drop):
            cur.execute(sql)
        cur.execute(f"USE `{database}`")
        for sql in schema_statements():
            cur.execute(sql)


@dataclass
class _Buffers:
    """Per-table rows waiting to become one INSERT."""

    database: str
    batch_rows: int
    batch_bytes: int
    parts: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TABLES})
    sizes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    def add(self, table: str, rows: list[Row]) -> str | None:
        """Buffer ``rows``; return a full statement when the table's buffer is full."""
        parts = self.parts[table]
        for row in rows:
            text = row_literal(row)
            parts.append(text)
            self.sizes[table] += len(text)
        if len(parts) >= self.batch_rows or self.sizes[table] >= self.batch_bytes:
            return self.take(table)
        return None

    def take(self, table: str) -> str | None:
        parts = self.parts[table]
        if not parts:
            return None
        sql = insert_prefix(self.database, table) + ",".join(parts)
        self.parts[table], self.sizes[table] = [], 0
        return sql


class _Loaders:
    """Threads that send statements from a bounded queue, each on its own connection."""

    def __init__(self, connect: Connector, count: int) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=2 * count)
        self._errors: list[BaseException] = []
        self._failed = threading.Event()
        self.bytes_sent = 0
        self.statements = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, args=(connect,), name=f"generate-load-{i}",
                             daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self, connect: Connector) -> None:
        try:
            with contextlib.closing(connect()) as conn, conn.cursor() as cur:
                cur.execute(BULK_SESSION)
                while (sql := self._queue.get()) is not None:
                    cur.execute(sql)
                    with self._lock:
                        self.statements += 1
                        self.bytes_sent += len(sql)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the producer thread
            self._errors.append(exc)
            self._failed.set()

    def send(self, sql: str) -> None:
        while not self._failed.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(sql, timeout=0.2)
                return
        raise self._errors[0]

    def abort(self) -> None:
        """Drop what is queued and let every loader finish its current statement and end."""
        self._failed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        for _ in self._threads:
            self._queue.put_nowait(None)

    def close(self) -> None:
        """Wait for every statement to be sent; re-raise a loader's error."""
        for _ in self._threads:
            while not self._failed.is_set():
                with contextlib.suppress(queue.Full):
                    self._queue.put(None, timeout=0.2)
                    break
        for thread in self._threads:
            # A failed loader may leave others blocked on an empty queue; they are daemons.
            thread.join(timeout=None if not self._failed.is_set() else 1)
        if self._errors:
            raise self._errors[0]


def generate(
    connect: Connector,
    *,
    database: str,
    users: int,
    seed: int,
    create: bool = False,
    drop: bool = False,
    batch_rows: int = 2000,
    batch_bytes: int = 1 << 20,
    loaders: int = 2,
) -> GenerateStats:
    """Write ``users`` users and everything they own into ``database``.

    ``connect`` opens a new PyMySQL connection (autocommit) to the server; it is called once
    per loader thread and once more to create the schema when ``create`` is set (``drop``
    drops the database first). The tables must be empty: ids start at 1.
    """
    started = time.perf_counter()
    if create:
        with contextlib.closing(connect()) as conn:
            create_schema(conn, database, drop=drop)
    rng = random.Random(seed)
    ids = fake.IdCounters()
    counts = dict.fromkeys(TABLES, 0)
    buffers = _Buffers(database, batch_rows, batch_bytes)
    sender = _Loaders(connect, loaders)
    try:
        for _ in range(users):
            tree = fake.user_tree(rng, ids, fake.random_moment(rng))
            for table, rows in tree.tables().items():
                counts[table] += len(rows)
                if (sql := buffers.add(table, rows)) is not None:
                    sender.send(sql)
        for table in TABLES:
            if (sql := buffers.take(table)) is not None:
                sender.send(sql)
    except BaseException:
        sender.abort()
        raise
    sender.close()
    return GenerateStats(
        database=database, seed=seed, users=users, rows=counts,
        max_ids={t: n - 1 for t, n in ids.next.items()}, statements=sender.statements,
        bytes_sent=sender.bytes_sent, seconds=time.perf_counter() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sync.dev.generate", description="Fill an aurora database with "
        "reproducible test data.")
    add_connection_arguments(parser)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int, help="about this many rows over all tables")
    size.add_argument("--users", type=int, help="exactly this many users")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--create", action="store_true", help="create the database and tables")
    parser.add_argument("--drop", action="store_true", help="drop the database first")
    parser.add_argument("--loaders", type=int, default=2, help="loader connections")
    args = parser.parse_args(argv)
    users = args.users if args.users is not None else users_for_rows(args.rows)
    stats = generate(
        connector_from_args(args), database=args.database, users=users, seed=args.seed,
        create=args.create or args.drop, drop=args.drop, loaders=args.loaders,
    )
    per_table = ", ".join(f"{t}={n}" for t, n in stats.rows.items())
    sys.stdout.write(
        f"{stats.database}: {stats.total_rows} rows ({per_table}) in {stats.seconds:.1f}s, "
        f"{stats.rows_per_second:,.0f} rows/s, {stats.bytes_sent / 1e6:.1f} MB, seed "
        f"{stats.seed}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
