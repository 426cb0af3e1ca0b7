"""Safe mode's answer to unique secondary keys: free a unique value before an upsert takes it.

Outside safe mode the target equals the source at the checkpoint and source order is valid,
so an upsert that clashes with another row on a unique secondary key is an error: the key
guard of :func:`sync.apply.sql.key_guard` makes the target refuse it. In safe mode (the
replay of a bootstrap's window, and the bootstrap copy itself) the target can be *ahead* of
the replayed events, and a row may hold a unique value it acquired after the replayed event.
That row is rewritten with its full image by a later event of the window, so deleting it
first is safe, and is what TiDB DM's safe mode achieves with ``REPLACE``.

Which rows must go, for one multi-row upsert (rows applied in order): the rows the statement
has already written hold their source values of that moment, which are unique; so a clash
can only be with a row the statement has not reached yet. A row holding value ``v`` is
deleted when an upsert of the statement writes ``v`` before the row's own first upsert (or
the row has none). Deciding that takes the statement's order, so the writer reads the
holders of the statement's values (one index lookup per value), decides here, and deletes
them by primary key, all in the batch's transaction::

    SELECT `id`, `email` FROM t WHERE `email` IN ('a','b')
    DELETE FROM t WHERE `id` IN (7)

The server decides which rows hold a value (by the columns' collations, as the unique index
does); matching those rows back to the statement's upserts is done here with case and
trailing spaces ignored, a rough stand-in for the collations. A rough match errs on
the safe side: an extra delete of a row the statement writes anyway (it is inserted again
from its full image, with its insert-only columns as the upsert has them), or a kept row
whose clash the key guard still refuses. NULLs never clash.

A unique key the statement alone cannot decide is left to the key guard (a clash still
halts): prefix and expression keys, keys with a column the upsert does not write on update,
or that a reset writes. Keys holding the whole primary key are skipped: no other row can
clash on them. Tables without unique secondary keys cost nothing beyond one catalog read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sync.apply.sql import Resolve, Statement, delete_head, key_tuple_sql, quote, table_name
from sync.model import Delete, Key, Upsert

_UNIQUE_KEYS_SQL: Final = (
    "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
    "AND INDEX_NAME <> 'PRIMARY' ORDER BY INDEX_NAME, SEQ_IN_INDEX"
)


class Cursor(Protocol):
    def execute(self, query: str, args: Any = ...) -> int: ...

    def fetchall(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """A unique secondary key; ``whole`` is False for a prefix or expression key."""

    name: str
    columns: tuple[str, ...]
    whole: bool = True


def read_unique_keys(cur: Cursor, schema: str, table: str) -> tuple[UniqueKey, ...]:
    """The unique secondary keys of ``schema.table`` as information_schema lists them."""
    cur.execute(_UNIQUE_KEYS_SQL, (schema, table))
    columns: dict[str, list[str]] = {}
    whole: dict[str, bool] = {}
    for name, column, sub_part in cur.fetchall():
        # An expression key part has no column name (MySQL 8 functional indexes).
        columns.setdefault(str(name), []).extend(() if column is None else (str(column),))
        whole[str(name)] = whole.get(str(name), True) and column is not None and sub_part is None
    return tuple(UniqueKey(n, tuple(c), whole[n]) for n, c in columns.items())


def decidable(key: UniqueKey, op: Upsert) -> bool:
    """Whether the rows ``key`` may clash on follow from ``op``'s row alone."""
    written = set(op.update_columns) | set(op.key_columns)
    reset = {c for r in op.resets for c in r.values}
    return (
        key.whole
        and not set(op.key_columns) <= set(key.columns)
        and all(c in op.row and c in written and c not in reset for c in key.columns)
    )


# --- the statements, pure ----------------------------------------------------------------


def _value(op: Upsert, key: UniqueKey) -> tuple[Any, ...] | None:
    value = tuple(op.row[c] for c in key.columns)
    return None if any(v is None for v in value) else value


def _columns(columns: Sequence[str]) -> str:
    if len(columns) == 1:
        return quote(columns[0])
    return "(" + ", ".join(map(quote, columns)) + ")"


def holders_sql(ops: Sequence[Upsert], key: UniqueKey, resolve: Resolve) -> str | None:
    """The ``SELECT`` of the rows holding one of ``ops``' values of ``key``: primary key
    columns, then ``key``'s columns. None when every value has a NULL."""
    values = dict.fromkeys(key_tuple_sql(v) for op in ops if (v := _value(op, key)))
    if not values:
        return None
    first = ops[0]
    return (
        f"SELECT {', '.join(map(quote, (*first.key_columns, *key.columns)))} "
        f"FROM {table_name(first.target, resolve)} "
        f"WHERE {_columns(key.columns)} IN ({','.join(values)})"
    )


def _loose(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.casefold().rstrip(" ") if isinstance(v, str) else v for v in value)


def doomed(ops: Sequence[Upsert], key: UniqueKey, holders: Iterable[Sequence[Any]]) -> list[Key]:
    """The primary keys among ``holders`` (rows of :func:`holders_sql`) that ``ops``,
    applied in order, would clash with: a row goes when an upsert writes its value before
    the row's own first upsert. A value matched to no upsert counts as written first."""
    first: dict[Key, int] = {}
    written: dict[tuple[Any, ...], int] = {}
    for at, op in enumerate(ops):
        first.setdefault(op.key, at)
        value = _value(op, key)
        if value is not None:
            written.setdefault(_loose(value), at)
    width = len(ops[0].key_columns)
    out: list[Key] = []
    for row in holders:
        pk, value = tuple(row[:width]), tuple(row[width:])
        own = first.get(pk, math.inf)
        taken = written.get(_loose(value), math.inf)
        if taken < own or taken == math.inf:
            out.append(pk)
    return list(dict.fromkeys(out))


def delete_keys_sql(op: Upsert, keys: Sequence[Key], resolve: Resolve) -> str:
    """``DELETE`` of the rows of ``op``'s table with ``keys``."""
    head = delete_head(Delete(op.target, op.key_columns, keys[0]), resolve)
    return head + ",".join(map(key_tuple_sql, keys)) + ")"


# --- against the target ------------------------------------------------------------------


class UniqueValues:
    """Frees unique values for upserts; knows each table's unique keys after one read."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], tuple[UniqueKey, ...]] = {}

    def keys(self, cur: Cursor, schema: str, table: str) -> tuple[UniqueKey, ...]:
        found = self._known.get((schema, table))
        if found is None:
            found = self._known[(schema, table)] = read_unique_keys(cur, schema, table)
        return found

    def free(self, cur: Cursor, statement: Statement, resolve: Resolve) -> Mapping[str, int]:
        """Delete the rows ``statement``'s upserts would clash with; rows deleted per key."""
        ops = [op for op in statement.ops if isinstance(op, Upsert)]
        if not ops:
            return {}
        ref = statement.target
        deleted: dict[str, int] = {}
        for key in self.keys(cur, resolve(ref.database), ref.table):
            select = holders_sql(ops, key, resolve) if decidable(key, ops[0]) else None
            if select is None:
                continue
            cur.execute(select)
            keys = doomed(ops, key, cur.fetchall())
            if keys:
                deleted[key.name] = cur.execute(delete_keys_sql(ops[0], keys, resolve))
        return deleted


__all__ = [
    "UniqueKey",
    "UniqueValues",
    "decidable",
    "delete_keys_sql",
    "doomed",
    "holders_sql",
    "read_unique_keys",
]
