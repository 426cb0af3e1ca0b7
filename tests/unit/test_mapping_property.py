"""The mapping's central promise, as a property.

For any sequence of aurora statements (inserts, updates, deletes over all tables, parent key
changes, parent deletes that cascade, file URLs set, changed and cleared), applying the
operations of each binlog change, one change at a time, leaves the targets exactly as mapping
the final aurora state from scratch. The source model applies aurora's foreign-key actions
but, like InnoDB's binlog, emits only each statement's own rows.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.mapping import LookupState, Mapper, load_mapping, map_snapshot
from sync.mapping.spec import MappingSpec
from sync.model import RowChange, TableRef
from sync.testing.memtarget import MemoryTarget
from tests.unit.mapping_history import MAPPING, T0, TABLES, Aurora, steps


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(MAPPING, source_schema="aurora")


def _volatile(spec: MappingSpec) -> dict[TableRef, tuple[str, ...]]:
    """Columns derived from commit times: differ between a replay and a rebuild by design."""
    return {t.ref: t.time_columns for t in spec.targets()}


def _incremental(spec: MappingSpec, changes: list[RowChange], restart_at: int, *,
                 projected: bool = False) -> MemoryTarget:
    """Each change mapped and applied in turn, with a restart; ``projected``: before images
    hold only the columns the mapper says it reads from them, as the stream's reader gives."""
    target = MemoryTarget()
    mapper = Mapper(spec, LookupState(spec))
    for n, change in enumerate(changes):
        if n == restart_at:
            mapper = Mapper(spec, _rebuilt(spec, target))
        target.apply(mapper.map_change(_projected(mapper, change) if projected else change))
    return target


def _projected(mapper: Mapper, change: RowChange) -> RowChange:
    kept = mapper.before_columns(change.schema, change.table)
    if kept is None or change.before is None:
        return change
    return replace(change, before={c: v for c, v in change.before.items() if c in kept})


def _rebuilt(spec: MappingSpec, target: MemoryTarget) -> LookupState:
    rows = {s.table: list(target.table(s.target).values()) for s in spec.lookup_sources()}
    return LookupState.rebuild(spec, rows)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, restart=st.integers(0, 80), projected=st.booleans())
def test_streamed_changes_equal_mapping_from_scratch(
    spec: MappingSpec, program: list[tuple[str, str, int, int]], restart: int, projected: bool
) -> None:
    aurora = Aurora(spec)
    # A few parents first, so most programs reach the deeper tables.
    changes: list[RowChange] = []
    for table in TABLES[:4]:
        changes += aurora.step("insert", table, 0, 0)
    for kind, table, a, b in program:
        changes += aurora.step(kind, table, a, b)

    streamed = _incremental(spec, changes, restart, projected=projected)
    rebuilt = map_snapshot(spec, aurora.model.state(), commit_ts=T0)

    ignore = _volatile(spec)
    assert streamed.snapshot(ignore) == rebuilt.snapshot(ignore)
    # The lookup state after streaming equals the one rebuilt from the final targets.
    replayed = Mapper(spec, LookupState(spec))
    for change in changes:
        replayed.map_change(change)
    assert replayed.lookups.dump() == _rebuilt(spec, streamed).dump()


def test_the_generator_reaches_every_kind_of_change(spec: MappingSpec) -> None:
    """Guards the property against a generator that silently stops exercising cascades."""
    aurora = Aurora(spec)
    program = [("insert", t, n, 0) for n in range(3) for t in TABLES]
    program += [
        ("url", "syllabus", 0, 3),
        ("url", "syllabus", 0, 4),
        ("url", "syllabus", 0, 0),
        ("move", "semesters", 0, 1),
        ("move", "subjects", 1, 2),
        ("rekey", "users", 0, 0),
        ("rekey", "semesters", 1, 0),
        ("rekey", "subjects", 2, 0),
        ("delete", "subjects", 0, 0),
        ("delete", "users", 0, 0),
        ("insert", "syllabus", 3, 0),
    ]
    changes = [c for step in program for c in aurora.step(*step)]
    assert len(changes) == len(program)
    rebuilt = map_snapshot(spec, aurora.model.state(), commit_ts=T0)
    ignore = _volatile(spec)
    for projected in (False, True):
        streamed = _incremental(spec, changes, len(changes) // 2, projected=projected)
        assert streamed.snapshot(ignore) == rebuilt.snapshot(ignore)
    files = rebuilt.table(TableRef("file_db", "files"))
    syllabi = rebuilt.table(TableRef("syllabus_db", "syllabus"))
    assert files, "some syllabus keeps a file URL"
    assert len(syllabi) > len(files), "and some has none"
    assert len(rebuilt.table(TableRef("gateway_db", "users"))) == 2
