"""Validation's reads: aurora chunks inside a consistent snapshot, target digests and rows.

A chunk is a primary-key range of one aurora table, ``lo`` exclusive and ``hi`` inclusive
(``None`` open), so the first and the last chunk also catch target rows below or above every
aurora key. Target rows are selected by the same range on the columns that hold the aurora
key (the file split's rows by ``source_table`` and ``source_id``); the hash of a target
range is computed by the target server, so a matching chunk costs one small result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql

from sync.apply.sql import quote
from sync.errors import ValidationError
from sync.model import Position
from sync.source.position import current_position, is_mariadb
from sync.validation.compare import Digest, Key, Rendered
from sync.validation.normal import ColumnKind, renderer, sql_row_hash

Conn: TypeAlias = "pymysql.Connection[Any]"


@dataclass(frozen=True, slots=True)
class Chunk:
    table: str
    lo: Key | None
    hi: Key | None


@dataclass(frozen=True, slots=True)
class TargetRange:
    """Where one target table keeps the rows made from one aurora table, and how to read them."""

    label: str
    physical: str
    table: str
    range_columns: tuple[str, ...]
    fixed: tuple[tuple[str, Any], ...]  # equality conditions besides the range
    kinds: tuple[ColumnKind, ...]  # compared columns, key columns first
    key_count: int

    def where(self, chunk: Chunk) -> tuple[str, list[Any]]:
        parts = [f"{quote(c)} = %s" for c, _ in self.fixed]
        params: list[Any] = [v for _, v in self.fixed]
        for op, bound in ((">", chunk.lo), ("<=", chunk.hi)):
            if bound is not None:
                parts.append(f"{_tuple(self.range_columns)} {op} {_tuple_params(len(bound))}")
                params.extend(bound)
        return " AND ".join(parts) or "1", params


def _tuple(columns: Sequence[str]) -> str:
    names = ", ".join(quote(c) for c in columns)
    return f"({names})" if len(columns) > 1 else names


def _tuple_params(n: int) -> str:
    return "(" + ", ".join(["%s"] * n) + ")" if n > 1 else "%s"


def open_snapshot(conn: Conn) -> Position:
    """Start a consistent-snapshot transaction and return the binlog position it sees.

    MariaDB names the snapshot's exact position; elsewhere the position read just before the
    snapshot is at or before it (changes in between look in flight and are re-checked)."""
    with conn.cursor() as cur:
        if not is_mariadb(conn):
            position = current_position(conn)
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            return position
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        status = {str(k): v for k, v in cur.fetchall()}
    file, pos = status.get("binlog_snapshot_file"), status.get("binlog_snapshot_position")
    if not file:
        return current_position(conn)
    return Position(str(file), int(str(pos)))


def read_chunk(conn: Conn, chunk: Chunk, *, schema: str, columns: Sequence[str],
               key: Sequence[str], limit: int | None) -> list[dict[str, Any]]:
    """Rows of ``chunk.table`` in ``chunk`` in key order (at most ``limit``)."""
    where: list[str] = []
    params: list[Any] = []
    for op, bound in ((">", chunk.lo), ("<=", chunk.hi)):
        if bound is not None:
            where.append(f"{_tuple(key)} {op} {_tuple_params(len(bound))}")
            params.extend(bound)
    names = ", ".join(quote(c) for c in columns)
    sql = (f"SELECT {names} FROM {quote(schema)}.{quote(chunk.table)}"
           f" WHERE {' AND '.join(where) or '1'} ORDER BY {', '.join(quote(k) for k in key)}")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def target_digest(conn: Conn, target: TargetRange, chunk: Chunk) -> Digest:
    where, params = target.where(chunk)
    sql = (f"SELECT COUNT(*), COALESCE(BIT_XOR({sql_row_hash(target.kinds)}), 0) "
           f"FROM {quote(target.physical)}.{quote(target.table)} WHERE {where}")
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    assert row is not None
    return Digest(int(row[0]), int(row[1]))


def target_rows(conn: Conn, target: TargetRange, chunk: Chunk) -> dict[Key, Rendered]:
    """The target's rows in ``chunk``, rendered, by key."""
    where, params = target.where(chunk)
    names = ", ".join(quote(k.name) for k in target.kinds)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {names} FROM {quote(target.physical)}.{quote(target.table)} "
                    f"WHERE {where}", params)
        rows = cur.fetchall()
    n = target.key_count
    render_row = renderer(target.kinds)
    return {tuple(row[:n]): render_row(row) for row in rows}


def column_kinds(conn: Conn, schema: str, table: str,
                 columns: Sequence[str]) -> tuple[ColumnKind, ...]:
    """The kinds of ``columns`` of a target table, in the order given."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()
        rounds = "tidb" in str(version[0] if version else "").lower()
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_SCALE, DATETIME_PRECISION "
                    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                    "TABLE_NAME = %s", (schema, table))
        found = {str(name): (str(kind).lower(), scale, precision)
                 for name, kind, scale, precision in cur.fetchall()}
    kinds = []
    for column in columns:
        if column not in found:
            raise ValidationError(
                f"target table {schema}.{table} has no column `{column}` that the mapping "
                "writes", table=f"{schema}.{table}",
                fix="run `aurora-sync check` and make the target schema match the mapping")
        kind, scale, precision = found[column]
        digits = precision if kind in ("datetime", "timestamp", "time") else scale
        kinds.append(ColumnKind(column, kind, int(digits or 0), rounds))
    return tuple(kinds)


__all__ = [
    "Chunk",
    "TargetRange",
    "column_kinds",
    "open_snapshot",
    "read_chunk",
    "target_digest",
    "target_rows",
]
