"""The heartbeat row on the source: what makes the lag measured, not inferred.

The daemon writes its own UTC clock into ``<schema>.heartbeat`` (one row, ``id = 1``) every
``heartbeat_interval`` seconds. The row travels through the binlog like any change; when the
pipeline applies it, :meth:`sync.monitor.metrics.Metrics.source_heartbeat` gets its ``ts`` and
``now - ts`` is the end-to-end lag. The writer's clock is the reader's clock, so skew between
the daemon's host and the source does not enter the figure.

:func:`ensure_heartbeat_table` creates the table when the source user may; without the grant
it returns False, says why and what to grant, and the lag falls back to event timestamps.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import pymysql
import structlog

from sync.db import error_code
from sync.errors import AuroraSyncError
from sync.model import RowChange
from sync.schema import quote_identifier

DEFAULT_SCHEMA: Final = "aurora_sync_heartbeat"
TABLE: Final = "heartbeat"
ROW_ID: Final = 1
# "access denied" to a database, a table command, or a privilege the statement needs.
DENIED_CODES: Final = frozenset({1044, 1045, 1142, 1227, 1370})
NO_SUCH_TABLE: Final = 1146

log = structlog.get_logger("aurora_sync.monitor.heartbeat")

Connect = Callable[[], "pymysql.Connection[Any]"]


def _table(schema: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(TABLE)}"


def create_statements(schema: str) -> tuple[str, str]:
    return (
        f"CREATE DATABASE IF NOT EXISTS {quote_identifier(schema)}",
        f"CREATE TABLE IF NOT EXISTS {_table(schema)} ("
        "id TINYINT PRIMARY KEY, ts DATETIME(6) NOT NULL, seq BIGINT)",
    )


def grant_fix(schema: str) -> str:
    return (
        f"create it as an administrator: {'; '.join(create_statements(schema))}; then "
        f"GRANT INSERT, UPDATE ON {quote_identifier(schema)}.* TO the SOURCE_DB_USER "
        "(without it, lag is taken from event timestamps: 1 s resolution, and not measured "
        "while aurora is idle)"
    )


def ensure_heartbeat_table(source_conn: pymysql.Connection[Any], schema: str) -> bool:
    """Create ``<schema>.heartbeat`` if needed; True when this user can write heartbeats.

    A table an administrator created beforehand counts as long as the user may write it.
    """
    try:
        with source_conn.cursor() as cur:
            for statement in create_statements(schema):
                cur.execute(statement)
    except pymysql.MySQLError as exc:
        if error_code(exc) not in DENIED_CODES:
            log.warning("heartbeat table not created", schema=schema, code=error_code(exc),
                        reason=_reason(exc), fix=grant_fix(schema))
            return False
        create_error = exc
    else:
        return True
    # No CREATE grant: an administrator may still have made the table for us.
    try:
        write_heartbeat(source_conn, schema, datetime.now(UTC).replace(tzinfo=None), 0)
    except pymysql.MySQLError as exc:
        log.warning("heartbeat table unavailable; lag falls back to event timestamps",
                    schema=schema, code=error_code(create_error), reason=_reason(create_error),
                    probe_code=error_code(exc), fix=grant_fix(schema))
        return False
    return True


def write_heartbeat(conn: pymysql.Connection[Any], schema: str, ts: datetime, seq: int) -> None:
    """Upsert the one heartbeat row (autocommit connection)."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {_table(schema)} (id, ts, seq) VALUES (%s, %s, %s) "
            "ON DUPLICATE KEY UPDATE ts = VALUES(ts), seq = VALUES(seq)",
            (ROW_ID, ts, seq),
        )
    # An autocommit=False connection would hold the row back from the binlog.
    conn.commit()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AuroraSyncError):
        return exc.reason
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def heartbeat_ts(change: RowChange, schema: str = DEFAULT_SCHEMA) -> datetime | None:
    """The ``ts`` of a heartbeat row change, or None when ``change`` is not one.

    The pipeline calls this for each change of an unmapped table; a non-None result goes to
    ``Metrics.source_heartbeat(ts, change.commit_ts)``.
    """
    if change.schema != schema or change.table != TABLE or change.after is None:
        return None
    ts = change.after.get("ts")
    return ts if isinstance(ts, datetime) else None


class HeartbeatWriter:
    """Writes the heartbeat row; keeps one connection and reopens it after a failure.

    :meth:`beat` never raises: a source that cannot be written is logged (once per outage at
    warning, then at debug) and the lag grows, which is what health checks must see.
    """

    def __init__(
        self,
        connect: Connect,
        schema: str = DEFAULT_SCHEMA,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self.schema = schema
        self._clock = clock
        self._conn: pymysql.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._failing = False
        self.seq = 0
        self.failures = 0

    def beat(self) -> bool:
        """Write one heartbeat; True when it was written."""
        with self._lock:
            ts = datetime.fromtimestamp(self._clock(), UTC).replace(tzinfo=None)
            try:
                if self._conn is None:
                    self._conn = self._connect()
                write_heartbeat(self._conn, self.schema, ts, self.seq + 1)
            except (pymysql.MySQLError, AuroraSyncError) as exc:
                self._failed(exc)
                return False
            self.seq += 1
            if self._failing:
                log.info("heartbeat writes resumed", schema=self.schema, seq=self.seq)
            self._failing = False
            return True

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.close_connection()
        level = log.debug if self._failing else log.warning
        level("heartbeat write failed", schema=self.schema, error=type(exc).__name__,
              code=error_code(exc), reason=_reason(exc), failures=self.failures,
              fix=exc.fix if isinstance(exc, AuroraSyncError) else None)
        self._failing = True

    def close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()

    def close(self) -> None:
        with self._lock:
            self.close_connection()
