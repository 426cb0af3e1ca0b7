"""One mapped source table compiled into what its inserts, updates and deletes become.

Compiled once when the :class:`~sync.mapping.engine.Mapper` is made: column pairs, lookup
walks bound to the lookup state's dicts, constants and cascade plans are tuples, so mapping a
row allocates little beyond the operations it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sync.mapping import files
from sync.mapping.cascade import Reach, delete_plan, denorm_plan, rekey_plan
from sync.mapping.lookups import LookupState
from sync.mapping.spec import FileSplit, MappingSpec, SourceTable
from sync.model import (
    Delete,
    DeleteWhere,
    Eq,
    Reset,
    Row,
    RowChange,
    TargetOp,
    UpdateWhere,
    Upsert,
)

# (the lookup state's rows of a table, index of the column read, table name)
Walk = tuple[tuple[dict[Any, tuple[Any, ...]], int, str], ...]


class MissingParentError(Exception):
    """A lookup met a key the lookup state does not hold: ``table``'s row ``key``.

    Turned into MappingError, or into no operations in safe mode, by ``Mapper.map_change``;
    raised as is by ``Mapper.map_or_missing``."""

    def __init__(self, table: str, key: Any) -> None:
        super().__init__(table, key)
        self.table = table
        self.key = key


def walk(value: Any, steps: Walk) -> Any:
    for rows, index, table in steps:
        if value is None:  # a NULL foreign key: nothing to look up
            return None
        found = rows.get(value)
        if found is None:
            raise MissingParentError(table, value)
        value = found[index]
    return value


def bind_walk(state: LookupState, steps: tuple[tuple[str, str], ...]) -> Walk:
    return tuple(
        (state.rows[table], state.columns[table].index(column), table) for table, column in steps
    )


_DESCRIBED_MAX = 4096


class SplitPlan:
    """The file split: a URL present makes or updates the files row, a URL gone removes it."""

    def __init__(self, split: FileSplit) -> None:
        self.split = split
        self.target = split.target
        self.keys = (files.KEY_COLUMN,)
        self.resets = (Reset(watch=files.URL_COLUMN, values=dict(split.pending)),)
        self.pending = dict(split.pending)
        # Descriptions of recent URLs: a row updated for other reasons keeps its URL.
        self._described: dict[str, tuple[str, str, str]] = {}

    def file_id(self, key: Any) -> str:
        return files.file_id(self.split.namespace, self.split.id_name, key)

    def add(
        self,
        row: dict[str, Any],
        key: Any,
        url: Any,
        ts: datetime,
        out: list[TargetOp],
        *,
        remove_absent: bool,
    ) -> None:
        frow = self.file_row(row, key, url, ts)
        if frow is not None:
            out.append(Upsert(self.target, self.keys, (frow[files.KEY_COLUMN],), frow,
                              files.UPDATE_COLUMNS, self.resets))
        elif remove_absent:
            out.append(Delete(self.target, self.keys, (self.file_id(key),)))

    def file_row(self, row: dict[str, Any], key: Any, url: Any, ts: datetime
                 ) -> dict[str, Any] | None:
        """The files row ``url`` makes for the source row ``key`` (None when the URL is
        absent), with ``row``'s link column set to it."""
        if not files.is_present(url):
            row[self.split.link_column] = None
            return None
        fid = row[self.split.link_column] = self.file_id(key)
        described = self._described.get(url)
        if described is None:
            if len(self._described) >= _DESCRIBED_MAX:
                self._described.clear()
            described = self._described[url] = files.describe(url)
        name, mime, provider = described
        return {
            files.KEY_COLUMN: fid,
            files.OWNER_COLUMN: row[self.split.owner_from],
            "file_name": name or f"{self.split.source_table}-{key}",
            "file_url": url,
            "mime_type": mime,
            "storage_provider": provider,
            files.SOURCE_TABLE_COLUMN: self.split.source_table,
            files.SOURCE_ID_COLUMN: key,
            files.UPDATED_COLUMN: ts,
            files.CREATED_COLUMN: ts,
            **self.pending,
        }


Handler = Callable[[RowChange, bool], list[TargetOp]]

# (target column, source column, the lookup state's rows of the parent, parent, nulls)
Parents = tuple[tuple[str, str, dict[Any, tuple[Any, ...]], str, bool], ...]


def parent_checks(table: SourceTable, state: LookupState) -> Parents:
    """Foreign keys to a parent the lookup state keeps, other than those a lookup walks.

    Such a parent is known exactly when the target holds it. One the target lacks, met while
    replaying the window before a snapshot's end (safe mode), existed when the change was made
    and is deleted later in the window: ``set_null`` (``nulls``) writes the NULL that delete
    leaves behind, since a later cascade through the absent parent could not reach this row;
    any other action maps the change to nothing, like a lookup that misses.
    """
    walked = {lk.via for lk in table.lookups}
    return tuple(
        (
            table.target_column_of(fk.column) or fk.column,
            fk.column,
            state.rows[fk.parent],
            fk.parent,
            fk.on_delete == "set_null",
        )
        for fk in table.foreign_keys
        if fk.parent in state.rows and fk.column not in walked
    )


