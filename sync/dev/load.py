"""A write load on aurora like the application's: multi-statement transactions of random
inserts, updates, moves, primary key changes, cascading deletes and unique-key swaps.

Transaction ``n`` draws its dice from ``(seed, n)`` alone, and its ids and timestamps from
counters and a logical clock, so one thread with the same seed on the same data makes the
same changes every time (reruns after a deadlock replay the same plan). It only runs DML in
ordinary transactions, so a binlog reader can follow it. Races with other writers are
expected: a deadlock or lock wait timeout reruns the transaction, a duplicate key or a
vanished parent skips it, a lost connection is counted and reconnected.

Command line::

    SOURCE_DB_PASSWORD=... python -m sync.dev.load --host 127.0.0.1 --port 3306 \\
        --database aurora --seed 1 --rate 50 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType, MappingProxyType
from typing import Any

import pymysql

from sync.db import LOST_CONNECTION_CODES, error_code
from sync.dev import fake
from sync.dev.cliconn import add_connection_arguments, connector_from_args
from sync.dev.loadops import OPERATIONS, OpContext
from sync.dev.sqltext import TABLES, quote_ident
from sync.errors import ConnectError

Connector = Callable[[], "pymysql.Connection[Any]"]

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "insert_user": 2, "update_user": 8, "update_semester": 4, "update_subject": 6,
    "update_syllabus": 8, "update_repository": 4, "file_url_set": 4, "file_url_change": 4,
    "file_url_clear": 3, "move_subject": 3, "move_semester": 2, "repo_subject_set": 3,
    "repo_subject_clear": 2, "rekey_user": 2, "rekey_semester": 2, "rekey_subject": 2,
    "rekey_syllabus": 2, "delete_user": 1, "delete_semester": 1, "delete_subject": 2,
    "delete_syllabus": 2, "delete_repository": 1, "email_swap": 2,
})
RETRY_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock: rerun the transaction
SKIP_CODES = frozenset({1062, 1452})  # duplicate key, parent gone: another writer won a race
MAX_ATTEMPTS = 10
MAX_BACKLOG = 1.0  # seconds of missed schedule a rate-limited load may catch up in a burst
RECONNECT_TIMEOUT = 60.0
CLOCK_EPOCH = datetime(2025, 6, 1)  # the logical clock: transaction n happens n seconds later


@dataclass(frozen=True)
class LoadMix:
    """Which operations a transaction is made of, and how often it is rolled back."""

    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    rollback_ratio: float = 0.03
    operations: tuple[int, int] = (1, 6)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; known: {sorted(OPERATIONS)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("operation weights must be >= 0 with a positive sum")
        if not 0 <= self.rollback_ratio <= 1:
            raise ValueError("rollback_ratio must be between 0 and 1")
        low, high = self.operations
        if not 1 <= low <= high:
            raise ValueError("operations must be (low, high) with 1 <= low <= high")


@dataclass(frozen=True)
class LoadStats:
    """What a load run did. ``operations`` counts those of committed transactions only."""

    committed: int
    rolled_back: int
    retried: int
    skipped: int
    interrupted: int
    operations: Mapping[str, int]
    seconds: float

    @property
    def transactions(self) -> int:
        return self.committed + self.rolled_back

    @property
    def transactions_per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Tally:
    committed: int = 0
    rolled_back: int = 0
    retried: int = 0
    skipped: int = 0
    interrupted: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> LoadStats:
        with self.lock:
            return LoadStats(
                committed=self.committed, rolled_back=self.rolled_back, retried=self.retried,
                skipped=self.skipped, interrupted=self.interrupted,
                operations=dict(sorted(self.operations.items())),
                seconds=time.monotonic() - self.started,
            )


class _Pacer:
    """Spaces transactions ``1/rate`` apart; catches up at most :data:`MAX_BACKLOG`."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at: float | None = None

    def wait(self, stop: threading.Event, limit: float | None) -> bool:
        """Wait for the next slot; False if ``stop`` was set or ``limit`` seconds ran out."""
        if not self.interval:
            return True
        now = time.monotonic()
        self.next_at = self.next_at or now
        delay = self.next_at - now
        if delay > 0:
            if limit is not None and delay > limit:
                stop.wait(limit)
                return False
            if stop.wait(delay):
                return False
        self.next_at = max(self.next_at + self.interval, time.monotonic() - MAX_BACKLOG)
        return True


