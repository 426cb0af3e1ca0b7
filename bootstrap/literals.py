"""A chunk of one mapped aurora table read as the SQL literals of its target rows, written
by aurora's server, so the copy's Python touches a row only to join its text.

Mapping each row in Python, then spelling every value as a literal, held the copy to a third
of ``mysqldump | mysql``. Most target columns are a source column, a parent's column (the
mapping's lookups, LEFT JOINs here: :class:`~sync.mapping.joins.SourceJoins`), a constant or
the snapshot's time; aurora's server quotes the first two (``QUOTE``, integers as they are)
and hands back each row as ``(v1,...,vk`` in bytes, and Python appends the constants, the
times and the file link, the same for every row of the chunk but the link. The statement's
head and ``ON DUPLICATE KEY UPDATE`` tail are the writer's own
(:func:`~sync.apply.sql.upsert_head`), so the upsert, its key guard and the columns it
updates are those of the Python path.

The ``file_db.files`` rows split from a URL are made by the mapping's own
:class:`~sync.mapping.plans.SplitPlan` (the id, name, type and provider are Python's), from
the key, the URL and the owner the query reads.

Rendering only applies where the Python mapping is a plain function of the row:

- the chunk is read over an empty key range of the target (no pruning, no update onto
  existing rows: :class:`~bootstrap.copy.TaskCopier` decides);
- no row misses a parent in the chunk's read view (the query flags it): the Python path
  decides what such a row becomes. Parents are read from aurora in the same view, so a
  parent inserted after its table was copied is in the rows' values before it is in the
  target; the stream's replay of the copy's window writes it, as it writes every change made
  since the copy began;
- every column involved has a type whose ``QUOTE`` text the target reads as the value the
  Python literal gives (integers, decimals, text in any charset, enums, sets, dates and
  times; not floats, binary strings, bits or JSON).

A chunk that falls outside these, or that the target refuses (a unique value another row
holds: the key guard refuses instead of overwriting), is mapped in Python instead; that path
explains a real refusal row by row. Run and tested on MariaDB sources; MySQL 8 and Aurora
spell ``QUOTE``, ``CONCAT_WS`` and ``CONVERT ... USING`` the same, which was not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pymysql

from bootstrap.chunks import CopyTask, range_where
from sync.apply.batcher import StatementLimits
from sync.apply.sql import UPSERT, Statement, literal, quote, upsert_head
from sync.mapping import files
from sync.mapping.joins import SourceJoins
from sync.mapping.plans import SplitPlan
from sync.mapping.spec import MappingSpec, SourceTable
from sync.model import TableRef, Upsert

_INTEGER: Final = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint",
                             "year"})
_QUOTED: Final = frozenset({"decimal", "numeric", "char", "varchar", "tinytext", "text",
                            "mediumtext", "longtext", "enum", "set", "date", "datetime",
                            "timestamp", "time"})


@dataclass(frozen=True, slots=True)
class ColumnType:
    data_type: str
    charset: str | None


SourceTypes = Mapping[tuple[str, str], ColumnType]


def source_types(conn: pymysql.Connection[Any], schema: str) -> dict[tuple[str, str], ColumnType]:
    """``(table, column) -> type`` of every column of ``schema`` on aurora."""
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME "
                    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", [schema])
        return {(str(t), str(c)): ColumnType(str(d).lower(), str(cs).lower() if cs else None)
                for t, c, d, cs in cur.fetchall()}


def spelled(expression: str, kind: ColumnType) -> str | None:
    """``expression`` as the text of its SQL literal, or None when its type has no spelling
    the target reads back as the Python literal's value."""
    if kind.data_type in _INTEGER:
        return f"IFNULL({expression}, 'NULL')"
    if kind.data_type not in _QUOTED:
        return None
    if kind.charset not in (None, "utf8mb4"):
        # The row's text is one utf8mb4 string: other charsets are converted, as PyMySQL's
        # utf8mb4 session has the server do for the Python path.
        expression = f"CONVERT({expression} USING utf8mb4)"
    return f"QUOTE({expression})"