class TablePlan:
    """Insert, update and delete of one mapped source table, compiled.

    Handlers raise :class:`MissingParentError` before touching the lookup state, so a change
    that cannot be mapped leaves the state as it was.
    """

    def __init__(
        self, spec: MappingSpec, reach: Reach, table: SourceTable, state: LookupState
    ) -> None:
        self.name = table.name
        self.state = state
        self.target = table.target
        self.key = table.key
        self.key_columns = tuple(table.target_column_of(k) or k for k in table.key)
        self.copies = table.copies
        self.lookups = tuple(
            (lk.column, lk.via, bind_walk(state, lk.steps)) for lk in table.lookups
        )
        self.parents = parent_checks(table, state)
        self.constants = {a.column: a.default for a in table.added if a.kind == "constant"}
        self.times = tuple(a.column for a in table.added if a.kind != "constant")
        self.update_columns = spec.target_tables[table.target].update_columns
        self.split = SplitPlan(table.split) if table.split else None
        self.stored = state.columns.get(table.name)
        self.deletes = delete_plan(spec, reach, table.name)
        self.rekeys = rekey_plan(spec, reach, table.name)
        # looked-up column -> what changes in descendants when it does
        self.denorms = {c: denorm_plan(spec, reach, table.name, c) for c in self.stored or ()}
        self.denorms = {c: plan for c, plan in self.denorms.items() if plan}
        self.denorm_walks = {
            c: tuple(tuple(bind_walk(state, w) for w in step.walks) for step in plan)
            for c, plan in self.denorms.items()
        }
        # What update and delete read from a before image: the key, and the looked-up
        # columns whose change reaches descendants.
        self.before_columns = frozenset((*self.key, *self.denorms))

    def key_of(self, image: Row) -> tuple[Any, ...]:
        if len(self.key) == 1:
            return (image[self.key[0]],)
        return tuple(image[k] for k in self.key)

    def upsert(
        self, image: Row, ts: datetime, out: list[TargetOp], *, remove_absent: bool, safe: bool
    ) -> None:
        row = {t: image[s] for t, s in self.copies}
        for column, via, steps in self.lookups:
            row[column] = walk(image[via], steps)
        for target, source, rows, parent, nulls in self.parents:
            value = image[source]
            if value is not None and value not in rows:
                if not (safe and nulls):
                    raise MissingParentError(parent, value)
                row[target] = None
        row.update(self.constants)
        for column in self.times:
            row[column] = ts
        key = self.key_of(image)
        if self.split is not None:
            url = image[self.split.split.url_column]
            self.split.add(row, key[0], url, ts, out, remove_absent=remove_absent)
        out.append(Upsert(self.target, self.key_columns, key, row, self.update_columns))

    def insert(self, change: RowChange, safe: bool) -> list[TargetOp]:
        image = change.image
        out: list[TargetOp] = []
        self.upsert(image, change.commit_ts, out, remove_absent=False, safe=safe)
        if self.stored is not None:
            self.state.put(self.name, image[self.key[0]], tuple(image[c] for c in self.stored))
        return out

    def delete(self, change: RowChange, safe: bool) -> list[TargetOp]:
        key = self.key_of(change.image)
        out: list[TargetOp] = []
        for step in self.deletes:
            where = step.where(key[0])
            if step.null_column is None:
                out.append(DeleteWhere(step.target, where))
            else:
                out.append(UpdateWhere(step.target, where, {step.null_column: None}))
        if self.split is not None:
            out.append(Delete(self.split.target, self.split.keys, (self.split.file_id(key[0]),)))
        out.append(Delete(self.target, self.key_columns, key))
        self.state.delete(self.name, key[0])
        return out

    def update(self, change: RowChange, safe: bool) -> list[TargetOp]:
        before, after = change.before, change.after
        assert before is not None and after is not None
        old, new = self.key_of(before), self.key_of(after)
        out: list[TargetOp] = []
        if old != new:
            for r in self.rekeys:
                value = None if r.to_null else new[0]
                out.append(
                    UpdateWhere(r.target, (Eq(r.column, old[0]), *r.extra), {r.column: value})
                )
            out.append(Delete(self.target, self.key_columns, old))
            if self.split is not None:
                fid = self.split.file_id(old[0])
                out.append(Delete(self.split.target, self.split.keys, (fid,)))
        self.upsert(after, change.commit_ts, out, remove_absent=True, safe=safe)
        for column, plan in self.denorms.items():
            if before[column] != after[column]:
                self._denorm(column, plan, after[column], new[0], out)
        if old != new:
            self.state.rekey(self.name, old[0], new[0])
        if self.stored is not None:
            self.state.put(self.name, new[0], tuple(after[c] for c in self.stored))
        return out

    def _denorm(
        self, column: str, plan: tuple[Any, ...], value: Any, key: Any, out: list[TargetOp]
    ) -> None:
        for step, walks in zip(plan, self.denorm_walks[column], strict=True):
            values = {c: walk(value, w) for c, w in zip(step.columns, walks, strict=True)}
            out.append(UpdateWhere(step.target, step.where(key), values))


__all__ = ["MissingParentError", "SplitPlan", "TablePlan", "walk"]
