"""Binlog positions: where the source is now, and GTID state carried along the stream.

``current_position`` asks the source; the GTID helpers are pure. MariaDB GTID state is one
``domain-server-seq`` per replication domain; a transaction's GTID replaces its domain's entry.
MySQL GTID sets (``uuid:1-5,uuid2:1-3``) are merged by the reader with the library's
``GtidSet`` (MySQL is not available here: that path was not run).
"""

from __future__ import annotations

from typing import Any

import pymysql

from sync.db import error_code
from sync.errors import SourceError
from sync.model import Position

_PARSE_ERROR = 1064


def is_mariadb(conn: pymysql.Connection[Any]) -> bool:
    return "mariadb" in str(conn.get_server_info()).lower()  # type: ignore[no-untyped-call]


def current_position(conn: pymysql.Connection[Any]) -> Position:
    """The source's binlog end: file, position and the GTID state there (where it has one).

    MariaDB: ``SHOW MASTER STATUS`` then ``BINLOG_GTID_POS(file, pos)``, which computes the GTID
    state of exactly that position (``@@gtid_binlog_pos`` read separately could be a
    transaction later). MySQL 8.4 renamed the statement ``SHOW BINARY LOG STATUS``; older
    MySQL (and Aurora) only know ``SHOW MASTER STATUS``; both return ``Executed_Gtid_Set``.
    The MySQL branches were not run here (no MySQL server available).
    """
    with conn.cursor() as cur:
        if is_mariadb(conn):
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            if row is None:
                raise _binlog_off()
            file, pos = str(row[0]), int(row[1])
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
            gtid_row = cur.fetchone()
            gtid = str(gtid_row[0]) if gtid_row and gtid_row[0] else None
            return Position(file, pos, gtid)
        try:
            cur.execute("SHOW BINARY LOG STATUS")
        except pymysql.err.ProgrammingError as exc:
            if error_code(exc) != _PARSE_ERROR:
                raise
            cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
        if row is None:
            raise _binlog_off()
        gtid_set = str(row[4]).replace("\n", "") if len(row) > 4 and row[4] else None
        return Position(str(row[0]), int(row[1]), gtid_set)


def mariadb_gtid_pos(conn: pymysql.Connection[Any], position: Position) -> str | None:
    """The MariaDB GTID state at ``position`` (None if the server cannot tell)."""
    with conn.cursor() as cur:
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (position.file, position.pos))
        row = cur.fetchone()
    return str(row[0]) if row and row[0] else None


def parse_mariadb_gtids(state: str | None) -> dict[int, str]:
    """``"0-1-5,1-2-3"`` → ``{0: "0-1-5", 1: "1-2-3"}`` (one entry per domain)."""
    result: dict[int, str] = {}
    for item in (state or "").split(","):
        gtid = item.strip()
        if gtid:
            result[int(gtid.split("-", 1)[0])] = gtid
    return result


def format_mariadb_gtids(state: dict[int, str]) -> str:
    return ",".join(state[domain] for domain in sorted(state))


def _binlog_off() -> SourceError:
    return SourceError(
        "the source has no binary log (SHOW MASTER STATUS returned nothing)",
        fix="enable log_bin with binlog_format=ROW on the source (see `aurora-sync check`)",
    )
