"""What the servers' information_schema says about tables the mapping touches (I/O).

Each function takes an open DB-API connection (the caller owns it and its TLS settings) and
returns plain values for :mod:`sync.mapping.check` and the :class:`~sync.mapping.Mapper`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sync.mapping.check import Column, LiveForeignKey
from sync.model import TableRef


class _Cursor(Protocol):
    def execute(self, query: str, args: Any = ..., /) -> Any: ...
    def fetchall(self) -> Sequence[Sequence[Any]]: ...
    def close(self) -> Any: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...


def _rows(conn: Connection, sql: str, args: Sequence[object]) -> list[Sequence[Any]]:
    cur: _Cursor = conn.cursor()
    try:
        cur.execute(sql, args)
        return list(cur.fetchall())
    finally:
        cur.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_COLUMNS = (
    "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
    "EXTRA, CHARACTER_MAXIMUM_LENGTH, COLUMN_KEY FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION"
)


def read_columns(conn: Connection, schema: str) -> dict[str, dict[str, Column]]:
    """Table -> column name -> Column, in column order, for every table of ``schema``."""
    out: dict[str, dict[str, Column]] = {}
    for table, name, dtype, ctype, nullable, default, extra, length, key in _rows(
        conn, _COLUMNS, (schema,)
    ):
        extra_text = _text(extra or "").lower()
        # MariaDB reports a missing default as NULL, a NULL default as the string 'NULL'.
        has_default = default is not None or "auto_increment" in extra_text
        out.setdefault(_text(table), {})[_text(name)] = Column(
            name=_text(name),
            data_type=_text(dtype).lower(),
            column_type=_text(ctype).lower(),
            nullable=_text(nullable) == "YES",
            has_default=has_default or "default" in extra_text,
            max_length=None if length is None else int(length),
            primary=_text(key) == "PRI",
        )
    return out


def read_target_columns(
    conn: Connection, databases: Mapping[str, str]
) -> dict[TableRef, dict[str, Column]]:
    """Columns of every table of the target, keyed by LOGICAL database name.

    ``databases`` maps logical names (``gateway_db``) to physical ones (``*_DB_NAME``).
    """
    out: dict[TableRef, dict[str, Column]] = {}
    for logical, physical in databases.items():
        for table, columns in read_columns(conn, physical).items():
            out[TableRef(logical, table)] = columns
    return out


_PRIMARY_KEYS = (
    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
    "WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN ({}) "
    "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
)


def read_primary_keys(
    conn: Connection, schemas: Iterable[str]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """(schema, table) -> primary key columns, for the Mapper's generic routes."""
    wanted = list(schemas)
    if not wanted:
        return {}
    sql = _PRIMARY_KEYS.format(", ".join(["%s"] * len(wanted)))
    keys: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in _rows(conn, sql, wanted):
        keys.setdefault((_text(schema), _text(table)), []).append(_text(column))
    return {k: tuple(v) for k, v in keys.items()}


# The parents come from KEY_COLUMN_USAGE; the actions from SHOW CREATE TABLE, because MariaDB
# shows REFERENTIAL_CONSTRAINTS only to users with more than SELECT (a least-privilege
# replication login sees it empty, which would read as "no foreign keys").
_REFERENCES = (
    "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME "
    "FROM information_schema.KEY_COLUMN_USAGE "
    "WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL"
)
_ACTION = r"(RESTRICT|CASCADE|SET NULL|NO ACTION|SET DEFAULT)"
_CONSTRAINT = re.compile(
    r"FOREIGN KEY \(`(?P<column>[^`]+)`\) REFERENCES `(?P<parent>[^`]+)` \([^)]*\)"
    rf"(?: ON DELETE (?P<delete>{_ACTION}))?(?: ON UPDATE (?P<update>{_ACTION}))?",
)


def _rule(rule: object) -> str:
    return _text(rule).lower().replace(" ", "_")


def read_foreign_keys(conn: Connection, schema: str) -> dict[tuple[str, str], LiveForeignKey]:
    """(table, column) -> the parent and ON DELETE / ON UPDATE actions of ``schema``.

    An action the DDL leaves out is RESTRICT, as the server treats it."""
    tables = sorted({_text(r[0]) for r in _rows(conn, _REFERENCES, (schema,))})
    out: dict[tuple[str, str], LiveForeignKey] = {}
    for table in tables:
        rows = _rows(conn, f"SHOW CREATE TABLE `{schema}`.`{table}`", ())
        ddl = _text(rows[0][1]) if rows else ""
        for match in _CONSTRAINT.finditer(ddl):
            out[(table, match["column"])] = LiveForeignKey(
                match["parent"],
                _rule(match["delete"] or "restrict"),
                _rule(match["update"] or "restrict"),
            )
    return out


__all__ = ["read_columns", "read_foreign_keys", "read_primary_keys", "read_target_columns"]
