"""An in-memory model of the target databases: the reference semantics of every TargetOp.

The SQL writer must produce exactly the state this model produces for the same operations;
contract tests hold both to that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sync.model import (
    Condition,
    Delete,
    DeleteWhere,
    Eq,
    InSelect,
    Key,
    TableRef,
    TargetOp,
    UpdateWhere,
    Upsert,
)

Table = dict[Key, dict[str, Any]]


class MemoryTarget:
    """Tables of rows keyed by primary key, changed only through :meth:`apply`."""

    def __init__(self) -> None:
        self.tables: dict[TableRef, Table] = {}

    def table(self, ref: TableRef) -> Table:
        return self.tables.setdefault(ref, {})

    def apply(self, ops: Iterable[TargetOp]) -> None:
        for op in ops:
            self._apply_one(op)

    def _apply_one(self, op: TargetOp) -> None:
        rows = self.table(op.target)
        if isinstance(op, Upsert):
            existing = rows.get(op.key)
            if existing is None:
                rows[op.key] = dict(op.row)
            else:
                # Resets look at the row as it was, before this upsert changed it.
                changed = [r for r in op.resets if existing.get(r.watch) != op.row.get(r.watch)]
                # Key columns are never in update_columns: a re-key is a Delete and an Upsert.
                for column in op.update_columns:
                    existing[column] = op.row[column]
                for reset in changed:
                    existing.update(reset.values)
        elif isinstance(op, Delete):
            rows.pop(op.key, None)
        elif isinstance(op, UpdateWhere):
            for row in self._matching(rows, op.where):
                row.update(op.values)
        elif isinstance(op, DeleteWhere):
            doomed = [k for k, row in rows.items() if self._matches(row, op.where)]
            for k in doomed:
                del rows[k]
        else:  # pragma: no cover - the type union is closed
            raise TypeError(f"unknown target operation {op!r}")

    def _matching(self, rows: Table, where: tuple[Condition, ...]) -> list[dict[str, Any]]:
        return [row for row in rows.values() if self._matches(row, where)]

    def _matches(self, row: Mapping[str, Any], where: tuple[Condition, ...]) -> bool:
        for cond in where:
            if isinstance(cond, Eq):
                if row.get(cond.column) != cond.value or cond.value is None:
                    return False
            elif isinstance(cond, InSelect):
                parent = self.table(cond.source)
                allowed = {
                    p.get(cond.select)
                    for p in self._matching(parent, cond.where)
                    if p.get(cond.select) is not None
                }
                if row.get(cond.column) not in allowed:
                    return False
        return True

    def snapshot(self, ignore: Mapping[TableRef, Iterable[str]] | None = None) -> dict[
        TableRef, dict[Key, dict[str, Any]]
    ]:
        """A deep copy of every non-empty table, without the ``ignore``d columns."""
        ignore = ignore or {}
        out: dict[TableRef, dict[Key, dict[str, Any]]] = {}
        for ref, rows in self.tables.items():
            if not rows:
                continue
            skip = set(ignore.get(ref, ()))
            out[ref] = {
                k: {c: v for c, v in row.items() if c not in skip} for k, row in rows.items()
            }
        return out


__all__ = ["MemoryTarget"]
