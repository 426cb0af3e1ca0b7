"""aurora's foreign-key actions, repeated on the targets as set-based operations.

InnoDB applies ON DELETE / ON UPDATE to child rows without writing them to the binlog, so the
mapping must. Everything is derived from the foreign keys and lookups of the spec, once, into
plans that turn a parent key into target operations:

* a parent row deleted: every descendant reached through CASCADE edges is deleted, through
  SET NULL edges its column is nulled; deepest first, because a condition may reach through a
  parent table (``IN (SELECT ...)``) whose rows a later operation deletes;
* a parent key changed: every column holding that key (copied foreign keys and denormalised
  ones, split rows too) follows it;
* a looked-up column changed (a semester moved to another user): every denormalised copy of
  it in descendants is set again.

Rows are reached by the cheapest condition the target allows: ``column = key`` where the
target table holds the ancestor's key (copied or denormalised), else ``IN (SELECT ...)``
through the parent's target table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.errors import MappingConfigError
from sync.mapping import files
from sync.mapping.spec import ForeignKey, Lookup, MappingSpec, SourceTable
from sync.model import Condition, Eq, InSelect, TableRef

Path = tuple[ForeignKey, ...]  # edges from a table up to an ancestor; () is the row itself
Where = Callable[[Any], tuple[Condition, ...]]


@dataclass(frozen=True, slots=True)
class DeleteStep:
    """Delete (or null ``null_column`` of) rows of ``target`` matching ``where(key)``."""

    target: TableRef
    where: Where
    null_column: str | None = None


@dataclass(frozen=True, slots=True)
class RekeyStep:
    """Rows of ``target`` whose ``column`` held the old key get the new one (or NULL)."""

    target: TableRef
    column: str
    extra: tuple[Condition, ...]
    to_null: bool


@dataclass(frozen=True, slots=True)
class DenormStep:
    """When a looked-up column changes, set ``columns`` of matching descendant rows.

    ``walks[i]`` are the lookup steps still to walk from the changed value to ``columns[i]``.
    """

    target: TableRef
    where: Where
    columns: tuple[str, ...]
    walks: tuple[tuple[tuple[str, str], ...], ...]


class Reach:
    """Conditions selecting the target rows of a table that descend from an ancestor row."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.holders: dict[str, list[tuple[Path, str]]] = {
            n: _holders(t) for n, t in spec.tables.items()
        }
        self.refers: dict[str, dict[Path, str]] = {
            n: dict(reversed(h)) for n, h in self.holders.items()
        }

    def rows(self, table: str, path: Path) -> Where:
        col = self.refers[table].get(path)
        if col is not None:
            return lambda key: (Eq(col, key),)
        t = self.spec.tables[table]
        fk = path[0]
        fcol = t.target_column_of(fk.column)
        parent = self.spec.tables[fk.parent]
        pkey = parent.target_column_of(parent.key[0])
        if fcol is None or pkey is None:  # pragma: no cover - resolve() requires both copied
            raise MappingConfigError(f"{table}.{fk.column} is not copied to the target")
        inner = self.rows(fk.parent, path[1:])
        return lambda key: (InSelect(fcol, parent.target, pkey, inner(key)),)

    def split_rows(self, table: str, path: Path) -> Where:
        t = self.spec.tables[table]
        split = t.split
        assert split is not None
        mine = Eq(files.SOURCE_TABLE_COLUMN, table)
        if path == ():
            return lambda key: (mine, Eq(files.SOURCE_ID_COLUMN, key))
        owner = self.refers[table].get(path)
        if owner is not None and owner == split.owner_from:
            return lambda key: (mine, Eq(files.OWNER_COLUMN, key))
        inner = self.rows(table, path)
        link = split.link_column
        return lambda key: (mine, InSelect(files.KEY_COLUMN, t.target, link, inner(key)))


def _holders(t: SourceTable) -> list[tuple[Path, str]]:
    """Target columns of ``t`` holding the key of an ancestor, with the path that leads there.

    Copied foreign keys come first: they are what a condition prefers.
    """
    out: list[tuple[Path, str]] = [((), t.target_column_of(t.key[0]) or t.key[0])]
    out += [((fk,), t.target_column_of(fk.column) or fk.column) for fk in t.foreign_keys]
    out += [((*lk.edges, lk.refers), lk.column) for lk in t.lookups if lk.refers is not None]
    return out


