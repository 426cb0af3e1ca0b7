"""The mapping's central promise, as a property.

For any sequence of aurora statements (inserts, updates, deletes over all tables, parent key
changes, parent deletes that cascade, file URLs set, changed and cleared), applying the
operations of each binlog change, one change at a time, leaves the targets exactly as mapping
the final aurora state from scratch. The source model applies aurora's foreign-key actions
but, like InnoDB's binlog, emits only each statement's own rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.mapping import LookupState, Mapper, load_mapping, map_snapshot
from sync.mapping.sourcemodel import SourceModel
from sync.mapping.spec import MappingSpec
from sync.model import RowChange, TableRef
from sync.testing.memtarget import MemoryTarget

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"
T0 = datetime(2024, 1, 1, 12, 0, 0)
URLS = [
    None,
    "",
    "   ",
    "https://cdn.example.com/syllabi/Intro%20to%20Math.pdf?sig=1",
    "https://bucket.s3.amazonaws.com/a/b/notes.docx",
    "s3://bucket/plans/week-1.txt",
    "/var/files/plan.md",
    "https://example.com/",
]
TABLES = ("users", "semesters", "subjects", "syllabus", "repositories")
KINDS = ("insert", "update", "move", "rekey", "delete", "url")
# Inserts weigh more, so the states grow deep enough for cascades to matter.
WEIGHTED = ("insert",) * 5 + ("update", "move", "move", "rekey", "delete", "url", "url")


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(MAPPING, source_schema="aurora")


class Aurora:
    """Turns abstract steps into statements on the source model; tracks fresh ids."""

    def __init__(self, spec: MappingSpec) -> None:
        self.model = SourceModel(spec)
        self.next_id = dict.fromkeys(TABLES, 1)
        self.ts = T0

    def _id(self, table: str) -> int:
        self.next_id[table] += 1
        return self.next_id[table] - 1

    def _pick(self, table: str, n: int) -> Any:
        keys = list(self.model.rows[table])
        return keys[n % len(keys)] if keys else None

    def _new_row(self, table: str, n: int) -> dict[str, Any] | None:
        i = self._id(table)
        at = T0 + timedelta(minutes=n % 1000)
        if table == "users":
            return {
                "id": i,
                "email": f"u{i}@example.com",
                "password_hash": f"h{n}",
                "name": f"user {n}",
                "last_login_at": None if n % 2 else at,
                "created_at": at,
                "updated_at": at,
            }
        if table == "semesters":
            user = self._pick("users", n)
            return (
                None
                if user is None
                else {
                    "id": i,
                    "user_id": user,
                    "name": f"S{n}",
                    "start_date": date(2024, 1, 1),
                    "end_date": None,
                    "is_current": n % 2,
                }
            )
        if table == "subjects":
            semester = self._pick("semesters", n)
            return (
                None
                if semester is None
                else {
                    "id": i,
                    "semester_id": semester,
                    "name": f"subject {n}",
                    "credits": n % 7,
                    "color": None,
                    "teacher": f"t{n % 3}",
                }
            )
        if table == "syllabus":
            subject = self._pick("subjects", n)
            return (
                None
                if subject is None
                else {
                    "id": i,
                    "subject_id": subject,
                    "title": f"title {n}",
                    "content": None,
                    "file_url": URLS[n % len(URLS)],
                    "created_at": at,
                    "updated_at": at,
                }
            )
        user = self._pick("users", n)
        subject = self._pick("subjects", n // 3) if n % 3 else None
        return (
            None
            if user is None
            else {
                "id": i,
                "user_id": user,
                "subject_id": subject,
                "name": f"repo {n}",
                "url": f"https://git.example.com/{n}",
                "provider": "github",
                "is_private": n % 2,
                "stars": n,
                "created_at": at,
            }
        )

    def step(self, kind: str, table: str, a: int, b: int) -> list[RowChange]:
        self.ts += timedelta(seconds=1)
        if kind == "insert":
            row = self._new_row(table, a)
            return [] if row is None else self.model.insert(table, row, self.ts)
        key = self._pick(table, a)
        if key is None:
            return []
        if kind == "delete":
            return self.model.delete(table, key, self.ts)
        values = self._values(kind, table, key, b)
        return [] if values is None else self.model.update(table, key, values, self.ts)

    def _values(self, kind: str, table: str, key: Any, b: int) -> dict[str, Any] | None:
        if kind == "rekey":
            return {"id": self._id(table)}
        if kind == "url":
            return {"file_url": URLS[b % len(URLS)]} if table == "syllabus" else None
        if kind == "move":
            return self._move(table, b)
        column = {
            "users": "name",
            "semesters": "name",
            "subjects": "teacher",
            "syllabus": "title",
            "repositories": "stars",
        }[table]
        return {column: f"v{b}" if column != "stars" else b}

    def _move(self, table: str, b: int) -> dict[str, Any] | None:
        parent_of = {
            "semesters": ("user_id", "users"),
            "subjects": ("semester_id", "semesters"),
            "syllabus": ("subject_id", "subjects"),
            "repositories": ("subject_id", "subjects"),
        }
        if table not in parent_of:
            return None
        column, parent = parent_of[table]
        target = self._pick(parent, b)
        if table == "repositories" and b % 4 == 0:
            target = None
        return None if target is None and table != "repositories" else {column: target}


def _volatile(spec: MappingSpec) -> dict[TableRef, tuple[str, ...]]:
    """Columns derived from commit times: differ between a replay and a rebuild by design."""
    return {t.ref: t.time_columns for t in spec.targets()}


def _incremental(spec: MappingSpec, changes: list[RowChange], restart_at: int) -> MemoryTarget:
    target = MemoryTarget()
    mapper = Mapper(spec, LookupState(spec))
    for n, change in enumerate(changes):
        if n == restart_at:
            mapper = Mapper(spec, _rebuilt(spec, target))
        target.apply(mapper.map_change(change))
    return target


def _rebuilt(spec: MappingSpec, target: MemoryTarget) -> LookupState:
    rows = {s.table: list(target.table(s.target).values()) for s in spec.lookup_sources()}
    return LookupState.rebuild(spec, rows)


step = st.tuples(
    st.sampled_from(WEIGHTED),
    st.sampled_from(TABLES),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
# Hypothesis favours short lists; draw the length first so long programs are common too.
steps = st.integers(10, 90).flatmap(lambda n: st.lists(step, min_size=n, max_size=n))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, restart=st.integers(0, 80))
def test_streamed_changes_equal_mapping_from_scratch(
    spec: MappingSpec, program: list[tuple[str, str, int, int]], restart: int
) -> None:
    aurora = Aurora(spec)
    # A few parents first, so most programs reach the deeper tables.
    changes: list[RowChange] = []
    for table in TABLES[:4]:
        changes += aurora.step("insert", table, 0, 0)
    for kind, table, a, b in program:
        changes += aurora.step(kind, table, a, b)

    streamed = _incremental(spec, changes, restart)
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
    streamed = _incremental(spec, changes, restart_at=len(changes) // 2)
    rebuilt = map_snapshot(spec, aurora.model.state(), commit_ts=T0)
    ignore = _volatile(spec)
    assert streamed.snapshot(ignore) == rebuilt.snapshot(ignore)
    files = rebuilt.table(TableRef("file_db", "files"))
    syllabi = rebuilt.table(TableRef("syllabus_db", "syllabus"))
    assert files, "some syllabus keeps a file URL"
    assert len(syllabi) > len(files), "and some has none"
    assert len(rebuilt.table(TableRef("gateway_db", "users"))) == 2