@dataclass(frozen=True, slots=True)
class RenderedChunk:
    """One chunk read by :class:`LiteralQuery`: ``statements`` is empty when ``clean`` is
    false (a row misses a parent or could not be rendered: the chunk must be mapped in
    Python)."""

    rows: int
    last_key: tuple[Any, ...] | None
    clean: bool
    statements: tuple[Statement, ...]


class LiteralQuery:
    """The rendering query of one mapped table, with what Python adds to each row."""

    def __init__(self, spec: MappingSpec, table: SourceTable, *, expressions: Sequence[str],
                 columns: Sequence[str], joins: SourceJoins, owner: str | None,
                 resolve: Callable[[str], str]) -> None:
        self.table = table
        self.resolve = resolve
        self.split = SplitPlan(table.split) if table.split is not None else None
        constants = [a for a in table.added if a.kind == "constant"]
        times = [a.column for a in table.added if a.kind != "constant"]
        self.constants = "".join("," + literal(a.default) for a in constants)
        self.times = len(times)
        names = [*columns, *(a.column for a in constants), *times]
        if self.split is not None:
            names.append(self.split.split.link_column)
        key_columns = tuple(table.target_column_of(k) or k for k in table.key)
        template = Upsert(table.target, key_columns, (0,) * len(key_columns),
                          dict.fromkeys(names), spec.target_tables[table.target].update_columns)
        head, tail = upsert_head(template, resolve)
        self.head, self.tail = head.encode(), tail.encode()
        keys = [f"t0.{quote(k)}" for k in table.key]
        # NULL for a row that misses a parent: one column less for PyMySQL to parse per row.
        select = [*keys, f"IF({joins.orphan()}, NULL, CAST(CONCAT('(', CONCAT_WS(',', "
                         f"{', '.join(expressions)})) AS BINARY))"]
        if self.split is not None:
            select += [f"t0.{quote(self.split.split.url_column)}", owner or "NULL"]
        self.key_count = len(keys)
        # pymysql formats parameters with %: the expressions' own % must be doubled.
        self.select = f"SELECT {', '.join(select)} FROM {joins.sql}".replace("%", "%%")
        self._order = ", ".join(keys)

    @classmethod
    def build(cls, spec: MappingSpec, table: SourceTable, types: SourceTypes,
              resolve: Callable[[str], str]) -> LiteralQuery | None:
        """The query for ``table``, or None when a column's type has no spelling here."""
        joins = SourceJoins(spec, table)
        expressions: list[str] = []
        columns: list[str] = []
        values: dict[str, str] = {}

        def add(column: str, expression: str, kind: ColumnType | None) -> bool:
            text = spelled(expression, kind) if kind is not None else None
            if text is None:
                return False
            columns.append(column)
            expressions.append(text)
            values[column] = expression
            return True

        for target, source in table.copies:
            if not add(target, f"t0.{quote(source)}", types.get((table.name, source))):
                return None
        walked = {lookup.via for lookup in table.lookups}
        for lookup in table.lookups:
            last_table, last_column = lookup.steps[-1]
            if not add(lookup.column, joins.walk(lookup.via, lookup.steps),
                       types.get((last_table, last_column))):
                return None
        for fk in table.foreign_keys:
            if fk.parent in spec.stored and fk.column not in walked:
                joins.parent(fk.column, fk.parent)
        if table.split is not None and types.get((table.name, table.split.url_column)) is None:
            return None
        owner = values.get(table.split.owner_from) if table.split is not None else None
        if table.split is not None and owner is None:
            return None
        return cls(spec, table, expressions=expressions, columns=columns, joins=joins,
                   owner=owner, resolve=resolve)

    def read(self, conn: pymysql.Connection[Any], task: CopyTask, after: Sequence[Any] | None,
             *, limit: int, ts: datetime, limits: StatementLimits) -> RenderedChunk:
        """The next ``limit`` rows of ``task`` after ``after`` as upsert statements whose
        commit-time columns hold ``ts`` (the snapshot's time)."""
        where, args = range_where(task, self.table.key, after, None, alias="t0")
        with conn.cursor() as cur:
            cur.execute(f"{self.select} WHERE {where} ORDER BY {self._order} "
                        f"LIMIT {int(limit)}", args)
            rows = cur.fetchall()
        if not rows:
            return RenderedChunk(0, None, True, ())
        at = self.key_count  # the row's text follows its key
        last = tuple(rows[-1][:at])
        # A row that misses a parent, or whose text the server could not make (QUOTE and
        # CONCAT give NULL past max_allowed_packet; a value CONCAT_WS then skips makes the
        # target refuse the row count, which also sends the chunk to Python).
        if any(row[at] is None for row in rows):
            return RenderedChunk(len(rows), last, False, ())
        suffix = (self.constants + ("," + literal(ts)) * self.times).encode()
        own: list[bytes] = []
        file_rows: list[dict[str, Any]] = []
        if self.split is None:
            close = suffix + b")"
            own = [row[at] + close for row in rows]
        else:
            split, link = self.split, self.split.split.link_column
            for row in rows:
                made: dict[str, Any] = {split.split.owner_from: row[at + 2]}
                frow = split.file_row(made, row[0], row[at + 1], ts)
                if frow is None:
                    own.append(row[at] + suffix + b",NULL)")
                else:
                    file_rows.append(frow)
                    own.append(row[at] + suffix + b",'" + made[link].encode() + b"')")
        statements = statements_of(self.table.target, self.head, self.tail, own, limits)
        if file_rows:
            assert self.split is not None
            template = Upsert(self.split.target, self.split.keys, ("",), file_rows[0],
                              files.UPDATE_COLUMNS, self.split.resets)
            head, tail = upsert_head(template, self.resolve)
            memo: dict[Any, str] = {}
            texts = [_values(frow, memo) for frow in file_rows]
            statements += statements_of(self.split.target, head.encode(), tail.encode(), texts,
                                        limits)
        return RenderedChunk(len(rows), last, True, tuple(statements))


