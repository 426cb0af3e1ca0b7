"""The target rows a chunk of aurora rows should be: the mapping itself, run in Python.

A fresh :class:`~sync.mapping.engine.Mapper` maps each aurora row as an INSERT, parents
first, so its :class:`LookupState` is built from aurora itself as the chunks go by (one
snapshot: every parent is there before its children). A re-check reads a chunk again in a
newer snapshot; its rows' parents are read again in that snapshot too
(:func:`refresh_parents`), so the denormalised columns are those of the same moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pymysql

from sync.apply.sql import quote
from sync.mapping.engine import Mapper
from sync.mapping.lookups import LookupState
from sync.mapping.spec import MappingSpec
from sync.model import Op, Row, RowChange, TableRef, Upsert
from sync.validation.compare import Key

# Commit-time columns are never compared; any fixed instant will do.
MAPPED_AT = datetime(2000, 1, 1)

Expected = dict[TableRef, dict[Key, Row]]


class ChunkMapper:
    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.state = LookupState(spec)
        self.mapper = Mapper(spec, self.state)

    def source_columns(self, table: str) -> tuple[str, ...]:
        """The aurora columns the mapping reads (dropped columns are not read at all)."""
        source = self.spec.tables[table]
        split = (source.split.url_column,) if source.split else ()
        return tuple(s for _, s in source.copies) + split

    def map(self, table: str, rows: Iterable[Row]) -> Expected:
        """The target rows ``rows`` of ``table`` map to, per target table and key."""
        out: Expected = {}
        schema = self.spec.source_schema
        for row in rows:
            change = RowChange(schema, table, Op.INSERT, None, row, MAPPED_AT)
            # Safe mode: a row whose parent aurora no longer holds maps to nothing, and the
            # target row it left behind is reported as extra.
            for op in self.mapper.map_change(change, safe_mode=True):
                if isinstance(op, Upsert):
                    out.setdefault(op.target, {})[op.key] = op.row
        return out


def refresh_parents(conn: pymysql.Connection[Any], spec: MappingSpec, state: LookupState,
                    table: str, rows: Sequence[Row]) -> None:
    """Read again, in ``conn``'s snapshot, every parent row the mapping of ``rows`` consults:
    those the lookups walk, and those of the foreign keys it checks (a parent the lookup
    state keeps, see :func:`sync.mapping.plans.parent_checks`)."""
    source = spec.tables[table]
    walks = [(lookup.via, lookup.steps) for lookup in source.lookups]
    walked = {lookup.via for lookup in source.lookups}
    walks += [(fk.column, ((fk.parent, state.columns[fk.parent][0]),))
              for fk in source.foreign_keys
              if fk.parent in state.rows and fk.column not in walked]
    for via, steps in walks:
        keys = {row[via] for row in rows} - {None}
        for parent, column in steps:
            if not keys:
                break
            columns = state.columns[parent]
            key = spec.tables[parent].key[0]
            found = _read_by_keys(conn, spec.source_schema, parent, key=key, columns=columns,
                                  keys=keys)
            for key_value in keys:
                state.delete_own(parent, key_value)
            for key_value, values in found.items():
                state.put(parent, key_value, values)
            index = columns.index(column)
            keys = {values[index] for values in found.values()} - {None}


def _read_by_keys(conn: pymysql.Connection[Any], schema: str, table: str, *, key: str,
                  columns: Sequence[str], keys: Iterable[Any]) -> dict[Any, tuple[Any, ...]]:
    wanted = sorted(keys, key=str)
    found: dict[Any, tuple[Any, ...]] = {}
    names = ", ".join(quote(c) for c in (key, *columns))
    with conn.cursor() as cur:
        for start in range(0, len(wanted), 1000):
            part = wanted[start:start + 1000]
            marks = ", ".join(["%s"] * len(part))
            cur.execute(f"SELECT {names} FROM {quote(schema)}.{quote(table)} "
                        f"WHERE {quote(key)} IN ({marks})", part)
            for row in cur.fetchall():
                found[row[0]] = tuple(row[1:])
    return found


__all__ = ["ChunkMapper", "Expected", "refresh_parents"]
