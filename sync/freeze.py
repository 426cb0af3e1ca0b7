"""How the cutover stops writes on aurora, and how it lets them go again.

``read-only``  ``SET GLOBAL read_only = ON``: every later write of an ordinary user fails
               with error 1290. Needs SUPER (MySQL) or READ_ONLY ADMIN / SUPER (MariaDB);
               users holding READ_ONLY ADMIN (MariaDB) or SUPER/CONNECTION_ADMIN (MySQL)
               can still write. Aurora MySQL refuses it: set ``read_only`` in the DB
               parameter group instead, or use ``lock``.
``lock``       one session holds ``LOCK TABLES <every aurora table> READ``: writes wait (up to
               the writers' ``lock_wait_timeout``), reads go on. Needs only the LOCK TABLES
               and SELECT privileges, so it works on Aurora without SUPER. The lock ends with
               the session: after a successful cutover aurora is made read-only if the user
               may; otherwise writes flow again and the operator must stop the application.
``none``       nothing: the application is already stopped.

Acquiring a freeze waits at most ``timeout`` seconds for running transactions
(``lock_wait_timeout``), so the cutover cannot hang behind a long transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Protocol

import pymysql

from sync.apply.sql import quote
from sync.db import error_code
from sync.errors import CutoverError

FreezeMethod = Literal["read-only", "lock", "none"]
METHODS: Final = ("read-only", "lock", "none")
ACCESS_DENIED: Final = frozenset({1227, 1044, 1045, 1142})
Connect = Callable[[], "pymysql.Connection[Any]"]


class Freeze(Protocol):
    method: str

    def freeze(self) -> None: ...

    def unfreeze(self) -> None:
        """Let writes through again (after a failure)."""

    def keep(self) -> str:
        """After success: leave aurora refusing writes where possible; say what holds."""


def _execute(conn: pymysql.Connection[Any], sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


class NoFreeze:
    method = "none"

    def freeze(self) -> None:
        pass

    def unfreeze(self) -> None:
        pass

    def keep(self) -> str:
        return "aurora was not frozen (--freeze none): keep the application stopped"


class ReadOnlyFreeze:
    method = "read-only"

    def __init__(self, connect: Connect, timeout: float) -> None:
        self._connect = connect
        self._timeout = timeout
        self._conn: pymysql.Connection[Any] | None = None
        self._was_read_only = False

    def freeze(self) -> None:
        self._conn = self._connect()
        with self._conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.read_only")
            row = cur.fetchone()
            self._was_read_only = bool(row and int(row[0]))
            cur.execute(f"SET SESSION lock_wait_timeout = {max(int(self._timeout), 1)}")
        try:
            _execute(self._conn, "SET GLOBAL read_only = ON")
        except pymysql.MySQLError as exc:
            raise _refused("SET GLOBAL read_only = ON", exc) from None

    def unfreeze(self) -> None:
        if self._conn is not None and not self._was_read_only:
            _execute(self._conn, "SET GLOBAL read_only = OFF")
        self._close()

    def keep(self) -> str:
        self._close()
        return ("aurora is read-only (read_only=ON); users with READ_ONLY ADMIN/SUPER can "
                "still write there")

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()


class LockFreeze:
    method = "lock"

    def __init__(self, connect: Connect, schema: str, tables: Sequence[str],
                 timeout: float) -> None:
        self._connect = connect
        self._schema = schema
        self._tables = tuple(tables)
        self._timeout = timeout
        self._conn: pymysql.Connection[Any] | None = None

    def freeze(self) -> None:
        self._conn = self._connect()
        locks = ", ".join(f"{quote(self._schema)}.{quote(t)} READ" for t in self._tables)
        _execute(self._conn, f"SET SESSION lock_wait_timeout = {max(int(self._timeout), 1)}")
        try:
            _execute(self._conn, f"LOCK TABLES {locks}")
        except pymysql.MySQLError as exc:
            raise _refused("LOCK TABLES ... READ", exc) from None

    def unfreeze(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                _execute(self._conn, "UNLOCK TABLES")
        self._close()

    def keep(self) -> str:
        # Writers queued behind the table locks hold the global intention lock that
        # read_only waits for: try briefly from a second session, then release.
        note = ("the table locks are released: aurora ACCEPTS WRITES again; stop the "
                "application (or set read_only in its parameter group) now")
        with contextlib.suppress(pymysql.MySQLError, OSError), \
                contextlib.closing(self._connect()) as other:
            _execute(other, "SET SESSION lock_wait_timeout = 2")
            _execute(other, "SET GLOBAL read_only = ON")
            note = ("aurora is read-only (read_only=ON); users with READ_ONLY ADMIN/SUPER can "
                    "still write there")
        self.unfreeze()
        return note

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()


def _refused(statement: str, exc: pymysql.MySQLError) -> CutoverError:
    code = error_code(exc)
    if code in ACCESS_DENIED:
        return CutoverError(
            f"aurora refused {statement} (error {code}): the source user lacks the privilege",
            fix="grant it (read-only needs SUPER or READ_ONLY ADMIN; lock needs LOCK TABLES "
            "and SELECT), or use another --freeze method",
        )
    return CutoverError(
        f"{statement} failed on aurora (error {code}): {exc.args[-1]}",
        fix="a long transaction may hold the tables: find it in SHOW PROCESSLIST, let it "
        "finish, then run the cutover again",
    )


def make_freeze(method: str, connect: Connect, *, schema: str, tables: Sequence[str],
                timeout: float) -> Freeze:
    if method == "read-only":
        return ReadOnlyFreeze(connect, timeout)
    if method == "lock":
        return LockFreeze(connect, schema, tables, timeout)
    return NoFreeze()


__all__ = ["METHODS", "Freeze", "FreezeMethod", "LockFreeze", "NoFreeze", "ReadOnlyFreeze",
           "make_freeze"]
