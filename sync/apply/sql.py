"""Target operations as SQL text: pure functions, no connection.

Values are inlined as escaped literals rather than sent as parameters: PyMySQL interpolates
parameters into the text anyway, so building the text once here costs the same and lets a
statement be measured (bytes), logged without values, and re-run row by row when the target
refuses it. Literals assume the target session does not use ``NO_BACKSLASH_ESCAPES``; the
writer makes sure of that.

Identifiers are validated and backtick-quoted; a name outside ``[A-Za-z0-9_$]`` is refused
rather than escaped, so no mapping typo can turn into SQL.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any, Final, TypeGuard

from pymysql.converters import escape_item

from sync.model import (
    Condition,
    Delete,
    DeleteWhere,
    Eq,
    InSelect,
    Reset,
    TableRef,
    TargetOp,
    UpdateWhere,
    Upsert,
)

Resolve = Callable[[str], str]
"""Logical database name → physical name (``Settings.database``)."""

_IDENTIFIER: Final = re.compile(r"[A-Za-z0-9_$]{1,64}")

UPSERT: Final = "upsert"
DELETE: Final = "delete"
UPDATE_WHERE: Final = "update_where"
DELETE_WHERE: Final = "delete_where"


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement and the operations it carries (to find a refused row again)."""

    sql: str | bytes  # bytes: rendered elsewhere in the connection's charset (utf8mb4)
    target: TableRef
    kind: str
    ops: tuple[TargetOp, ...]


def quote(name: str) -> str:
    """``name`` backtick-quoted, after checking it is a plain identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"refusing SQL identifier {name!r}: only [A-Za-z0-9_$], 1-64 chars")
    return f"`{name}`"


def table_name(ref: TableRef, resolve: Resolve) -> str:
    return f"{quote(resolve(ref.database))}.{quote(ref.table)}"


# --- literals ---------------------------------------------------------------------------


# PyMySQL's escape_string, faster: most text needs no escape, found by one regex scan at C
# speed, where str.translate looks every character up in a dict (a quarter of the
# bootstrap's time on syllabus text). Escaped text goes through C-speed replaces.
_NEEDS_ESCAPE: Final = re.compile("[\0\n\r\\\\'\"\x1a]")


def _str(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return "'" + value + "'"
    return "'" + (value.replace("\\", "\\\\").replace("\0", "\\0").replace("\n", "\\n")
                  .replace("\r", "\\r").replace("\x1a", "\\Z").replace('"', '\\"')
                  .replace("'", "\\'")) + "'"


def _bytes(value: bytes) -> str:
    return "_binary X'" + value.hex() + "'"


def _json(value: Any) -> str:
    return _str(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _set(value: Any) -> str:
    return _str(",".join(sorted(value)))


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be stored in MySQL/TiDB")
    return repr(value) + ("" if "e" in repr(value) else "e0")


_last_datetime: tuple[datetime.datetime | None, str] = (None, "")


def _datetime(value: datetime.datetime) -> str:
    # A transaction's commit time fills the time columns of each of its rows (and the
    # files row beside it): the same object, written once.
    global _last_datetime  # noqa: PLW0603 - one entry, swapped whole (atomic under the GIL)
    last = _last_datetime
    if last[0] is value:
        return last[1]
    # isoformat is several times faster than PyMySQL's format-based escape. Sessions run
    # in UTC, so an aware value is written as its naive UTC time (PyMySQL drops the offset).
    text = value
    if text.tzinfo is not None:
        text = text.astimezone(datetime.UTC).replace(tzinfo=None)
    literal = "'" + text.isoformat(" ") + "'"
    _last_datetime = (value, literal)
    return literal


_LITERALS: Final[dict[type, Callable[[Any], str]]] = {
    int: str,
    str: _str,
    type(None): lambda _: "NULL",
    bool: lambda v: "1" if v else "0",
    bytes: _bytes,
    bytearray: lambda v: _bytes(bytes(v)),
    decimal.Decimal: str,
    float: _float,
    dict: _json,
    list: _json,
    set: _set,
    frozenset: _set,
    datetime.datetime: _datetime,
    datetime.date: lambda v: "'" + v.isoformat() + "'",
    datetime.time: escape_item,
    datetime.timedelta: escape_item,
}


def literal(value: Any) -> str:
    """``value`` as a SQL literal."""
    try:
        return _LITERALS[type(value)](value)
    except KeyError:
        raise TypeError(f"no SQL literal for a value of type {type(value).__name__}") from None


# --- conditions -------------------------------------------------------------------------


def where_sql(where: Sequence[Condition], resolve: Resolve) -> str:
    """All of ``where``; an empty tuple matches every row, as in MemoryTarget."""
    if not where:
        return "TRUE"
    return " AND ".join(_condition(c, resolve) for c in where)


def _condition(cond: Condition, resolve: Resolve) -> str:
    if isinstance(cond, Eq):
        return _eq(cond)
    sub = (
        f"SELECT {quote(cond.select)} FROM {table_name(cond.source, resolve)} "
        f"WHERE {where_sql(cond.where, resolve)}"
    )
    return f"{quote(cond.column)} IN ({sub})"


def _eq(cond: Eq) -> str:
    # An Eq on NULL matches nothing (the reference model's rule, and SQL's `=` too).
    if cond.value is None:
        return "FALSE"
    column, value = quote(cond.column), literal(cond.value)
    if isinstance(cond.value, str):
        # Case- and pad-insensitive collations would match 'a' for 'A ': the reference
        # compares exactly. The plain `=` keeps the index usable; the binary one decides.
        return f"({column} = {value} AND CAST({column} AS BINARY) = CAST({value} AS BINARY))"
    return f"{column} = {value}"


# --- statements -------------------------------------------------------------------------


def upsert_head(op: Upsert, resolve: Resolve) -> tuple[str, str]:
    """The ``INSERT INTO t (cols) VALUES`` prefix and the ``ON DUPLICATE KEY UPDATE`` tail
    shared by every upsert with ``op``'s signature."""
    columns = tuple(op.row)
    head = (
        f"INSERT INTO {table_name(op.target, resolve)} "
        f"({', '.join(quote(c) for c in columns)}) VALUES "
    )
    assignments = odku_assignments(columns, op.key_columns, op.update_columns, op.resets)
    return head, " ON DUPLICATE KEY UPDATE " + ", ".join(assignments)


