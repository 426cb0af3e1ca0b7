"""The resolved mapping: what ``config/mapping.yaml`` means, as typed frozen values.

:func:`load_mapping` reads and checks the file once at start. The result answers what the
rest of aurora-sync needs to know about the mapping: the target tables with their key,
written and compared columns (validation), the source tables parent-first and their keys
(the snapshot), the target tables that hold the lookup state (restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from sync.model import TableRef

Action = Literal["cascade", "set_null", "restrict", "no_action"]
AddedKind = Literal["constant", "commit_ts", "first_seen"]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``child.column`` references the (single-column) key of ``parent``."""

    child: str
    column: str
    parent: str
    on_delete: Action
    on_update: Action


@dataclass(frozen=True, slots=True)
class Lookup:
    """A denormalised target column: start at ``via`` of the row, then walk ``steps``.

    Each step ``(table, column)`` reads ``column`` of the ``table`` row whose key is the
    current value; ``edges[i]`` is the foreign key that leads to ``steps[i]``'s table.
    ``refers`` is set when the final value is itself a key of a further table (the foreign
    key the last step reads): ``syllabus.user_id`` is a ``users`` key.
    """

    column: str
    via: str
    steps: tuple[tuple[str, str], ...]
    edges: tuple[ForeignKey, ...]
    refers: ForeignKey | None


@dataclass(frozen=True, slots=True)
class Added:
    column: str
    kind: AddedKind
    default: Any
    owned: bool


@dataclass(frozen=True, slots=True)
class FileSplit:
    """A non-empty ``url_column`` becomes a row of ``target`` linked by ``link_column``."""

    source_table: str
    target: TableRef
    url_column: str
    link_column: str
    owner_from: str
    namespace: UUID
    id_name: str
    pending: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class SourceTable:
    """One mapped aurora table and how its rows become target rows."""

    name: str
    key: tuple[str, ...]
    target: TableRef
    copies: tuple[tuple[str, str], ...]  # (target column, source column), key first
    dropped: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]
    lookups: tuple[Lookup, ...]
    added: tuple[Added, ...]
    split: FileSplit | None

    def target_column_of(self, source_column: str) -> str | None:
        for target, source in self.copies:
            if source == source_column:
                return target
        return None

    @property
    def source_columns(self) -> tuple[str, ...]:
        split = (self.split.url_column,) if self.split else ()
        return tuple(s for _, s in self.copies) + self.dropped + split


@dataclass(frozen=True, slots=True)
class TargetTable:
    """What validation and the writer need to know about one target table."""

    ref: TableRef
    key_columns: tuple[str, ...]
    written_columns: tuple[str, ...]
    update_columns: tuple[str, ...]
    compared_columns: tuple[str, ...]
    # Derived from source commit times: differ between a replay and a rebuild by design.
    time_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LookupSource:
    """Where the lookup state of one source table lives in the target, to rebuild it.

    Read ``key_column`` and ``columns`` of ``target``; ``columns[i]`` holds the source
    column ``source_columns[i]``.
    """

    table: str
    target: TableRef
    key_column: str
    columns: tuple[str, ...]
    source_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Tables of ``schema`` copied as they are into the logical ``database``."""

    schema: str
    database: str
    tables: frozenset[str] | None  # None: every table


@dataclass(frozen=True)
class MappingSpec:
    path: Path
    source_schema: str
    unmapped: Literal["ignore", "error"]
    ignored: frozenset[str]
    tables: Mapping[str, SourceTable]  # parent-first
    routes: tuple[Route, ...]
    stored: Mapping[str, tuple[str, ...]]  # lookup state: table -> source columns kept
    target_tables: Mapping[TableRef, TargetTable] = field(default_factory=dict)

    def source_tables(self) -> tuple[str, ...]:
        """Mapped aurora tables, parents before children (the snapshot's order)."""
        return tuple(self.tables)

    def primary_key(self, table: str) -> tuple[str, ...]:
        return self.tables[table].key

    def targets(self) -> tuple[TargetTable, ...]:
        return tuple(self.target_tables.values())

    def compared_columns(self, target: TableRef) -> tuple[str, ...]:
        return self.target_tables[target].compared_columns

    def not_compared(self) -> dict[TableRef, tuple[str, ...]]:
        """Per target table, the written columns validation must not compare."""
        return {
            ref: tuple(c for c in t.written_columns if c not in t.compared_columns)
            for ref, t in self.target_tables.items()
        }

    def lookup_sources(self) -> tuple[LookupSource, ...]:
        out = []
        for name, columns in self.stored.items():
            table = self.tables[name]
            targets = tuple(table.target_column_of(c) or c for c in columns)
            out.append(
                LookupSource(
                    table=name,
                    target=table.target,
                    key_column=table.target_column_of(table.key[0]) or table.key[0],
                    columns=targets,
                    source_columns=columns,
                )
            )
        return tuple(out)

    def children(self, parent: str) -> tuple[ForeignKey, ...]:
        return tuple(
            fk for t in self.tables.values() for fk in t.foreign_keys if fk.parent == parent
        )


__all__ = [
    "Added",
    "FileSplit",
    "ForeignKey",
    "Lookup",
    "LookupSource",
    "MappingSpec",
    "Route",
    "SourceTable",
    "TargetTable",
]
