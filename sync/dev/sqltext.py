"""SQL text for the development data tools: literals, multi-row INSERTs, the aurora schema.

The generator builds its statements as text rather than through PyMySQL's parameter
substitution: one pass over already-typed values is several times faster for millions of
rows, and the escaping is PyMySQL's own (``escape_string``), so the result is the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pymysql.converters import escape_string

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "aurora.sql"

# Every column of every aurora table, in the order the row factories fill them.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "users": (
        "id", "email", "password_hash", "name", "last_login_at", "created_at", "updated_at",
    ),
    "semesters": ("id", "user_id", "name", "start_date", "end_date", "is_current"),
    "subjects": ("id", "semester_id", "name", "credits", "color", "teacher"),
    "syllabus": ("id", "subject_id", "title", "content", "file_url", "created_at", "updated_at"),
    "repositories": (
        "id", "user_id", "subject_id", "name", "url", "provider", "is_private", "stars",
        "created_at",
    ),
}
# Parents before children, so the order also suits a load with foreign key checks on.
TABLES: tuple[str, ...] = tuple(COLUMNS)

Value = str | int | float | datetime | date | None
Row = tuple[Value, ...]

_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


def quote_ident(name: str) -> str:
    """A backquoted identifier; only plain names are accepted, so nothing needs escaping."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f"`{name}`"


def _text(value: str) -> str:
    return "'" + escape_string(value) + "'"


def _datetime(value: datetime) -> str:
    # isoformat drops a zero fraction and keeps microseconds otherwise; both parse the same.
    return "'" + value.isoformat(" ") + "'"


def _date(value: date) -> str:
    return "'" + value.isoformat() + "'"


def _null(_: None) -> str:
    return "NULL"


_ENCODERS: Mapping[type, Callable[[Any], str]] = {
    str: _text,
    int: str,
    bool: lambda v: "1" if v else "0",
    float: repr,
    datetime: _datetime,
    date: _date,
    type(None): _null,
}


def literal(value: Value) -> str:
    """``value`` as a SQL literal (strings escaped as PyMySQL does)."""
    return _ENCODERS[type(value)](value)


def row_literal(row: Row) -> str:
    return "(" + ",".join([_ENCODERS[type(v)](v) for v in row]) + ")"


def insert_prefix(database: str, table: str) -> str:
    cols = ",".join(quote_ident(c) for c in COLUMNS[table])
    return f"INSERT INTO {quote_ident(database)}.{quote_ident(table)} ({cols}) VALUES "


def insert_sql(database: str, table: str, rows: Iterable[Row]) -> str:
    """One multi-row INSERT of ``rows`` (full rows, in :data:`COLUMNS` order)."""
    return insert_prefix(database, table) + ",".join(row_literal(r) for r in rows)


def schema_statements(path: Path = SCHEMA_PATH) -> list[str]:
    """The statements of a schema file, comments removed, split at the ``;`` ending a line."""
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("--")
    ]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def create_database_sql(database: str, *, drop: bool) -> Sequence[str]:
    db = quote_ident(database)
    head = [f"DROP DATABASE IF EXISTS {db}"] if drop else []
    return [
        *head,
        f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    ]
