"""The source tables a run copies, described from the source's catalog: columns in order,
the key paginated on, the row estimate, and the key range for slicing.

The key is the primary key; a table without one may be copied by a unique key of NOT NULL
columns when the mapping names exactly those columns as its ``key``; otherwise the run stops
with a :class:`~sync.errors.BootstrapError` naming the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pymysql

from bootstrap.chunks import TableInfo, lookup_parents
from sync.apply.sql import quote
from sync.errors import BootstrapError
from sync.mapping.spec import MappingSpec
from sync.model import TableRef

_COLUMNS = ("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION")
_UNIQUE = ("SELECT s.INDEX_NAME, s.COLUMN_NAME, c.IS_NULLABLE FROM information_schema.STATISTICS s "
           "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND "
           "c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME "
           "WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s AND s.NON_UNIQUE = 0 "
           "ORDER BY s.INDEX_NAME = 'PRIMARY' DESC, s.INDEX_NAME, s.SEQ_IN_INDEX")
_ESTIMATE = ("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
             "AND TABLE_NAME = %s")
_TABLES = ("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
           "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")


def _query(conn: pymysql.Connection[Any], sql: str, args: Sequence[Any]) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _unique_keys(conn: pymysql.Connection[Any], schema: str,
                 table: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """index name -> (columns, all NOT NULL), the primary key first."""
    keys: dict[str, tuple[tuple[str, ...], bool]] = {}
    for index, column, nullable in _query(conn, _UNIQUE, (schema, table)):
        columns, not_null = keys.get(str(index), ((), True))
        keys[str(index)] = ((*columns, str(column)), not_null and nullable == "NO")
    return keys


def paging_key(conn: pymysql.Connection[Any], schema: str, table: str,
               wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The key the copy pages on (see the module docstring)."""
    keys = _unique_keys(conn, schema, table)
    primary = keys.get("PRIMARY")
    if primary is not None:
        if wanted is not None and primary[0] != wanted:
            raise BootstrapError(
                f"the mapping's key {list(wanted)} is not the primary key {list(primary[0])}",
                table=f"{schema}.{table}",
                fix="set `key:` of this table in mapping.yaml to the source's primary key",
            )
        return primary[0]
    for columns, not_null in keys.values():
        if wanted is not None and columns == wanted and not_null:
            return columns
    raise BootstrapError(
        "the table has no primary key, so it cannot be copied in key order",
        table=f"{schema}.{table}",
        fix="add a primary key to the table, or create a UNIQUE key on NOT NULL columns and "
        "name exactly those columns as the table's `key:` in mapping.yaml",
    )


def describe(conn: pymysql.Connection[Any], spec: MappingSpec, schema: str, table: str,
             *, target: TableRef, label: str) -> TableInfo:
    columns = tuple(str(r[0]) for r in _query(conn, _COLUMNS, (schema, table)))
    if not columns:
        raise BootstrapError("the table does not exist in the source", table=f"{schema}.{table}",
                             fix="create it, or remove it from mapping.yaml")
    mapped = spec.tables.get(table) if schema == spec.source_schema else None
    key = paging_key(conn, schema, table, mapped.key if mapped else None)
    target_key = tuple((mapped.target_column_of(k) or k) if mapped else k for k in key)
    estimate = _query(conn, _ESTIMATE, (schema, table))
    return TableInfo(
        schema=schema, table=table, label=label, columns=columns, key=key,
        target_key=target_key, target=target,
        parents=lookup_parents(spec, table) if mapped else frozenset(),
        estimated_rows=int(estimate[0][0] or 0) if estimate else 0,
    )


def copied_tables(conn: pymysql.Connection[Any], spec: MappingSpec,
                  only: Sequence[str] | None) -> list[TableInfo]:
    """Mapped tables parent-first, then the tables of generic routes (``schema.table``)."""
    wanted: list[tuple[str, str, TableRef, str]] = [
        (spec.source_schema, t, spec.tables[t].target, t) for t in spec.source_tables()
    ]
    for route in spec.routes:
        for (name,) in _query(conn, _TABLES, (route.schema,)):
            if route.tables is None or str(name) in route.tables:
                wanted.append((route.schema, str(name), TableRef(route.database, str(name)),
                               f"{route.schema}.{name}"))
    if only is not None:
        unknown = sorted(set(only) - {label for *_, label in wanted})
        if unknown:
            raise BootstrapError(
                f"not a copied table: {', '.join(unknown)}",
                fix="name mapped aurora tables as they are, routed ones as schema.table: "
                + ", ".join(label for *_, label in wanted),
            )
        wanted = [w for w in wanted if w[3] in only]
    return [describe(conn, spec, schema, table, target=target, label=label)
            for schema, table, target, label in wanted]


def key_range(conn: pymysql.Connection[Any], info: TableInfo) -> tuple[int | None, int | None]:
    """MIN and MAX of a single integer key (None, None otherwise or when empty)."""
    if len(info.key) != 1:
        return None, None
    column = quote(info.key[0])
    rows = _query(conn, f"SELECT MIN({column}), MAX({column}) FROM "
                  f"{quote(info.schema)}.{quote(info.table)}", ())
    low, high = rows[0]
    if not isinstance(low, int) or not isinstance(high, int):
        return None, None
    return low, high


__all__ = ["copied_tables", "describe", "key_range", "paging_key"]
