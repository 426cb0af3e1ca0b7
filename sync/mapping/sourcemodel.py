"""An in-memory source database that obeys the spec's foreign keys, for tests and benchmarks.

It applies ON DELETE / ON UPDATE actions (CASCADE, SET NULL, RESTRICT) to child rows, as
InnoDB does, but returns only the statement's own rows as :class:`RowChange`s: InnoDB does not
write cascaded child rows to a ROW binlog, and a mapping tested against this model has to
repeat the cascades itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync.mapping.spec import ForeignKey, MappingSpec
from sync.model import Op, Position, RowChange


class IntegrityError(Exception):
    """The statement breaks a foreign key (aurora would refuse it)."""


class SourceModel:
    """Tables of rows keyed by their single-column primary key, in insertion order."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.schema = spec.source_schema
        self.rows: dict[str, dict[Any, dict[str, Any]]] = {t: {} for t in spec.tables}
        self._pos = 0

    def _pk(self, table: str) -> str:
        return self.spec.tables[table].key[0]

    def _change(
        self,
        table: str,
        op: Op,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        ts: datetime,
    ) -> RowChange:
        self._pos += 1
        return RowChange(
            self.schema,
            table,
            op,
            None if before is None else dict(before),
            None if after is None else dict(after),
            ts,
            Position("bin.1", self._pos),
        )

    def _check_parents(self, table: str, row: Mapping[str, Any]) -> None:
        for fk in self.spec.tables[table].foreign_keys:
            value = row[fk.column]
            if value is not None and value not in self.rows[fk.parent]:
                raise IntegrityError(f"{table}.{fk.column}={value!r}: no such {fk.parent}")

    def insert(self, table: str, row: Mapping[str, Any], ts: datetime) -> list[RowChange]:
        key = row[self._pk(table)]
        if key in self.rows[table]:
            raise IntegrityError(f"duplicate key {key!r} in {table}")
        self._check_parents(table, row)
        self.rows[table][key] = dict(row)
        return [self._change(table, Op.INSERT, None, row, ts)]

    def update(
        self, table: str, key: Any, values: Mapping[str, Any], ts: datetime
    ) -> list[RowChange]:
        before = self.rows[table][key]
        after = {**before, **values}
        new_key = after[self._pk(table)]
        if new_key != key and new_key in self.rows[table]:
            raise IntegrityError(f"duplicate key {new_key!r} in {table}")
        self._check_parents(table, after)
        if new_key != key:
            self._on_parent(table, key, lambda fk: fk.on_update, new_key)
            del self.rows[table][key]
        self.rows[table][new_key] = after
        return [self._change(table, Op.UPDATE, before, after, ts)]

    def delete(self, table: str, key: Any, ts: datetime) -> list[RowChange]:
        before = self.rows[table][key]
        self._on_parent(table, key, lambda fk: fk.on_delete, _DELETED)
        del self.rows[table][key]
        return [self._change(table, Op.DELETE, before, None, ts)]

    def _on_parent(self, table: str, key: Any, action: Any, new_key: Any) -> None:
        """Apply the children's ON DELETE (new_key is _DELETED) or ON UPDATE actions."""
        for fk in self.spec.children(table):
            children = [k for k, r in self.rows[fk.child].items() if r[fk.column] == key]
            act = action(fk)
            if children and act in ("restrict", "no_action"):
                raise IntegrityError(f"{fk.child} rows still refer to {table} {key!r}")
            for child in children:
                self._act(fk, act, child, new_key)

    def _act(self, fk: ForeignKey, act: str, child: Any, new_key: Any) -> None:
        row = self.rows[fk.child].get(child)
        if row is None:  # already removed through another path
            return
        if act == "set_null":
            row[fk.column] = None
        elif new_key is _DELETED:
            self._on_parent(fk.child, child, lambda f: f.on_delete, _DELETED)
            del self.rows[fk.child][child]
        else:
            row[fk.column] = new_key

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {t: [dict(r) for r in rows.values()] for t, rows in self.rows.items()}


_DELETED = object()

__all__ = ["IntegrityError", "SourceModel"]
