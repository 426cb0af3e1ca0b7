"""Safe mode's answer to unique secondary keys: free a unique value before an upsert takes it.

Outside safe mode the target equals the source at the checkpoint and source order is valid,
so an upsert that clashes with another row on a unique secondary key is an error: the key
guard of :func:`sync.apply.sql.key_guard` makes the target refuse it. In safe mode (the
replay of a bootstrap's window, and the bootstrap copy itself) the target can be *ahead* of
the replayed events, and a row may hold a unique value it acquired after the replayed event.
That row is rewritten with its full image by a later event of the window, so deleting it
first is safe, and is what TiDB DM's safe mode achieves with ``REPLACE``.

So in safe mode every multi-row upsert on a table with unique secondary keys is preceded, in
the same transaction, by one ``DELETE`` per key::

    DELETE FROM t WHERE email IN ('a','b') AND NOT ((id, email) IN ((1,'a'),(2,'b')))

which removes the rows holding one of the statement's values under another (key, value)
pairing than the statement writes. Rows of the statement itself may go too (a row holding a
value another row of the statement takes): the statement inserts them again from their full
image. Comparisons use the columns' collations, as the unique index does; NULLs never clash.

A unique key the pre-delete cannot decide from the statement alone is left to the key guard
(a clash still halts): prefix and expression keys, keys with a column the statement does
not write on update, or that a reset writes. Keys that contain the whole primary key are
skipped: no other row can clash on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sync.apply.sql import UPSERT, Resolve, Statement, literal, quote, table_name
from sync.model import Upsert

CLASH_DELETE: Final = "clash_delete"

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


class UniqueKeyCache:
    """Unique secondary keys per physical table, read once per writer."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], tuple[UniqueKey, ...]] = {}

    def keys(self, cur: Cursor, schema: str, table: str) -> tuple[UniqueKey, ...]:
        found = self._known.get((schema, table))
        if found is None:
            found = self._known[(schema, table)] = read_unique_keys(cur, schema, table)
        return found

    def with_clash_deletes(
        self, cur: Cursor, statements: Sequence[Statement], resolve: Resolve
    ) -> list[Statement]:
        """``statements`` with each upsert preceded by its :func:`clash_deletes`."""
        out: list[Statement] = []
        for statement in statements:
            if statement.kind == UPSERT:
                ref = statement.target
                keys = self.keys(cur, resolve(ref.database), ref.table)
                out.extend(clash_deletes(statement, keys, resolve))
            out.append(statement)
        return out


def decidable(key: UniqueKey, op: Upsert) -> bool:
    """Whether the rows ``key`` may clash on follow from ``op``'s row alone."""
    written = set(op.update_columns) | set(op.key_columns)
    reset = {c for r in op.resets for c in r.values}
    return (
        key.whole
        and not set(op.key_columns) <= set(key.columns)
        and all(c in op.row and c in written and c not in reset for c in key.columns)
    )


def clash_deletes(
    statement: Statement, keys: Iterable[UniqueKey], resolve: Resolve
) -> list[Statement]:
    """The ``DELETE``s that free ``statement``'s unique values held under other keys."""
    ops = [op for op in statement.ops if isinstance(op, Upsert)]
    if not ops:
        return []
    out: list[Statement] = []
    for key in keys:
        if decidable(key, ops[0]):
            sql = _clash_delete_sql(ops, key, resolve)
            if sql is not None:
                out.append(Statement(sql, statement.target, CLASH_DELETE, ()))
    return out


def _clash_delete_sql(ops: Sequence[Upsert], key: UniqueKey, resolve: Resolve) -> str | None:
    values: dict[str, None] = {}
    pairs: dict[str, None] = {}
    for op in ops:
        value = tuple(op.row[c] for c in key.columns)
        # A NULL anywhere in the value clashes with nothing; in the NOT IN list it would
        # turn the whole test NULL and keep rows that must go.
        if any(v is None for v in value):
            continue
        values[_tuple(value)] = None
        pairs[_tuple((*op.key, *value))] = None
    if not values:
        return None
    target = _tuple_of_columns(key.columns)
    paired = _tuple_of_columns((*ops[0].key_columns, *key.columns))
    return (
        f"DELETE FROM {table_name(ops[0].target, resolve)} "
        f"WHERE {target} IN ({','.join(values)}) AND NOT ({paired} IN ({','.join(pairs)}))"
    )


def _tuple(values: Sequence[Any]) -> str:
    if len(values) == 1:
        return literal(values[0])
    return "(" + ",".join(map(literal, values)) + ")"


def _tuple_of_columns(columns: Sequence[str]) -> str:
    if len(columns) == 1:
        return quote(columns[0])
    return "(" + ", ".join(map(quote, columns)) + ")"


__all__ = [
    "CLASH_DELETE",
    "UniqueKey",
    "UniqueKeyCache",
    "clash_deletes",
    "decidable",
    "read_unique_keys",
]
