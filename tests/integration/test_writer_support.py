"""Shared setup of the writer's integration tests: a data schema, the state schema, settings,
and a connection wrapper that injects faults into chosen statements."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql

from sync.db import connection_kwargs
from sync.dev.localdb import LocalServer
from sync.model import Key, TableRef
from sync.settings import Settings, load_settings

STATE_SQL = Path(__file__).resolve().parents[2] / "schemas" / "state.sql"

DATA_SQL = """
CREATE TABLE people (
    id INT NOT NULL PRIMARY KEY,
    email VARCHAR(64) NULL,
    name VARCHAR(32) NULL,
    score DECIMAL(10,2) NULL,
    data VARBINARY(32) NULL,
    seen DATETIME(6) NULL,
    url VARCHAR(64) NULL,
    checksum VARCHAR(64) NULL,
    created VARCHAR(16) NULL,
    UNIQUE KEY uq_people_email (email)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE pairs (
    a INT NOT NULL,
    b VARCHAR(16) NOT NULL,
    v INT NULL,
    note VARCHAR(32) NULL,
    PRIMARY KEY (a, b)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE children (
    id INT NOT NULL PRIMARY KEY,
    person_id INT NULL,
    flag INT NULL,
    label VARCHAR(16) NULL
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""

TABLES = {"people": ("id",), "pairs": ("a", "b"), "children": ("id",)}


def prepare(server: LocalServer, data_db: str, state_db: str) -> None:
    """(Re)create ``data_db`` and ``state_db`` on ``server``."""
    for name in (data_db, state_db):
        server.execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.execute(f"CREATE DATABASE `{name}`")
    server.run_script(DATA_SQL, data_db)
    server.run_script(STATE_SQL.read_text(), state_db)


def writer_settings(server: LocalServer, state_db: str, **overrides: Any) -> Settings:
    return load_settings(
        env_file=None,
        target_host=server.host,
        target_port=server.port,
        target_user=server.user,
        target_password=server.password,
        state_db=state_db,
        pipeline="test",
        **overrides,
    )


def clear(server: LocalServer, data_db: str, state_db: str) -> None:
    for table in TABLES:
        server.execute(f"DELETE FROM `{data_db}`.`{table}`")
    for table in ("checkpoint", "dead_letter", "bootstrap_progress"):
        server.execute(f"DELETE FROM `{state_db}`.`{table}`")


def read_tables(server: LocalServer, data_db: str) -> dict[TableRef, dict[Key, dict[str, Any]]]:
    """Every non-empty table of ``data_db`` as MemoryTarget.snapshot() shows it."""
    out: dict[TableRef, dict[Key, dict[str, Any]]] = {}
    conn = server.connect(data_db, cursorclass=pymysql.cursors.DictCursor)
    with contextlib.closing(conn), conn.cursor() as cur:
        for table, key in TABLES.items():
            cur.execute(f"SELECT * FROM `{table}`")
            rows = {tuple(r[k] for k in key): dict(r) for r in cur.fetchall()}
            if rows:
                out[TableRef(data_db, table)] = rows
    return out


class FaultyCursor:
    def __init__(self, owner: FaultyConnection, cursor: Any) -> None:
        self._owner = owner
        self._cursor = cursor

    def execute(self, sql: str, args: Any = None) -> int:
        self._owner.faults.before(sql)
        if self._owner.faults.swallow(sql):
            return 0
        return int(self._cursor.execute(sql, args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __enter__(self) -> FaultyCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


class Faults:
    """Actions to run before the Nth statement containing a text (counted across
    reconnects), and statements to pretend to run."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, int, Callable[[], None]]] = []
        self.counts: dict[str, int] = {}
        self.swallowed: list[str] = []
        self.fake_version: str | None = None
        self.executed: list[str] = []

    def on(self, text: str, nth: int, action: Callable[[], None]) -> None:
        self.rules.append((text, nth, action))

    def raise_on(self, text: str, nth: int, code: int, message: str = "injected") -> None:
        def action() -> None:
            cls = pymysql.err.OperationalError if code >= 2000 else pymysql.err.InternalError
            raise cls(code, message)

        self.on(text, nth, action)

    def before(self, sql: str | bytes) -> None:
        if isinstance(sql, bytes):  # statements rendered elsewhere (apply_statements)
            sql = sql.decode()
        self.executed.append(sql)
        for text in {text for text, _, _ in self.rules if text in sql}:
            self.counts[text] = self.counts.get(text, 0) + 1
        for text, nth, action in list(self.rules):
            if text in sql and self.counts[text] == nth:
                action()

    def swallow(self, sql: str | bytes) -> bool:
        if isinstance(sql, str) and "allow_auto_random_explicit_insert" in sql:
            self.swallowed.append(sql)
            return True
        return False


class FaultyConnection:
    def __init__(self, conn: Any, faults: Faults) -> None:
        self._conn = conn
        self.faults = faults

    def cursor(self) -> Any:
        cursor = FaultyCursor(self, self._conn.cursor())
        if self.faults.fake_version is not None:
            return _VersionCursor(cursor, self.faults.fake_version)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _VersionCursor:
    """Answers ``SELECT VERSION()`` as TiDB would."""

    def __init__(self, cursor: FaultyCursor, version: str) -> None:
        self._cursor = cursor
        self._version = version
        self._answer: tuple[Any, ...] | None = None

    def execute(self, sql: str, args: Any = None) -> int:
        result = self._cursor.execute(sql, args)
        if sql.startswith("SELECT VERSION()"):
            row = self._cursor.fetchone()
            self._answer = (self._version, *row[1:])
        return result

    def fetchone(self) -> Any:
        if self._answer is not None:
            answer, self._answer = self._answer, None
            return answer
        return self._cursor.fetchone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __enter__(self) -> _VersionCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.__exit__()


def faulty_connect(settings: Settings, faults: Faults) -> Callable[[], Any]:
    def connect() -> Any:
        conn = pymysql.connect(**connection_kwargs(settings.target), autocommit=False)
        return FaultyConnection(conn, faults)

    return connect


@contextlib.contextmanager
def closing_writer(writer: Any) -> Iterator[Any]:
    try:
        yield writer
    finally:
        writer.close()