def _values(row: Mapping[str, Any], memo: dict[Any, str]) -> bytes:
    """``row``'s values as a literal tuple, as :func:`~sync.apply.sql.row_values` writes
    them. The files rows of a chunk share most of their values (its time, the pending
    checksum, a course's URLs): each distinct one is spelled once per chunk."""
    parts: list[str] = []
    for value in row.values():
        vtype = type(value)
        if vtype is int:
            parts.append(str(value))
        elif value is None:
            parts.append("NULL")
        else:
            try:
                text = memo.get((vtype, value))
            except TypeError:  # unhashable (a JSON constant)
                text = literal(value)
            if text is None:
                text = memo[(vtype, value)] = literal(value)
            parts.append(text)
    return ("(" + ",".join(parts) + ")").encode()


def statements_of(target: TableRef, head: bytes, tail: bytes, rows: Sequence[bytes],
                limits: StatementLimits) -> list[Statement]:
    """Multi-row upserts of ``rows`` within ``limits`` (rows and bytes per statement)."""
    out: list[Statement] = []
    start, size = 0, len(head) + len(tail)
    for i, row in enumerate(rows):
        count = i - start
        if count and (count >= limits.max_rows or size + len(row) + 1 > limits.max_bytes):
            out.append(Statement(head + b",".join(rows[start:i]) + tail, target, UPSERT, ()))
            start, size = i, len(head) + len(tail)
        size += len(row) + 1
    out.append(Statement(head + b",".join(rows[start:]) + tail, target, UPSERT, ()))
    return out


__all__ = ["ColumnType", "LiteralQuery", "RenderedChunk", "source_types", "spelled",
           "statements_of"]