def row_values(op: Upsert) -> str:
    # Every upserted row of the stream passes here: text, NULL and integers (most values)
    # skip the table's call.
    parts: list[str] = []
    add = parts.append
    try:
        for value in op.row.values():
            vtype = type(value)
            if vtype is str:
                add(_str(value))
            elif value is None:
                add("NULL")
            elif vtype is int:
                add(str(value))
            else:
                add(_LITERALS[vtype](value))
    except KeyError:
        # Only to name the value that has no literal.
        return "(" + ",".join(map(literal, op.row.values())) + ")"
    return "(" + ",".join(parts) + ")"


def odku_assignments(
    columns: Sequence[str],
    key_columns: Sequence[str],
    update_columns: Sequence[str],
    resets: Sequence[Reset],
) -> list[str]:
    """The ``col = expr`` list, ordered so no expression reads a column already assigned.

    MySQL and TiDB apply these left to right and a later expression sees an earlier
    assignment, so a reset must compare its watched column before that column is overwritten.
    """
    exprs: dict[str, str] = {c: f"VALUES({quote(c)})" for c in update_columns}
    reads: dict[str, set[str]] = {}
    for reset in resets:
        changed = _changed(reset.watch, columns)
        for column, value in reset.values.items():
            before = exprs.get(column, quote(column))
            exprs[column] = f"IF({changed}, {literal(value)}, {before})"
            reads.setdefault(reset.watch, set()).add(column)
    ordered = [f"{quote(c)} = {exprs[c]}" for c in _assignment_order(exprs, reads)]
    return [*key_guard(key_columns), *ordered]


def key_guard(key_columns: Sequence[str]) -> list[str]:
    """Assignments that fail the statement when the row it found is not the row keyed.

    ODKU updates whichever row a new row clashes with, on *any* unique key: a row clashing
    on a secondary unique key would silently overwrite another row. Setting the NOT NULL
    key to NULL then makes a strict-mode server refuse with 1048 (the writer enforces
    STRICT_TRANS_TABLES) instead; when the key matches, the guard changes nothing.
    """
    return [
        f"{quote(c)} = IF({quote(c)} <=> VALUES({quote(c)}), {quote(c)}, NULL)"
        for c in key_columns
    ]


def _changed(watch: str, columns: Sequence[str]) -> str:
    # Binary comparison: the reference compares values exactly, not by collation.
    new = f"VALUES({quote(watch)})" if watch in columns else "NULL"
    return f"NOT (CAST({quote(watch)} AS BINARY) <=> CAST({new} AS BINARY))"