class WriteLoad:
    """Random application-like transactions against ``database``; see the module docstring."""

    def __init__(
        self,
        connect: Connector,
        *,
        database: str,
        seed: int,
        rate: float | None = None,
        mix: LoadMix | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (transactions per second) or None")
        self._connect = connect
        quote_ident(database)  # refuses a name that is not a plain identifier, early
        self.database = database
        self.seed = seed
        self.rate = rate
        self.mix = mix or LoadMix()
        self._kinds = list(self.mix.weights)
        self._weights = [self.mix.weights[k] for k in self._kinds]
        self._conn: pymysql.Connection[Any] | None = None
        self._ids: fake.IdCounters | None = None
        self._number = 0  # transactions begun so far, over every run: the dice's index
        self._tally = _Tally()

    def stats(self) -> LoadStats:
        """The current run's figures so far (safe to call from another thread)."""
        return self._tally.snapshot()

    def run(
        self,
        *,
        duration: float | None = None,
        transactions: int | None = None,
        stop: threading.Event | None = None,
    ) -> LoadStats:
        """Run until ``duration`` seconds pass, ``transactions`` are done or ``stop`` is set."""
        stop = stop or threading.Event()
        self._tally = _Tally()
        deadline = None if duration is None else self._tally.started + duration
        pacer = _Pacer(self.rate)
        done = 0
        try:
            while not stop.is_set() and (transactions is None or done < transactions):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                if pacer.wait(stop, left):
                    self._transaction(stop)
                    done += 1
        finally:
            self._disconnect()
        return self._tally.snapshot()

    def start(
        self, *, duration: float | None = None, transactions: int | None = None
    ) -> RunningLoad:
        """Run in a background thread; :meth:`RunningLoad.stop` ends it and gives the stats."""
        return RunningLoad(self, duration=duration, transactions=transactions)

    def _transaction(self, stop: threading.Event) -> None:
        number, self._number = self._number, self._number + 1
        for attempt in range(MAX_ATTEMPTS):
            conn = self._connection(stop)
            if conn is None:
                return
            assert self._ids is not None
            saved = dict(self._ids.next)
            try:
                committed, counts = self._attempt(conn, number)
            except pymysql.MySQLError as exc:
                self._ids.next = saved
                if not self._handle_error(conn, exc):
                    return
                stop.wait(0.01 * (attempt + 1))
                continue
            with self._tally.lock:
                if committed:
                    self._tally.committed += 1
                    self._tally.operations.update(counts)
                else:
                    self._ids.next = saved  # a rolled-back transaction's ids are free again
                    self._tally.rolled_back += 1
            return
        with self._tally.lock:
            self._tally.skipped += 1

    def _attempt(self, conn: pymysql.Connection[Any], number: int) -> tuple[bool, Counter[str]]:
        assert self._ids is not None
        rng = random.Random(f"{self.seed}/{number}")
        now = CLOCK_EPOCH + timedelta(seconds=number, milliseconds=rng.randrange(1000))
        rollback = rng.random() < self.mix.rollback_ratio
        counts: Counter[str] = Counter()
        conn.begin()
        with conn.cursor() as cur:
            ctx = OpContext(cur=cur, rng=rng, ids=self._ids, database=self.database, now=now)
            for _ in range(rng.randint(*self.mix.operations)):
                kind = rng.choices(self._kinds, self._weights)[0]
                if OPERATIONS[kind](ctx) > 0:
                    counts[kind] += 1
        if rollback:
            conn.rollback()
            return False, counts
        conn.commit()
        return True, counts

    def _handle_error(self, conn: pymysql.Connection[Any], exc: pymysql.MySQLError) -> bool:
        """Count ``exc``; True if the transaction should be rerun, raise if it is not a race."""
        code = error_code(exc)
        if code in LOST_CONNECTION_CODES:
            self._disconnect()
            with self._tally.lock:
                self._tally.interrupted += 1
            return False
        with contextlib.suppress(pymysql.MySQLError):
            conn.rollback()
        if code in RETRY_CODES:
            with self._tally.lock:
                self._tally.retried += 1
            return True
        if code in SKIP_CODES:
            with self._tally.lock:
                self._tally.skipped += 1
            # Another writer may be taking the same new ids: jump past what exists now.
            self._ids = _next_ids(conn, floor=self._ids)
            return False
        raise exc

    def _connection(self, stop: threading.Event) -> pymysql.Connection[Any] | None:
        """The open connection, reconnecting (patiently, for server restarts) when lost."""
        give_up = time.monotonic() + RECONNECT_TIMEOUT
        while self._conn is None:
            try:
                conn = self._connect()
            except (pymysql.OperationalError, ConnectError):
                if time.monotonic() > give_up:
                    raise
                if stop.wait(0.5):
                    return None
                continue
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                cur.execute(f"USE {quote_ident(self.database)}")
            self._ids = _next_ids(conn, floor=self._ids)
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                self._conn.close()
            self._conn = None


def _next_ids(conn: pymysql.Connection[Any], *, floor: fake.IdCounters | None) -> fake.IdCounters:
    """Counters above every existing id (and never below the ones already handed out)."""
    start: dict[str, int] = {}
    with conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
            row = cur.fetchone()
            start[table] = max(int(row[0]) if row else 1, floor.next[table] if floor else 1)
    conn.commit()  # end the read view the SELECTs opened, if autocommit is off
    return fake.IdCounters(start)


class RunningLoad:
    """A :class:`WriteLoad` running in a background thread."""

    def __init__(
        self, load: WriteLoad, *, duration: float | None, transactions: int | None
    ) -> None:
        self.load = load
        self._stop = threading.Event()
        self._result: LoadStats | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, args=(duration, transactions), name="write-load", daemon=True)
        self._thread.start()

    def _main(self, duration: float | None, transactions: int | None) -> None:
        try:
            self._result = self.load.run(
                duration=duration, transactions=transactions, stop=self._stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait() on the caller's thread
            self._error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> LoadStats:
        """The stats once the run ends; re-raises the run's error."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the write load still runs after {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self, timeout: float | None = 30.0) -> LoadStats:
        self._stop.set()
        return self.wait(timeout)

    def __enter__(self) -> RunningLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _describe(stats: LoadStats) -> str:
    ops = ", ".join(f"{k}={v}" for k, v in stats.operations.items())
    return (f"{stats.committed} committed, {stats.rolled_back} rolled back, {stats.retried} "
            f"retried, {stats.skipped} skipped, {stats.interrupted} interrupted in "
            f"{stats.seconds:.1f}s ({stats.transactions_per_second:.1f} tx/s); {ops}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sync.dev.load", description="Run an application-like write load.")
    add_connection_arguments(parser)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None, help="transactions/s (default: max)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    parser.add_argument("--transactions", type=int, default=None)
    parser.add_argument("--progress", type=float, default=10.0, help="seconds between reports")
    args = parser.parse_args(argv)
    load = WriteLoad(connector_from_args(args), database=args.database, seed=args.seed,
                     rate=args.rate)
    running = load.start(duration=args.duration, transactions=args.transactions)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        running.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while running.running:
        with contextlib.suppress(TimeoutError):
            running.wait(args.progress)
        if running.running:
            sys.stdout.write(_describe(load.stats()))
    sys.stdout.write(_describe(running.wait()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
