"""What the servers' information_schema says about tables the mapping touches (I/O).

Each function takes an open DB-API connection (the caller owns it and its TLS settings) and
returns plain values for :mod:`sync.mapping.check` and the :class:`~sync.mapping.Mapper`.
"""

from __future__ import annotations

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


_FOREIGN_KEYS = (
    "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE, r.UPDATE_RULE "
    "FROM information_schema.KEY_COLUMN_USAGE k "
    "JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
    "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
    "AND r.TABLE_NAME = k.TABLE_NAME "
    "WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL"
)


def _rule(rule: object) -> str:
    return _text(rule).lower().replace(" ", "_")


def read_foreign_keys(conn: Connection, schema: str) -> dict[tuple[str, str], LiveForeignKey]:
    """(table, column) -> the parent and ON DELETE / ON UPDATE actions of ``schema``."""
    return {
        (_text(table), _text(column)): LiveForeignKey(_text(parent), _rule(on_del), _rule(on_upd))
        for table, column, parent, on_del, on_upd in _rows(conn, _FOREIGN_KEYS, (schema,))
    }


__all__ = ["read_columns", "read_foreign_keys", "read_primary_keys", "read_target_columns"]
