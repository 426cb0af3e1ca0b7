"""How far behind the source the targets are: measured lag, and the binlog gap beside it.

Two measures, as DESIGN decision 7 asks:

- **Lag in seconds.** With the heartbeat table (:mod:`sync.monitor.heartbeat`) the daemon writes
  its own clock into a source row every ``heartbeat_interval``; when the stream applies that
  row, ``now - ts`` is the true end-to-end lag, even when aurora is idle, and free of clock
  skew because the same clock wrote and reads it. Between heartbeats the lag is at least
  ``now - last_ts - interval`` (the next heartbeat is overdue by that much), so a stalled
  stream shows a growing lag instead of the last good value. Without the table the lag falls
  back to ``now - commit_ts`` of the last applied transaction (binlog timestamps: whole
  seconds, the source's clock corrected by the offset measured when sampling the gap).
- **Position gap in bytes** between the applied checkpoint and the source's binlog end:
  :func:`position_gap` (pure) over ``SHOW BINARY LOGS`` sizes, sampled by :class:`GapSampler`.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from sync.model import Position
from sync.source.position import current_position

if TYPE_CHECKING:
    import pymysql

log = structlog.get_logger("aurora_sync.monitor.lag")


class LagSource(enum.StrEnum):
    HEARTBEAT = "heartbeat table"
    EVENTS = "event timestamps"


def epoch(ts: datetime) -> float:
    """Seconds since the epoch of a naive-UTC (or aware) datetime."""
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class LagReading:
    """The lag as known now; None where nothing was measured yet."""

    seconds: float | None
    source: LagSource
    last_event_age: float | None
    """Seconds since the last source transaction was applied."""
    heartbeat_age: float | None
    """Seconds since the last heartbeat row was applied (None without the heartbeat table)."""
    alive_age: float | None
    """Seconds since the stream last showed life (a transaction, heartbeat row or
    replication heartbeat)."""


class LagTracker:
    """Thread-safe lag bookkeeping: the apply loop feeds it, scrapes and health read it."""

    def __init__(
        self,
        *,
        heartbeat_interval: float,
        heartbeat_table: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._interval = heartbeat_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._source = LagSource.HEARTBEAT if heartbeat_table else LagSource.EVENTS
        self._measured: float | None = None
        self._heartbeat_ts: float | None = None
        self._heartbeat_seen: float | None = None
        self._applied_at: float | None = None
        self._alive_at: float | None = None
        self._offset = 0.0

    @property
    def source(self) -> LagSource:
        return self._source

    def use_heartbeat_table(self, enabled: bool) -> None:
        """Switch the measure (the daemon learns at start whether the table could be made)."""
        with self._lock:
            self._source = LagSource.HEARTBEAT if enabled else LagSource.EVENTS
            self._measured = None

    def set_clock_offset(self, seconds: float) -> None:
        """The source's clock minus ours; corrects the fallback's ``now - commit_ts``."""
        with self._lock:
            self._offset = seconds

    def heartbeat_row(self, ts: datetime) -> float:
        """A heartbeat row written at ``ts`` (our clock) was applied; returns the lag."""
        now = self._clock()
        lag = max(now - epoch(ts), 0.0)
        with self._lock:
            self._source = LagSource.HEARTBEAT
            self._measured = lag
            self._heartbeat_ts = epoch(ts)
            self._heartbeat_seen = now
            self._alive_at = now
        return lag

    def transaction_applied(self, commit_ts: datetime | None) -> float | None:
        """A source transaction committed at ``commit_ts`` was applied.

        Returns the fallback lag when it is the measure in use, else None.
        """
        now = self._clock()
        with self._lock:
            self._applied_at = now
            self._alive_at = now
            if self._source is not LagSource.EVENTS or commit_ts is None:
                return None
            lag = max(now + self._offset - epoch(commit_ts), 0.0)
            self._measured = lag
            return lag

    def alive(self) -> None:
        """The stream showed life without data (a replication heartbeat)."""
        now = self._clock()
        with self._lock:
            self._alive_at = now

    def reading(self) -> LagReading:
        now = self._clock()
        with self._lock:
            seconds = self._measured
            if self._source is LagSource.HEARTBEAT and self._heartbeat_ts is not None:
                overdue = now - self._heartbeat_ts - self._interval
                seconds = max(seconds or 0.0, overdue)
            return LagReading(
                seconds=seconds,
                source=self._source,
                last_event_age=_age(now, self._applied_at),
                heartbeat_age=_age(now, self._heartbeat_seen),
                alive_age=_age(now, self._alive_at),
            )


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else max(now - then, 0.0)


def position_gap(
    applied: Position, current: Position, sizes: Sequence[tuple[str, int]] = ()
) -> int | None:
    """Bytes of binlog between ``applied`` and ``current``; None when it cannot be told.

    ``sizes`` are ``(file, size)`` as ``SHOW BINARY LOGS`` lists them, oldest first; they are
    needed only when the two positions are in different files. None when the applied file is
    no longer listed (purged) or lies after the current one (a different source).
    """
    if applied.file == current.file:
        return max(current.pos - applied.pos, 0)
    names = [name for name, _ in sizes]
    if applied.file not in names or current.file not in names:
        return None
    first, last = names.index(applied.file), names.index(current.file)
    if first > last:
        return None
    rest_of_applied = max(sizes[first][1] - applied.pos, 0)
    between = sum(size for _, size in sizes[first + 1:last])
    return rest_of_applied + between + current.pos


def binary_log_sizes(conn: pymysql.Connection[Any]) -> list[tuple[str, int]]:
    """``SHOW BINARY LOGS`` as ``(file, size)``, oldest first."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [(str(row[0]), int(row[1])) for row in cur.fetchall()]


def source_clock_offset(conn: pymysql.Connection[Any], clock: Callable[[], float]) -> float:
    """The source's UTC clock minus ours, read at the middle of one round trip."""
    before = clock()
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        row = cur.fetchone()
    after = clock()
    if row is None or not isinstance(row[0], datetime):
        return 0.0
    return epoch(row[0]) - (before + after) / 2


@dataclass(frozen=True, slots=True)
class GapSample:
    """One sample of the source's position against the applied one."""

    current: Position
    applied: Position | None
    gap_bytes: int | None
    clock_offset: float


def sample_gap(
    conn: pymysql.Connection[Any],
    applied: Position | None,
    clock: Callable[[], float] = time.time,
) -> GapSample:
    """Read the source's binlog end and compare it with ``applied``."""
    current = current_position(conn)
    gap: int | None = None
    if applied is not None:
        same_file = applied.file == current.file
        gap = position_gap(applied, current, () if same_file else binary_log_sizes(conn))
    return GapSample(current, applied, gap, source_clock_offset(conn, clock))
