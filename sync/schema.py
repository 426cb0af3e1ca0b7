"""``aurora-sync init``: create the service databases and load their schemas (guide steps 2, 3).

The SQL files in ``schemas/`` are run through PyMySQL with the verified TLS of
:mod:`sync.db`, so no ``mysql`` client is needed. Every statement in them is
``CREATE TABLE IF NOT EXISTS``, so running init again changes nothing.

Where ``schemas/`` is: ``AURORA_SYNC_SCHEMAS_DIR`` when set (the Docker image sets it), else
the ``schemas/`` folder of the checkout the package runs from, else ``./schemas``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from sync.db import connect, error_code
from sync.errors import ApplyError, ConfigError
from sync.settings import LOGICAL_DATABASES, Settings

SCHEMAS_DIR_ENV = "AURORA_SYNC_SCHEMAS_DIR"
STATE_SCHEMA = "state"
SOURCE_SCHEMA = "aurora"
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([A-Za-z0-9_$]+)`?", re.IGNORECASE
)


@dataclass(frozen=True)
class DatabasePlan:
    """One database init creates: its logical and physical names and the statements to run."""

    logical: str
    physical: str
    schema_file: Path
    statements: tuple[str, ...]

    @property
    def create_database(self) -> str:
        return (
            f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.physical)} "
            "DEFAULT CHARACTER SET utf8mb4"
        )

    @property
    def tables(self) -> tuple[str, ...]:
        return tables_created(self.statements)


def schemas_dir() -> Path:
    """The folder holding the schema files (see the module docstring for the order)."""
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        path = Path(configured)
        if not (path / f"{SOURCE_SCHEMA}.sql").is_file():
            raise ConfigError(
                f"{SCHEMAS_DIR_ENV}={configured} holds no {SOURCE_SCHEMA}.sql",
                fix=f"point {SCHEMAS_DIR_ENV} at the schemas/ folder of aurora-sync",
            )
        return path
    for candidate in (Path(__file__).resolve().parent.parent / "schemas", Path.cwd() / "schemas"):
        if (candidate / f"{SOURCE_SCHEMA}.sql").is_file():
            return candidate
    raise ConfigError(
        "cannot find the schemas/ folder (aurora.sql, gateway_db.sql, ... state.sql)",
        fix=f"run from the aurora-sync checkout or set {SCHEMAS_DIR_ENV} to the schemas/ folder",
    )


def schema_file(name: str) -> Path:
    """``schemas/<name>.sql``; ``name`` is a logical database, ``aurora`` or ``state``."""
    path = schemas_dir() / f"{name}.sql"
    if not path.is_file():
        raise ConfigError(f"the schema file {path} is missing",
                          fix="restore it from the aurora-sync repository")
    return path


def load_statements(name: str) -> tuple[str, ...]:
    return tuple(split_statements(schema_file(name).read_text(encoding="utf-8")))


def schema_tables(name: str) -> tuple[str, ...]:
    """The tables ``schemas/<name>.sql`` creates, in file order."""
    return tables_created(load_statements(name))


def tables_created(statements: tuple[str, ...]) -> tuple[str, ...]:
    found = (_CREATE_TABLE.match(s) for s in statements)
    return tuple(m.group(1) for m in found if m)


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into statements on ``;`` outside quotes, dropping comments."""
    statements: list[str] = []
    current: list[str] = []
    for kind, text in _tokens(sql):
        if kind == "end":
            _flush(current, statements)
        elif kind != "comment":
            current.append(text)
    _flush(current, statements)
    return statements


def _flush(current: list[str], statements: list[str]) -> None:
    # Comments leave blank lines behind; a dry run reads better without them.
    text = "\n".join(line.rstrip() for line in "".join(current).splitlines() if line.strip())
    text = text.strip()
    if text:
        statements.append(text)
    current.clear()


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = _closing_quote(sql, i)
            yield "text", sql[i:end]
            i = end
        elif ch == "#" or _line_comment(sql, i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            yield "comment", ""
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            yield "comment", " "
        elif ch == ";":
            i += 1
            yield "end", ";"
        else:
            yield "text", ch
            i += 1


def _line_comment(sql: str, i: int) -> bool:
    # MySQL needs white space after "--": "a--1" is arithmetic, not a comment.
    return sql.startswith("--", i) and (i + 2 == len(sql) or sql[i + 2].isspace())


def _closing_quote(sql: str, start: int) -> int:
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\" and quote != "`":
            i += 2
        elif sql[i] == quote:
            if sql.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def plan_init(settings: Settings) -> list[DatabasePlan]:
    """The databases init creates, service databases first, then aurora-sync's state."""
    plans = [
        DatabasePlan(logical, settings.database(logical), schema_file(logical),
                     load_statements(logical))
        for logical in LOGICAL_DATABASES
    ]
    plans.append(DatabasePlan(STATE_SCHEMA, settings.state_db, schema_file(STATE_SCHEMA),
                              load_statements(STATE_SCHEMA)))
    return plans


def render_plan(plans: list[DatabasePlan]) -> str:
    """The SQL init would run, as a script a person can read (``init --dry-run``)."""
    lines: list[str] = []
    for plan in plans:
        lines.append(f"-- {plan.logical} -> {plan.physical} ({plan.schema_file.name})")
        lines.append(plan.create_database + ";")
        lines.append(f"USE {quote_identifier(plan.physical)};")
        lines.extend(statement + ";" for statement in plan.statements)
        lines.append("")
    return "\n".join(lines)


def init_target(settings: Settings) -> list[DatabasePlan]:
    """Create every database of the plan and its tables on the target; return the plan."""
    plans = plan_init(settings)
    with contextlib.closing(connect(settings.target)) as conn, conn.cursor() as cur:
        for plan in plans:
            for statement in (plan.create_database, f"USE {quote_identifier(plan.physical)}",
                              *plan.statements):
                try:
                    cur.execute(statement)
                except pymysql.MySQLError as exc:
                    raise ApplyError(
                        f"init failed in {plan.physical} ({plan.schema_file.name}): "
                        f"error {error_code(exc)}: {exc.args[-1]}",
                        fix="grant the TIDB_USER CREATE on these databases, or create them "
                        "yourself and run init again (it only creates what is missing)",
                    ) from None
    return plans
