"""Validation's reads: aurora chunks inside a consistent snapshot, target digests and rows.

A chunk is a primary-key range of one aurora table, ``lo`` exclusive and ``hi`` inclusive
(``None`` open), so the first and the last chunk also catch target rows below or above every
aurora key. Target rows are selected by the same range on the columns that hold the aurora
key (the file split's rows by ``source_table`` and ``source_id``); the hash of a target
range is computed by the target server, so a matching chunk costs one small result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql

from sync.apply.sql import quote
from sync.errors import ValidationError
from sync.model import Position
from sync.source.position import current_position, is_mariadb
from sync.validation.compare import Digest, Key, Rendered
from sync.validation.normal import ColumnKind, renderer, row_hash, sql_row_hash

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
    hash_groups: tuple[tuple[str, ...], ...] = ()
    """Columns hashed apart, the hashes XOR-ed (empty: one hash over every column). The
    file rows hash their copied and their URL-derived columns apart, so that aurora's server
    can hash the first and Python the second."""

    def digest(self, rows: Iterable[Sequence[str]]) -> Digest:
        """The Python twin of the target's digest over rendered rows (in ``kinds`` order)."""
        if not self.hash_groups:
            return Digest.of(rows)
        names = [k.name for k in self.kinds]
        groups = [[names.index(n) for n in group] for group in self.hash_groups]
        count = acc = 0
        for row in rows:
            count += 1
            for group in groups:
                acc ^= row_hash([row[i] for i in group])
        return Digest(count, acc)

    def row_hash_sql(self) -> str:
        if not self.hash_groups:
            return sql_row_hash(self.kinds)
        by_name = {k.name: k for k in self.kinds}
        return " ^ ".join(f"({sql_row_hash([by_name[n] for n in group])})"
                          for group in self.hash_groups)

    def where(self, chunk: Chunk | None = None) -> tuple[str, list[Any]]:
        """The conditions selecting the range's rows in ``chunk`` (None: in every chunk)."""
        parts = [f"{quote(c)} = %s" for c, _ in self.fixed]
        params: list[Any] = [v for _, v in self.fixed]
        if chunk is not None:
            more, bounds = key_range([quote(c) for c in self.range_columns], chunk.lo, chunk.hi)
            parts += more
            params += bounds
        return " AND ".join(parts) or "1", params


def key_range(columns: Sequence[str], lo: Key | None,
              hi: Key | None) -> tuple[list[str], list[Any]]:
    """Conditions on the key expressions ``columns``: above ``lo``, up to ``hi`` (None: open),
    with their parameters."""
    names = columns[0] if len(columns) == 1 else f"({', '.join(columns)})"
    marks = "%s" if len(columns) == 1 else f"({', '.join(['%s'] * len(columns))})"
    parts: list[str] = []
    params: list[Any] = []
    for op, bound in ((">", lo), ("<=", hi)):
        if bound is not None:
            parts.append(f"{names} {op} {marks}")
            params.extend(bound)
    return parts, params


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
    where, params = key_range([quote(k) for k in key], chunk.lo, chunk.hi)
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
    sql = (f"SELECT COUNT(*), COALESCE(BIT_XOR({target.row_hash_sql()}), 0) "
           f"FROM {quote(target.physical)}.{quote(target.table)} WHERE {where}")
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    assert row is not None
    return Digest(int(row[0]), int(row[1]))


def interval(key_sql: str, bounds: Sequence[int]) -> str:
    """The SQL chunk number of an integer key: 0 up to ``bounds[0]``, ``i`` above
    ``bounds[i-1]`` up to ``bounds[i]`` (INTERVAL searches its sorted list by bisection)."""
    if not bounds:
        return "0"
    return f"INTERVAL({key_sql}, {', '.join(str(int(b) + 1) for b in bounds)})"


def target_digests(conn: Conn, target: TargetRange, bounds: Sequence[int]) -> dict[int, Digest]:
    """Every chunk's digest of an integer-keyed range in one scan, by chunk number
    (:func:`interval`)."""
    where, params = target.where()
    group = interval(quote(target.range_columns[0]), bounds)
    sql = (f"SELECT {group}, COUNT(*), BIT_XOR({target.row_hash_sql()}) "
           f"FROM {quote(target.physical)}.{quote(target.table)} WHERE {where} GROUP BY 1")
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return {int(r[0]): Digest(int(r[1]), int(r[2] or 0)) for r in cur.fetchall()}


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
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_SCALE, DATETIME_PRECISION, "
                    "IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                    "TABLE_NAME = %s", (schema, table))
        found = {str(name): (str(kind).lower(), scale, precision, str(nullable) == "YES")
                 for name, kind, scale, precision, nullable in cur.fetchall()}
    kinds = []
    for column in columns:
        if column not in found:
            raise ValidationError(
                f"target table {schema}.{table} has no column `{column}` that the mapping "
                "writes", table=f"{schema}.{table}",
                fix="run `aurora-sync check` and make the target schema match the mapping")
        kind, scale, precision, nullable = found[column]
        digits = precision if kind in ("datetime", "timestamp", "time") else scale
        kinds.append(ColumnKind(column, kind, int(digits or 0), rounds, nullable))
    return tuple(kinds)


__all__ = [
    "Chunk",
    "TargetRange",
    "column_kinds",
    "interval",
    "key_range",
    "open_snapshot",
    "read_chunk",
    "target_digest",
    "target_digests",
    "target_rows",
]
