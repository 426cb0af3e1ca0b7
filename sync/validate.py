"""``aurora-sync validate``: the service databases against the mapping of aurora, chunk by chunk.

The first pass splits every mapped aurora table into primary-key chunks and has both servers
hash each chunk at once (:mod:`sync.validation.scan`): aurora's server hashes the rows the
mapping makes from the chunk, the mapping written as SQL (:mod:`sync.validation.pushdown`),
and the target server hashes the rows it stores in the same key range
(:mod:`sync.validation.reading`); the target is read once its checkpoint has reached the
snapshots' positions. Only hashes cross the network, except the file rows' URLs, whose
derived values Python computes. Memory holds one chunk.

While the daemon streams, the target moves on after P, so a chunk may differ only because a
change is in flight. As Vitess VDiff does, such chunks are checked again, by the Python
mapping itself (:mod:`sync.validation.expected`): read aurora in a fresh snapshot (P'), wait
for the checkpoint to pass P', read the target rows and compare row by row. A chunk whose rows
name a parent aurora lacks is always checked this way: only the Python mapping says what such
a row becomes. A difference is reported only when every attempt shows it. Columns the services own
and commit-time columns are not compared (``MappingSpec.compared_columns``). Each run is
recorded in the state database (``validation_run``): position, clean, summary.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql

from sync.db import connect
from sync.errors import ValidationError
from sync.mapping import files
from sync.mapping.resolve import load_spec
from sync.mapping.spec import MappingSpec, SourceTable, TargetTable
from sync.model import Position
from sync.settings import Settings
from sync.state import StateStore
from sync.validation.compare import Key, Rendered, RowDiff, TableTally, diff_rows
from sync.validation.compare import persistent as persistent_diffs
from sync.validation.expected import ChunkMapper, Expected, refresh_parents
from sync.validation.normal import UUID5, renderer
from sync.validation.pushdown import FILE_HASH_GROUPS, PushdownQuery, chunk_bounds
from sync.validation.reading import (
    Chunk,
    TargetRange,
    column_kinds,
    open_snapshot,
    read_chunk,
    target_rows,
)
from sync.validation.scan import TableScan, run_scan
from sync.validation.settle import wait_applied


@dataclass(frozen=True, slots=True)
class ValidateOptions:
    tables: tuple[str, ...] = ()
    """Target tables to compare (``db.table`` or ``table``); empty: all of them."""
    chunk_size: int = 5000
    settle_timeout: float = 30.0
    """Seconds to wait for the checkpoint to reach a position before comparing anyway."""
    attempts: int = 3
    """Re-reads of a differing chunk; a difference must show in every one."""
    keep: int = 20
    """Differing keys kept per table for the report."""
    threads: int = 3
    """Connections to each server hashing chunks at once in the first pass."""


@dataclass
class ValidationReport:
    run_id: int
    position: Position
    tables: list[TableTally]
    seconds: float
    behind: bool = False
    """The checkpoint did not reach the snapshot position in time: differences may be lag."""

    @property
    def clean(self) -> bool:
        return all(t.clean for t in self.tables)

    def summary(self) -> dict[str, Any]:
        return {"clean": self.clean, "seconds": round(self.seconds, 3), "behind": self.behind,
                "tables": {t.table: t.summary() for t in self.tables}}


@dataclass
class _Plan:
    """Per aurora table, the target ranges compared."""

    source: SourceTable
    targets: list[TargetRange] = field(default_factory=list)


def _select(spec: MappingSpec, names: Sequence[str]) -> set[str]:
    known = {str(t.ref): t for t in spec.targets()}
    chosen: set[str] = set()
    for name in names:
        hits = [label for label, t in known.items() if name in (label, t.ref.table)]
        if not hits:
            raise ValidationError(f"--tables names {name!r}, which the mapping does not write",
                                  fix=f"use one of {', '.join(sorted(known))}")
        chosen.update(hits)
    return chosen or set(known)


def _range(conn: pymysql.Connection[Any], settings: Settings, source: SourceTable,
           target: TargetTable) -> TargetRange:
    physical = settings.database(target.ref.database)
    compared = (*target.key_columns,
                *(c for c in target.compared_columns if c not in target.key_columns))
    kinds = column_kinds(conn, physical, target.ref.table, compared)
    split = source.split
    ids = ({files.KEY_COLUMN} if split is not None and target.ref == split.target else
           {split.link_column} if split is not None else set())
    kinds = tuple(replace(k, data_type=UUID5) if k.name in ids else k for k in kinds)
    if split is not None and target.ref == split.target:
        columns: tuple[str, ...] = (files.SOURCE_ID_COLUMN,)
        fixed: tuple[tuple[str, Any], ...] = ((files.SOURCE_TABLE_COLUMN, split.source_table),)
        groups = FILE_HASH_GROUPS
    else:
        columns = tuple(source.target_column_of(k) or k for k in source.key)
        fixed = ()
        groups = ()
    return TargetRange(str(target.ref), physical, target.ref.table, columns, fixed, kinds,
                       len(target.key_columns), groups)


def plan(conn: pymysql.Connection[Any], settings: Settings, spec: MappingSpec,
         names: Sequence[str]) -> list[_Plan]:
    chosen = _select(spec, names)
    plans: list[_Plan] = []
    for source in spec.tables.values():
        refs = [source.target] + ([source.split.target] if source.split else [])
        item = _Plan(source, [_range(conn, settings, source, spec.target_tables[r])
                              for r in refs if str(r) in chosen])
        if item.targets:
            plans.append(item)
    return plans


def rendered(target: TargetRange, expected: Expected) -> dict[Key, Rendered]:
    rows = next((r for ref, r in expected.items() if str(ref) == target.label), {})
    names = tuple(k.name for k in target.kinds)
    render_row = renderer(target.kinds)
    return {key: render_row([row.get(n) for n in names]) for key, row in rows.items()}


class Validator:
    """One validation run; :func:`validate` builds it from the settings."""

    def __init__(self, settings: Settings, spec: MappingSpec, options: ValidateOptions,
                 store: Callable[[], StateStore]) -> None:
        self.settings = settings
        self.spec = spec
        self.options = options
        self.store = store
        self.mapper = ChunkMapper(spec)
        self._behind = False

    def run(self) -> ValidationReport:
        started = time.monotonic()
        state = self.store()
        with contextlib.closing(connect(self.settings.source)) as source, \
                contextlib.closing(connect(self.settings.target)) as target:
            plans = plan(target, self.settings, self.spec, self.options.tables)
            position = open_snapshot(source)
            run_id = state.start_validation(position)
            try:
                self._behind = not wait_applied(self.store, position,
                                                self.options.settle_timeout).reached
                tallies, pending = self._first_pass(source, plans)
                source.rollback()
                for chunk, item, targets in pending.values():
                    self._recheck(target, item, chunk, targets, tallies)
            except BaseException:
                with contextlib.suppress(Exception):
                    state.finish_validation(run_id, False, {"error": "interrupted"})
                raise
        report = ValidationReport(run_id, position, list(tallies.values()),
                                  time.monotonic() - started, self._behind)
        state.finish_validation(run_id, report.clean, report.summary())
        state.close()
        return report

    def _first_pass(self, source: pymysql.Connection[Any],
                    plans: list[_Plan]) -> tuple[dict[str, TableTally], _Pending]:
        tallies = {t.label: TableTally(t.label, _key_names(self.spec, t.label))
                   for p in plans for t in p.targets}
        schema = self.spec.source_schema
        scans = {}
        for item in plans:
            chunks = chunk_bounds(source, schema, item.source, self.options.chunk_size)
            grouped = {t.label for t in item.targets if t.fixed}
            scans[item.source.name] = (item, TableScan(
                PushdownQuery(self.spec, item.source, item.targets), chunks, grouped))
        result = run_scan([scan for _, scan in scans.values()],
                          connect_source=lambda: connect(self.settings.source),
                          connect_target=lambda: connect(self.settings.target),
                          threads=self.options.threads, before_target=self._settle)
        pending: _Pending = {}
        for item, scan in scans.values():
            for index, chunk in enumerate(scan.chunks):
                for target in item.targets:
                    want, orphans = result.want(scan, index, target)
                    have = result.have(scan, index, target)
                    tally = tallies[target.label]
                    tally.chunks += 1
                    tally.expected_rows += want.rows
                    tally.target_rows += have.rows
                    if want != have or orphans:
                        pending.setdefault((chunk, item.source.name),
                                           (chunk, item, []))[2].append(target)
        return tallies, pending

    def _settle(self, positions: list[Position]) -> None:
        latest = max(positions)
        if not wait_applied(self.store, latest, self.options.settle_timeout).reached:
            self._behind = True

    def _recheck(self, target_conn: pymysql.Connection[Any], item: _Plan, chunk: Chunk,
                 targets: list[TargetRange], tallies: dict[str, TableTally]) -> None:
        attempts: dict[str, list[list[RowDiff]]] = {t.label: [] for t in targets}
        for _ in range(max(self.options.attempts, 1)):
            expected, position = self._reread(item, chunk)
            wait_applied(self.store, position, self.options.settle_timeout)
            dirty = False
            for target in targets:
                columns = tuple(k.name for k in target.kinds)
                found = diff_rows(target.label, columns, rendered(target, expected),
                                  target_rows(target_conn, target, chunk))
                attempts[target.label].append(found)
                dirty = dirty or bool(found)
            if not dirty:
                break
        for target in targets:
            tally = tallies[target.label]
            tally.rechecked += 1
            tally.add(persistent_diffs(attempts[target.label]), self.options.keep)

    def _reread(self, item: _Plan, chunk: Chunk) -> tuple[Expected, Position]:
        columns = self.mapper.source_columns(item.source.name)
        with contextlib.closing(connect(self.settings.source)) as conn:
            position = open_snapshot(conn)
            rows = read_chunk(conn, chunk, schema=self.spec.source_schema, columns=columns,
                              key=item.source.key, limit=None)
            refresh_parents(conn, self.spec, self.mapper.state, item.source.name, rows)
            conn.rollback()
        return self.mapper.map(item.source.name, rows), position


_Pending = dict[tuple[Chunk, str], tuple[Chunk, _Plan, list[TargetRange]]]


def _key_names(spec: MappingSpec, label: str) -> tuple[str, ...]:
    for table in spec.targets():
        if str(table.ref) == label:
            return table.key_columns
    return ()


def validate(settings: Settings, options: ValidateOptions | None = None) -> ValidationReport:
    """Run one validation with the settings' servers and record it in the state database."""
    spec = load_spec(settings)
    return Validator(settings, spec, options or ValidateOptions(),
                     lambda: StateStore(lambda: connect(settings.target), settings.state_db,
                                        settings.pipeline)).run()


__all__ = ["ValidateOptions", "ValidationReport", "Validator", "validate"]
