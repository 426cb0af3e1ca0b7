"""Where the stream must start, and where the copy's window ends (DESIGN.md decision 3).

The start is read before any row: on MariaDB from a lock-free consistent snapshot
(``START TRANSACTION WITH CONSISTENT SNAPSHOT`` then the session's ``binlog_snapshot_file`` /
``binlog_snapshot_position``, the exact binlog place of that snapshot); elsewhere (MySQL 8,
Aurora: no ``FLUSH TABLES WITH READ LOCK``) the binlog end read before the first row, which
is at or before every row the copy reads. Each copy worker opens its own snapshot (its own
connection); every one opens after the start, so the start is the earliest of them.

The end: on MariaDB the latest snapshot any worker read from (every copied row is as the
source had it at or before that place); elsewhere the binlog end read after the last chunk.
The stream replays ``[start, end]`` in safe mode. Only the MariaDB branch ran here; the MySQL
and Aurora branches (``current_position`` and autocommit chunk reads) were not run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import pymysql

from sync.errors import BootstrapError
from sync.model import Position
from sync.source.position import current_position, is_mariadb, mariadb_gtid_pos

Method = Literal["consistent_snapshot", "lockless"]
CONSISTENT: Final[Method] = "consistent_snapshot"
LOCKLESS: Final[Method] = "lockless"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A read view opened on one source connection: its binlog place (where the server
    tells it) and the source's clock then, the commit time given to the rows read in it."""

    position: Position | None
    taken_at: datetime


def snapshot_method(conn: pymysql.Connection[Any]) -> Method:
    return CONSISTENT if is_mariadb(conn) else LOCKLESS


def open_snapshot(conn: pymysql.Connection[Any], method: Method) -> Snapshot:
    """Begin the read view the next chunks are read in.

    MariaDB: a consistent-snapshot transaction and its exact binlog position. Elsewhere no
    transaction is held (each chunk is its own autocommit read, so no long-lived read view
    holds back purge on the live source) and the position is unknown.
    """
    with conn.cursor() as cur:
        if method == LOCKLESS:
            cur.execute("SELECT UTC_TIMESTAMP(6)")
            return Snapshot(None, _first(cur.fetchone()))
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        taken_at = _first(cur.fetchone())
        cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        status = {str(name).lower(): value for name, value in cur.fetchall()}
    file, pos = status.get("binlog_snapshot_file"), status.get("binlog_snapshot_position")
    if not file or pos is None:
        raise BootstrapError(
            "the source has no binlog snapshot position (binlog_snapshot_file is empty)",
            fix="enable log_bin with binlog_format=ROW on the source (`aurora-sync check`)",
        )
    position = Position(str(file), int(pos))
    return Snapshot(Position(position.file, position.pos, mariadb_gtid_pos(conn, position)),
                    taken_at)


def close_snapshot(conn: pymysql.Connection[Any]) -> None:
    conn.rollback()


def capture_start(conn: pymysql.Connection[Any]) -> tuple[Position, Method]:
    """The position the stream starts from, read before any row is copied."""
    method = snapshot_method(conn)
    if method == CONSISTENT:
        snapshot = open_snapshot(conn, method)
        close_snapshot(conn)
        assert snapshot.position is not None
        return snapshot.position, method
    return current_position(conn), method


class EndTracker:
    """The latest snapshot position seen by any worker of this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Position | None = None

    def seen(self, position: Position | None) -> None:
        if position is None:
            return
        with self._lock:
            if self._latest is None or position > self._latest:
                self._latest = position

    def end(self, conn: pymysql.Connection[Any], method: Method, start: Position) -> Position:
        """Where the safe-mode window ends: never before ``start``."""
        with self._lock:
            latest = self._latest
        end = latest if method == CONSISTENT and latest is not None else current_position(conn)
        return max(end, start)


def _first(row: Any) -> Any:
    if not row:
        raise BootstrapError("the source returned no row for a status query")
    return row[0]


__all__ = [
    "CONSISTENT", "LOCKLESS", "EndTracker", "Method", "Snapshot", "capture_start",
    "close_snapshot", "open_snapshot", "snapshot_method",
]
