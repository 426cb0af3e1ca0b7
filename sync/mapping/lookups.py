"""The lookup state: the few parent columns denormalised values are read from.

``semesters: id -> (user_id,)``, ``subjects: id -> (semester_id,)`` for aurora; the layout
comes from the spec (``MappingSpec.stored``): the tables lookups read, and every parent that
has parents itself, since cascades reach its children through its target rows and a child
referring to one the target lacks must be known as such (safe mode). It is fed by the same
changes the mapping sees and repeats aurora's foreign-key actions on itself, because a
cascaded child row never reaches the binlog. At start it is rebuilt from the target tables
named by ``MappingSpec.lookup_sources()``: the target holds exactly what was applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sync.mapping.spec import ForeignKey, MappingSpec
from sync.model import Row

Values = tuple[Any, ...]


class LookupState:
    """Per stored table: key -> stored values, with a reverse index per foreign key."""

    def __init__(self, spec: MappingSpec) -> None:
        self.columns: dict[str, tuple[str, ...]] = dict(spec.stored)
        self.rows: dict[str, dict[Any, Values]] = {t: {} for t in self.columns}
        # parent table -> (child table, column index, foreign key): whose rows follow a parent.
        self._followers: dict[str, list[tuple[str, int, ForeignKey]]] = {}
        # (child table, column index) -> parent key -> child keys
        self._index: dict[tuple[str, int], dict[Any, set[Any]]] = {}
        for table, cols in self.columns.items():
            for fk in spec.tables[table].foreign_keys:
                i = cols.index(fk.column)
                self._followers.setdefault(fk.parent, []).append((table, i, fk))
                self._index[(table, i)] = {}
        self._indexed: dict[str, tuple[int, ...]] = {
            t: tuple(i for (tt, i) in self._index if tt == t) for t in self.columns
        }

    @classmethod
    def rebuild(cls, spec: MappingSpec, rows: Mapping[str, Iterable[Row]]) -> LookupState:
        """From target rows: ``rows[source table]`` holds rows of its ``LookupSource`` target
        with its ``key_column`` and ``columns``."""
        state = cls(spec)
        for source in spec.lookup_sources():
            for row in rows.get(source.table, ()):
                values = tuple(row[c] for c in source.columns)
                state.put(source.table, row[source.key_column], values)
        return state

    def get(self, table: str, key: Any) -> Values | None:
        return self.rows[table].get(key)

    def put(self, table: str, key: Any, values: Values) -> None:
        rows = self.rows[table]
        old = rows.get(key)
        rows[key] = values
        for i in self._indexed[table]:
            if old is not None and old[i] == values[i]:
                continue
            index = self._index[(table, i)]
            if old is not None:
                index.get(old[i], set()).discard(key)
            if values[i] is not None:
                index.setdefault(values[i], set()).add(key)

    def delete(self, table: str, key: Any) -> None:
        """Forget ``table``'s row (if kept) and repeat aurora's ON DELETE on kept children."""
        rows = self.rows.get(table)
        if rows is not None:
            old = rows.pop(key, None)
            if old is not None:
                for i in self._indexed[table]:
                    self._index[(table, i)].get(old[i], set()).discard(key)
        for child, i, fk in self._followers.get(table, ()):
            keys = tuple(self._index[(child, i)].get(key, ()))
            for child_key in keys:
                if fk.on_delete == "cascade":
                    self.delete(child, child_key)
                elif fk.on_delete == "set_null":
                    self._set(child, child_key, i, None)

    def rekey(self, table: str, old_key: Any, new_key: Any) -> None:
        """Move ``table``'s row to ``new_key`` and repeat aurora's ON UPDATE on kept children."""
        rows = self.rows.get(table)
        if rows is not None and old_key in rows:
            values = rows[old_key]
            self.delete_own(table, old_key)
            self.put(table, new_key, values)
        for child, i, fk in self._followers.get(table, ()):
            keys = tuple(self._index[(child, i)].get(old_key, ()))
            for child_key in keys:
                if fk.on_update == "cascade":
                    self._set(child, child_key, i, new_key)
                elif fk.on_update == "set_null":
                    self._set(child, child_key, i, None)

    def delete_own(self, table: str, key: Any) -> None:
        """Forget one row without touching its children."""
        old = self.rows[table].pop(key, None)
        if old is not None:
            for i in self._indexed[table]:
                self._index[(table, i)].get(old[i], set()).discard(key)

    def _set(self, table: str, key: Any, i: int, value: Any) -> None:
        values = list(self.rows[table][key])
        values[i] = value
        self.put(table, key, tuple(values))

    def dump(self) -> dict[str, dict[Any, Values]]:
        """A copy of the kept rows, for tests and restart checks."""
        return {t: dict(rows) for t, rows in self.rows.items()}


__all__ = ["LookupState"]
