"""Pure planning of the copy: which tables, in which order, cut into which key slices, and
the keyset SQL that reads one chunk.

A task is one source table, or one slice of a large table with a single integer key, so that
several workers can share it. A slice's bounds live in its progress row's name
(``syllabus[1,30001)``, the last one open-ended: ``syllabus[60001,)``), so a resumed run sees
exactly the slicing it started with. A table may start once every table its lookups read
(its denormalised parents) is done: the mapping needs those parents to map its rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sync.apply.sql import quote
from sync.mapping.spec import MappingSpec
from sync.model import TableRef

_SLICE = re.compile(r"^(?P<table>[^\[]+)\[(?P<lo>-?\d*),(?P<hi>-?\d*)\)$")


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One source table to copy, as the source's catalog describes it."""

    schema: str
    table: str
    label: str  # the name in progress rows and --tables: `table`, or `schema.table` (routes)
    columns: tuple[str, ...]
    key: tuple[str, ...]
    target_key: tuple[str, ...]
    target: TableRef  # where rows of this key land, for pruning
    parents: frozenset[str]
    estimated_rows: int


@dataclass(frozen=True, slots=True)
class CopyTask:
    """A key range of one table: ``lo <= key < hi`` (None: unbounded)."""

    info: TableInfo
    lo: int | None = None
    hi: int | None = None

    @property
    def name(self) -> str:
        """The progress row's name; slices carry their bounds."""
        if self.lo is None and self.hi is None:
            return self.info.label
        hi = "" if self.hi is None else str(self.hi)
        return f"{self.info.label}[{self.lo if self.lo is not None else ''},{hi})"


def lookup_parents(spec: MappingSpec, table: str) -> frozenset[str]:
    """The tables whose lookup-state rows mapping ``table`` reads, so they are copied first:
    the steps of its lookups, and the parents of its foreign keys that the lookup state keeps
    (the mapping checks those exist, and in safe mode nulls a ``set_null`` reference to one
    it does not know)."""
    source = spec.tables.get(table)
    if source is None:
        return frozenset()
    walked = {step for lk in source.lookups for step, _ in lk.steps}
    checked = {fk.parent for fk in source.foreign_keys if fk.parent in spec.stored}
    return frozenset(walked | checked)


def plan_slices(info: TableInfo, key_min: int | None, key_max: int | None, *,
                slices: int, chunk_size: int) -> tuple[CopyTask, ...]:
    """``info`` as one task, or as ``slices`` key ranges when it is large and keyed by one
    integer column; the first slice is open below and the last above, so rows added outside
    today's range are still copied."""
    big = info.estimated_rows > 4 * chunk_size
    if slices <= 1 or not big or key_min is None or key_max is None or len(info.key) != 1:
        return (CopyTask(info),)
    width = max(1, (key_max - key_min + slices) // slices)
    bounds = [key_min + i * width for i in range(1, slices)]
    bounds = [b for b in bounds if b <= key_max]
    if not bounds:
        return (CopyTask(info),)
    los: list[int | None] = [None, *bounds]
    his: list[int | None] = [*bounds, None]
    return tuple(CopyTask(info, lo, hi) for lo, hi in zip(los, his, strict=True))


def tasks_from_names(info: TableInfo, names: Sequence[str]) -> tuple[CopyTask, ...]:
    """The tasks a run recorded for ``info`` (progress row names), in key order."""
    out: list[CopyTask] = []
    for name in names:
        if name == info.label:
            out.append(CopyTask(info))
            continue
        match = _SLICE.match(name)
        if match is None or match["table"] != info.label:
            continue
        lo, hi = match["lo"], match["hi"]
        out.append(CopyTask(info, int(lo) if lo else None, int(hi) if hi else None))
    return tuple(sorted(out, key=lambda t: -(2**63) if t.lo is None else t.lo))


def table_of(name: str) -> str:
    """The source table a progress row name belongs to."""
    match = _SLICE.match(name)
    return match["table"] if match else name


def _column(name: str, alias: str) -> str:
    return f"{alias}.{quote(name)}" if alias else quote(name)


def _after(key: Sequence[str], last: Sequence[Any], alias: str = "") -> tuple[str, list[Any]]:
    """``key > last`` in lexicographic order, spelled out so every server uses the index."""
    ors: list[str] = []
    args: list[Any] = []
    for i, column in enumerate(key):
        terms = [f"{_column(c, alias)} = %s" for c in key[:i]]
        terms.append(f"{_column(column, alias)} > %s")
        ors.append("(" + " AND ".join(terms) + ")")
        args.extend([*last[:i], last[i]])
    return "(" + " OR ".join(ors) + ")", args


def range_where(task: CopyTask, key: Sequence[str], after: Sequence[Any] | None,
                upto: Sequence[Any] | None, alias: str = "") -> tuple[str, list[Any]]:
    """Keys of ``task`` after ``after`` (exclusive) up to ``upto`` (inclusive; None: to the
    slice's end), on columns ``key`` (the source's or the target's names of the key) of the
    table named ``alias`` in the query (none: the only one)."""
    terms: list[str] = []
    args: list[Any] = []
    if after is not None:
        sql, values = _after(key, after, alias)
        terms.append(sql)
        args.extend(values)
    elif task.lo is not None:
        terms.append(f"{_column(key[0], alias)} >= %s")
        args.append(task.lo)
    if upto is not None:
        sql, values = _after(key, upto, alias)
        terms.append(f"NOT {sql}")
        args.extend(values)
    if task.hi is not None:
        terms.append(f"{_column(key[0], alias)} < %s")
        args.append(task.hi)
    return (" AND ".join(terms) or "TRUE"), args


def chunk_sql(task: CopyTask, after: Sequence[Any] | None, limit: int) -> tuple[str, list[Any]]:
    """The keyset query reading the next ``limit`` rows of ``task`` after key ``after``."""
    info = task.info
    where, args = range_where(task, info.key, after, None)
    order = ", ".join(quote(c) for c in info.key)
    columns = ", ".join(quote(c) for c in info.columns)
    sql = (f"SELECT {columns} FROM {quote(info.schema)}.{quote(info.table)} WHERE {where} "
           f"ORDER BY {order} LIMIT {int(limit)}")
    return sql, args


def ready(tasks: Sequence[CopyTask], done: Mapping[str, bool],
          running: frozenset[str]) -> CopyTask | None:
    """The first task not done nor running whose lookup parents are all done."""
    unfinished = {table_of(n) for n, d in done.items() if not d}
    for task in tasks:
        if done.get(task.name) or task.name in running:
            continue
        if task.info.parents & unfinished:
            continue
        return task
    return None


__all__ = [
    "CopyTask", "TableInfo", "chunk_sql", "lookup_parents", "plan_slices", "range_where",
    "ready", "table_of", "tasks_from_names",
]
