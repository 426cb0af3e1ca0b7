"""Random aurora histories for the mapping's property tests.

:class:`Aurora` turns abstract steps (``steps`` draws them) into statements on the in-memory
source model, which applies aurora's foreign-key actions and, like InnoDB's binlog, emits only
each statement's own rows. :func:`history` runs a program and keeps the source state after
every change, for snapshots taken at any moment.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from sync.mapping.sourcemodel import SourceModel
from sync.mapping.spec import MappingSpec
from sync.model import RowChange

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


step = st.tuples(
    st.sampled_from(WEIGHTED),
    st.sampled_from(TABLES),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
# Hypothesis favours short lists; draw the length first so long programs are common too.
steps = st.integers(10, 90).flatmap(lambda n: st.lists(step, min_size=n, max_size=n))


Program = list[tuple[str, str, int, int]]
State = dict[str, list[dict[str, Any]]]


def history(spec: MappingSpec, program: Program) -> tuple[list[RowChange], list[State]]:
    """The binlog changes of ``program`` and the source state before and after each one.

    A few parents are inserted first, so most programs reach the deeper tables.
    """
    aurora = Aurora(spec)
    changes: list[RowChange] = []
    states = [aurora.model.state()]
    for kind, table, a, b in [("insert", t, 0, 0) for t in TABLES[:4]] + program:
        for change in aurora.step(kind, table, a, b):
            changes.append(change)
            states.append(aurora.model.state())
    return changes, states