def delete_plan(spec: MappingSpec, reach: Reach, table: str) -> tuple[DeleteStep, ...]:
    """What deleting a ``table`` row does to descendants, in the order to apply it."""
    entries: list[tuple[int, int, DeleteStep]] = []

    def walk(parent: str, path: Path) -> None:
        for fk in spec.children(parent):
            down = (fk, *path)
            child = spec.tables[fk.child]
            if fk.on_delete == "set_null":
                refuse_null_lookups(spec, fk)
                column = child.target_column_of(fk.column)
                step = DeleteStep(child.target, reach.rows(fk.child, down), column)
                entries.append((-len(down), 0, step))
            elif fk.on_delete == "cascade":
                if child.split is not None:
                    split = DeleteStep(child.split.target, reach.split_rows(fk.child, down))
                    entries.append((-len(down), 0, split))
                rows = DeleteStep(child.target, reach.rows(fk.child, down))
                entries.append((-len(down), 1, rows))
                walk(fk.child, down)

    walk(table, ())
    entries.sort(key=lambda e: (e[0], e[1]))
    return tuple(step for _, _, step in entries)


def refuse_null_lookups(spec: MappingSpec, fk: ForeignKey) -> None:
    """Lookups through a key aurora may set NULL would need their own cascade: refused."""
    for t in spec.tables.values():
        for lookup in t.lookups:
            if fk in lookup.edges:
                raise MappingConfigError(
                    f"{spec.path}: key `tables.{t.name}.lookups.{lookup.column}`: reads through "
                    f"`{fk.child}.{fk.column}`, which aurora may set NULL",
                    fix="look up through a foreign key with on_delete cascade or restrict",
                )


def rekey_plan(spec: MappingSpec, reach: Reach, table: str) -> tuple[RekeyStep, ...]:
    """Columns anywhere that hold a ``table`` key and follow it when it changes."""
    steps: list[RekeyStep] = []
    for name, holders in reach.holders.items():
        t = spec.tables[name]
        for path, column in holders:
            if not path or path[-1].parent != table or path[-1].on_update not in _FOLLOW:
                continue
            to_null = path[-1].on_update == "set_null"
            steps.append(RekeyStep(t.target, column, (), to_null))
            if t.split is not None and column == t.split.owner_from:
                mine = (Eq(files.SOURCE_TABLE_COLUMN, name),)
                steps.append(RekeyStep(t.split.target, files.OWNER_COLUMN, mine, to_null))
    return tuple(steps)


_FOLLOW = ("cascade", "set_null")


def denorm_plan(spec: MappingSpec, reach: Reach, table: str, column: str) -> tuple[DenormStep, ...]:
    """Descendant columns that copy ``table.column`` (directly or further up the chain)."""
    groups: dict[tuple[str, Path], list[tuple[Lookup, int]]] = {}
    for t in spec.tables.values():
        for lookup in t.lookups:
            for i, step in enumerate(lookup.steps):
                if step == (table, column):
                    groups.setdefault((t.name, lookup.edges[: i + 1]), []).append((lookup, i))
    out: list[DenormStep] = []
    for (name, path), found in groups.items():
        t = spec.tables[name]
        cols = tuple(lk.column for lk, _ in found)
        walks = tuple(lk.steps[i + 1 :] for lk, i in found)
        out.append(DenormStep(t.target, reach.rows(name, path), cols, walks))
        if t.split is not None and t.split.owner_from in cols:
            walk = walks[cols.index(t.split.owner_from)]
            where = reach.split_rows(name, path)
            out.append(DenormStep(t.split.target, where, (files.OWNER_COLUMN,), (walk,)))
    return tuple(out)


__all__ = [
    "DeleteStep",
    "DenormStep",
    "Reach",
    "RekeyStep",
    "delete_plan",
    "denorm_plan",
    "refuse_null_lookups",
    "rekey_plan",
]
