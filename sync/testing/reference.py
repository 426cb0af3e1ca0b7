"""The reference a copy is judged against: aurora mapped from scratch, and a readable diff.

:func:`expected_state` reads every mapped aurora table parent-first (rows in key order,
streamed) and maps them as INSERTs into a fresh :class:`MemoryTarget`, exactly as a rebuild
would; :func:`diff_targets` compares a real target with it on the compared columns only and
says, per row, what is missing, extra or different.

Values are compared as Python values after these normalisations, each where the target
legitimately stores a value differently from the Python the mapping produced:

- booleans and integers: a BOOLEAN/TINYINT(1) column reads back as 0/1 where the mapping
  may hold True/False (``True == 1`` already; kept explicit for bool-vs-str mistakes);
- DECIMAL: a float the mapping holds is compared through ``Decimal(str(x))``, so a DECIMAL
  column's exact value equals the float's shortest decimal spelling;
- DATETIME/TIMESTAMP/TIME with fewer fractional digits in the target than in the source: the
  target drops (MariaDB) or rounds (MySQL, TiDB) the extra digits, so both are accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pymysql
import pymysql.cursors

from sync.apply.sql import quote
from sync.mapping.snapshot import map_snapshot
from sync.mapping.spec import MappingSpec, TargetTable
from sync.model import Key, Row
from sync.testing.memtarget import MemoryTarget

SNAPSHOT_TS = datetime(2000, 1, 1)  # commit-time columns are never compared
MAX_REPORTED = 20


def _key_columns(conn: pymysql.Connection[Any], schema: str, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
                    "TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' "
                    "ORDER BY ORDINAL_POSITION", (schema, table))
        return [str(r[0]) for r in cur.fetchall()]


def _stream(conn: pymysql.Connection[Any], schema: str, table: str) -> Iterator[Row]:
    order = ", ".join(quote(c) for c in _key_columns(conn, schema, table)) or "1"
    with conn.cursor(pymysql.cursors.SSDictCursor) as cur:
        cur.execute(f"SELECT * FROM {quote(schema)}.{quote(table)} ORDER BY {order}")
        yield from cur.fetchall_unbuffered()


def expected_state(source_conn: pymysql.Connection[Any], spec: MappingSpec,
                   source_schema: str) -> MemoryTarget:
    """aurora (``source_schema`` on ``source_conn``) mapped from scratch; one table is read at
    a time, each streamed."""
    rows: dict[str, Iterable[Row]] = {
        table: _stream(source_conn, source_schema, table) for table in spec.source_tables()
    }
    return map_snapshot(spec, rows, commit_ts=SNAPSHOT_TS)


def _precisions(conn: pymysql.Connection[Any], schema: str, table: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATETIME_PRECISION FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND DATETIME_PRECISION IS "
                    "NOT NULL", (schema, table))
        return {str(c): int(p) for c, p in cur.fetchall()}


def _fraction_variants(value: datetime | timedelta | time, digits: int) -> list[Any]:
    """``value`` with its microseconds truncated and rounded to ``digits``."""
    unit = 10 ** (6 - digits)
    micro = value.microsecond if not isinstance(value, timedelta) else value.microseconds
    down = micro - micro % unit
    if isinstance(value, timedelta):
        base = value - timedelta(microseconds=micro)
        return [base + timedelta(microseconds=down), base + timedelta(microseconds=down + unit)]
    truncated = value.replace(microsecond=down)
    if isinstance(truncated, datetime):
        return [truncated, truncated + timedelta(microseconds=unit)]
    return [truncated]


def same(expected: Any, actual: Any, precision: int | None = None) -> bool:
    """Whether a target value equals the mapped value, after the module's normalisations."""
    if isinstance(expected, bool) and not isinstance(actual, bool):
        return isinstance(actual, int) and int(expected) == actual
    if expected == actual:
        return True
    if isinstance(expected, float) and isinstance(actual, Decimal):
        return Decimal(str(expected)) == actual
    if precision is not None and isinstance(expected, datetime | timedelta | time):
        return actual in _fraction_variants(expected, precision)
    return False


def _read_target(conn: pymysql.Connection[Any], table: TargetTable, physical: str,
                 columns: tuple[str, ...]) -> dict[Key, dict[str, Any]]:
    names = ", ".join(quote(c) for c in (*table.key_columns, *columns))
    out: dict[Key, dict[str, Any]] = {}
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(f"SELECT {names} FROM {quote(physical)}.{quote(table.ref.table)}")
        n = len(table.key_columns)
        for row in cur.fetchall_unbuffered():
            out[tuple(row[:n])] = dict(zip(columns, row[n:], strict=True))
    return out


def _diff_rows(label: str, columns: tuple[str, ...], expected: Mapping[Key, Mapping[str, Any]],
               actual: Mapping[Key, Mapping[str, Any]], precisions: Mapping[str, int]) -> list[str]:
    problems: list[str] = []
    for key in sorted(expected.keys() - actual.keys(), key=repr):
        problems.append(f"{label}: missing row {key!r}")
    for key in sorted(actual.keys() - expected.keys(), key=repr):
        problems.append(f"{label}: extra row {key!r}")
    for key in sorted(expected.keys() & actual.keys(), key=repr):
        want, have = expected[key], actual[key]
        for column in columns:
            w, h = want.get(column), have[column]
            if not same(w, h, precisions.get(column)):
                problems.append(f"{label}: row {key!r} column {column}: expected {w!r}, "
                                f"target has {h!r}")
    return problems


def diff_targets(expected: MemoryTarget, target_conn: pymysql.Connection[Any],
                 spec: MappingSpec, database: Callable[[str], str]) -> list[str]:
    """Every difference between the target and ``expected`` on the compared columns of every
    target table the mapping writes (at most ``MAX_REPORTED`` lines per table, then a count);
    an empty list means the targets are exact."""
    problems: list[str] = []
    for table in spec.targets():
        physical = database(table.ref.database)
        columns = tuple(c for c in table.compared_columns if c not in table.key_columns)
        actual = _read_target(target_conn, table, physical, columns)
        precisions = _precisions(target_conn, physical, table.ref.table)
        found = _diff_rows(str(table.ref), columns, expected.tables.get(table.ref, {}), actual,
                           precisions)
        problems += found[:MAX_REPORTED]
        if len(found) > MAX_REPORTED:
            problems.append(f"{table.ref}: ... {len(found) - MAX_REPORTED} more differences")
    return problems


__all__ = ["diff_targets", "expected_state", "same"]