def _assignment_order(exprs: Mapping[str, str], reads: Mapping[str, set[str]]) -> list[str]:
    graph: dict[str, set[str]] = {c: set() for c in exprs}
    for watched, readers in reads.items():
        if watched in graph:
            graph[watched] |= {r for r in readers if r != watched and r in graph}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ValueError(
            f"upsert resets read each other's columns in a cycle ({exc.args[1]}): "
            "no left-to-right assignment order can compare them before overwriting"
        ) from None


def key_tuple_sql(key: Sequence[Any]) -> str:
    if len(key) == 1:
        return literal(key[0])
    return "(" + ",".join(map(literal, key)) + ")"


def delete_head(op: Delete, resolve: Resolve) -> str:
    cols = op.key_columns
    target = quote(cols[0]) if len(cols) == 1 else "(" + ", ".join(map(quote, cols)) + ")"
    return f"DELETE FROM {table_name(op.target, resolve)} WHERE {target} IN ("


def update_where_sql(op: UpdateWhere, resolve: Resolve, where: str | None = None) -> str:
    """``op`` as an UPDATE; ``where`` replaces its conditions' text when given."""
    sets = ", ".join(f"{quote(c)} = {literal(v)}" for c, v in op.values.items())
    return (
        f"UPDATE {table_name(op.target, resolve)} SET {sets} "
        f"WHERE {where if where is not None else where_sql(op.where, resolve)}"
    )


def delete_where_sql(op: DeleteWhere, resolve: Resolve, where: str | None = None) -> str:
    """``op`` as a DELETE; ``where`` replaces its conditions' text when given."""
    return (f"DELETE FROM {table_name(op.target, resolve)} "
            f"WHERE {where if where is not None else where_sql(op.where, resolve)}")


def reached_through_parents(op: TargetOp) -> TypeGuard[UpdateWhere | DeleteWhere]:
    """Whether ``op`` reaches its rows through a parent (an ``IN (SELECT ...)`` condition):
    :func:`keyed_where_sql` runs it instead of its statement's text."""
    return isinstance(op, UpdateWhere | DeleteWhere) and \
        any(isinstance(c, InSelect) for c in op.where)


def keyed_where_sql(op: UpdateWhere | DeleteWhere, resolve: Resolve,
                    read: Callable[[str], Sequence[Any]]) -> str | None:
    """``op`` with each ``IN (SELECT ...)`` of its conditions read first (``read`` runs a
    query in the writer's transaction and returns its first column) and written as the keys
    it returned; None when one returned none (the statement matches no row).

    A single-table UPDATE or DELETE whose condition holds a subquery is not turned into a
    join by MariaDB 10.x: it reads every row of the table being changed and runs the
    subquery for each (a files table of millions of rows, scanned for one semester moved to
    another user). The subquery alone, a SELECT, is joined by the optimizer through its
    indexes, and the change by key uses the table's own."""
    parts: list[str] = []
    for cond in op.where:
        if isinstance(cond, Eq):
            parts.append(_eq(cond))
            continue
        sub = (f"SELECT DISTINCT {quote(cond.select)} FROM {table_name(cond.source, resolve)} "
               f"WHERE {where_sql(cond.where, resolve)}")
        keys = [k for k in read(sub) if k is not None]
        if not keys:
            return None
        parts.append(f"{quote(cond.column)} IN ({', '.join(literal(k) for k in keys)})")
    where = " AND ".join(parts)
    if isinstance(op, UpdateWhere):
        return update_where_sql(op, resolve, where)
    return delete_where_sql(op, resolve, where)


def single_statement(op: TargetOp, resolve: Resolve) -> Statement:
    """``op`` alone as one statement (how a refused multi-row statement is taken apart)."""
    if isinstance(op, Upsert):
        head, tail = upsert_head(op, resolve)
        return Statement(head + row_values(op) + tail, op.target, UPSERT, (op,))
    if isinstance(op, Delete):
        sql = delete_head(op, resolve) + key_tuple_sql(op.key) + ")"
        return Statement(sql, op.target, DELETE, (op,))
    if isinstance(op, UpdateWhere):
        return Statement(update_where_sql(op, resolve), op.target, UPDATE_WHERE, (op,))
    return Statement(delete_where_sql(op, resolve), op.target, DELETE_WHERE, (op,))


__all__ = [
    "DELETE",
    "DELETE_WHERE",
    "UPDATE_WHERE",
    "UPSERT",
    "Resolve",
    "Statement",
    "delete_head",
    "delete_where_sql",
    "key_guard",
    "key_tuple_sql",
    "keyed_where_sql",
    "literal",
    "odku_assignments",
    "quote",
    "reached_through_parents",
    "row_values",
    "single_statement",
    "table_name",
    "update_where_sql",
    "upsert_head",
    "where_sql",
]
