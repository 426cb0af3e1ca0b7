"""The target writer: a batch of operations and its checkpoint in one target transaction.

:class:`TargetWriter` is the contract; :class:`SqlTargetWriter` keeps it on MySQL, MariaDB
or TiDB through one PyMySQL connection, and ``sync.testing.memwriter.MemoryWriter`` keeps it
in memory. Either the whole batch commits with its checkpoint, or nothing does:

- a retryable error (:mod:`sync.apply.retry`) rolls back and re-applies the same batch from
  scratch after a backoff, reconnecting if the connection was lost; writes are idempotent;
- any other error rolls back and raises :class:`~sync.errors.ApplyError` naming the table,
  the exact key (a refused multi-row statement is re-run row by row, then rolled back), the
  position, the server's reason and a fix; with ``dead_letter`` on, that row is recorded in
  the state database and skipped instead.

With ``safe_mode`` (replaying a bootstrap's window over targets that may be ahead of it),
each upsert statement on a table with unique secondary keys first deletes, in the same
transaction, the rows it would clash with on them (:mod:`sync.apply.uniques`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import pymysql
import structlog

from sync.apply import retry
from sync.apply.batcher import StatementLimits, plan
from sync.apply.sql import (
    UPSERT,
    Statement,
    keyed_where_sql,
    reached_through_parents,
    single_statement,
)
from sync.apply.uniques import UniqueValues
from sync.db import connect_error, connection_kwargs, error_code
from sync.errors import ApplyError, RetryableApplyError
from sync.model import Checkpoint, Delete, Position, TargetOp, Upsert
from sync.settings import Settings
from sync.state import CheckpointWrite, DeadLetter, StateStore, StateWrite

MAX_DEAD_LETTERS_PER_BATCH: Final = 100

log = structlog.get_logger("aurora_sync.apply.writer")

_FIXES: Final[Mapping[int, str]] = {
    1062: "a unique secondary key of the target holds this value for another row: find the "
    "row holding it, and check that the mapping moves unique values in source order",
    1406: "the value is longer than the target column: widen the column in the service "
    "schema, or fix the mapping's conversion",
    1366: "the value does not fit the target column's type: fix the service schema or the "
    "mapping's conversion for this column",
    1264: "the value is out of range for the target column: widen the column type",
    1146: "the target table does not exist: run `aurora-sync init` or create it from schemas/",
    1054: "the target table lacks a column the mapping writes: align schemas/ and the mapping",
    1048: "the mapping writes NULL into a NOT NULL column: give it a default or a value",
    1153: "the statement for this row is larger than the target's max_allowed_packet: raise "
    "it on the target (SET GLOBAL max_allowed_packet = 268435456; TiDB: up to 1 GiB), then "
    "restart",
    8025: "the row is larger than TiDB's txn-entry-size-limit (6 MiB by default): raise "
    "performance.txn-entry-size-limit in the TiDB configuration (up to 120 MiB), or shrink the "
    "value on aurora, then restart",
    1114: "the target table is full (its tablespace or the disk reached a limit): give the "
    "target space (or lift the table's size limit), then restart",
    1021: "the target's disk is full: free space on the target, then restart",
}
# When a retryable error outlasted AURORA_SYNC_RETRY_MAX_SECONDS.
_RETRY_FIXES: Final[Mapping[int, str]] = dict.fromkeys(
    retry.READ_ONLY_CODES,
    "the target is read-only (read_only / super_read_only, or TiDB's tidb_super_read_only): "
    "make it writable again, or point TIDB_HOST at the writable primary, then restart; the "
    "checkpoint is before this batch",
)
_DEFAULT_RETRY_FIX: Final = (
    "check the target's health (TiDB: PD/TiKV status, hot regions, lock contention) or raise "
    "AURORA_SYNC_RETRY_MAX_SECONDS; the checkpoint is before this batch"
)
_DEFAULT_FIX: Final = (
    "fix the target or the mapping, then restart: the checkpoint is still before this batch "
    "(or set AURORA_SYNC_DEAD_LETTER=true to skip refused rows into the dead_letter table)"
)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one :meth:`TargetWriter.apply` wrote, for metrics."""

    rows: Mapping[tuple[str, str], int]
    """Rows written per (``db.table``, kind): upsert, delete, update_where, delete_where."""
    statements: int
    seconds: float
    retries: int = 0
    dead_letters: tuple[DeadLetter, ...] = field(default=())


class TargetWriter(Protocol):
    def apply(
        self,
        ops: Sequence[TargetOp],
        checkpoint: Checkpoint | None,
        *,
        position: Position | None = None,
        state: Sequence[StateWrite] = (),
        safe_mode: bool = False,
        statements: Sequence[Statement] | None = None,
    ) -> ApplyResult:
        """Write ``ops``, then ``state`` rows and ``checkpoint``, in one transaction.

        ``position`` names the source transaction in errors when ``checkpoint`` is None
        (a part of a split source transaction). ``safe_mode`` lets an upsert take a unique
        secondary value from the row holding it (deleted first) instead of refusing.
        ``statements``: ``ops`` already planned with this writer's names and limits
        (:class:`~sync.apply.batcher.Planner`); a writer that runs no SQL ignores them."""
        ...

    def read_checkpoint(self) -> Checkpoint | None: ...

    def close(self) -> None: ...


class _Failed(Exception):  # noqa: N818 - internal: which statement the server refused
    def __init__(self, index: int | None, error: pymysql.MySQLError) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _reason(exc: BaseException) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


class SqlTargetWriter:
    """:class:`TargetWriter` over one PyMySQL connection (autocommit off, UTC)."""

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Callable[[], pymysql.Connection[Any]] | None = None,
        policy: retry.RetryPolicy | None = None,
        limits: StatementLimits | None = None,
    ) -> None:
        self._settings = settings
        self._connect = connect or self._default_connect
        self._policy = policy or retry.RetryPolicy(max_seconds=settings.retry_max_seconds)
        self._limits = limits or StatementLimits(max_rows=settings.batch_max_rows)
        self._conn: pymysql.Connection[Any] | None = None
        self._uniques = UniqueValues()
        self.is_tidb = False

    def _default_connect(self) -> pymysql.Connection[Any]:
        # Without them a half-open connection blocks the apply loop in a read forever; with
        # them it fails with 2013, which is retried on a new connection.
        timeout = self._settings.target_timeout
        return pymysql.connect(**connection_kwargs(self._settings.target), autocommit=False,
                               read_timeout=timeout, write_timeout=timeout)

    # --- the contract -----------------------------------------------------------------

    def apply(
        self,
        ops: Sequence[TargetOp],
        checkpoint: Checkpoint | None,
        *,
        position: Position | None = None,
        state: Sequence[StateWrite] = (),
        safe_mode: bool = False,
        statements: Sequence[Statement] | None = None,
    ) -> ApplyResult:
        started = time.monotonic()
        where = position or (checkpoint.position if checkpoint else None)
        planned = list(statements) if statements is not None else plan(
            ops, self._settings.database, self._limits)
        writes = list(state)
        if checkpoint is not None:
            writes.append(CheckpointWrite(self._settings.pipeline, checkpoint))
        return self._apply(planned, writes, where, safe_mode, started)

    def apply_statements(
        self, statements: Sequence[Statement], *, state: Sequence[StateWrite] = ()
    ) -> ApplyResult:
        """Run ``statements`` as they are, then ``state``, in one transaction, retried as
        :meth:`apply` retries.

        For statements built elsewhere (the bootstrap's chunks rendered by aurora's server,
        :mod:`bootstrap.literals`): they carry no operations, so a refusal raises
        :class:`~sync.errors.ApplyError` naming the table, never a row, and is never
        dead-lettered; the caller falls back to :meth:`apply` to learn more."""
        return self._apply(list(statements), list(state), None, False, time.monotonic())

    @property
    def limits(self) -> StatementLimits:
        """The bounds of one statement (rows, bytes)."""
        return self._limits

    def _apply(
        self, statements: list[Statement], writes: list[StateWrite], where: Position | None,
        safe_mode: bool, started: float,
    ) -> ApplyResult:
        tries = 0

        def attempt() -> list[DeadLetter]:
            nonlocal tries
            tries += 1
            return self._attempt(statements, writes, where, safe_mode)

        dead = self._with_retry(attempt, where)
        return ApplyResult(
            rows=self._counts(statements),
            statements=len(statements),
            seconds=time.monotonic() - started,
            retries=tries - 1,
            dead_letters=tuple(dead),
        )

    def read_checkpoint(self) -> Checkpoint | None:
        def attempt() -> Checkpoint | None:
            conn = self._connection()
            try:
                store = StateStore(lambda: conn, self._settings.state_db, self._settings.pipeline)
                found = store.read_checkpoint()
                conn.commit()
            except pymysql.MySQLError as exc:
                self._on_error(exc)
                raise self._error(exc, None, None, None) from None
            return found

        found: Checkpoint | None = self._with_retry(attempt, None)
        return found

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except pymysql.MySQLError:
                log.debug("writer.close_failed")

    # --- one attempt ------------------------------------------------------------------

    def _with_retry(self, attempt: Callable[[], Any], where: Position | None) -> Any:
        context = {"position": str(where)} if where else {}
        try:
            return self._policy.run(attempt, context=context)
        except retry.RetryAttempt as exc:
            raise RetryableApplyError(
                f"the target kept refusing the batch with retryable error {exc.code} for "
                f"{self._policy.max_seconds:.0f}s: {exc.reason}",
                fix=_RETRY_FIXES.get(exc.code, _DEFAULT_RETRY_FIX),
                position=where,
            ) from None

    def _attempt(
        self, statements: list[Statement], writes: list[StateWrite], where: Position | None,
        safe_mode: bool,
    ) -> list[DeadLetter]:
        conn = self._connection()
        dead: list[DeadLetter] = []
        while True:
            try:
                self._execute(conn, statements, [*writes, *dead], safe_mode)
            except _Failed as failed:
                self._on_error(failed.error)
                if failed.index is None:
                    raise self._error(failed.error, None, None, where) from None
                op = self._find_refused(conn, statements, failed.index, safe_mode)
                skip = self._settings.dead_letter and len(dead) < MAX_DEAD_LETTERS_PER_BATCH
                if not skip or op is None:
                    raise self._error(failed.error, statements[failed.index], op, where) from None
                dead.append(
                    self._dead_letter(failed.error, statements[failed.index], op, where)
                )
                statements = self._without(statements, failed.index, op)
                continue
            return dead

    def _execute(
        self, conn: pymysql.Connection[Any], statements: Sequence[Statement],
        writes: Sequence[StateWrite], safe_mode: bool,
    ) -> None:
        state_db = self._settings.state_db
        index: int | None = None
        try:
            conn.begin()
            with conn.cursor() as cur:
                for index in range(len(statements)):  # the handler reads index
                    self._run(cur, statements[index], safe_mode)
                index = None
                for write in writes:
                    cur.execute(write.statement(state_db))
            conn.commit()
        except pymysql.MySQLError as exc:
            raise _Failed(index, exc) from exc

    def _run(self, cur: Any, statement: Statement, safe_mode: bool) -> None:
        if safe_mode and statement.kind == UPSERT:
            deleted = self._uniques.free(cur, statement, self._settings.database)
            if deleted:
                log.info("apply.safe_mode_freed_unique_values", table=str(statement.target),
                         deleted=dict(deleted))
        if len(statement.ops) == 1 and reached_through_parents(op := statement.ops[0]):
            sql = keyed_where_sql(op, self._settings.database, lambda q: _column(cur, q))
            if sql is not None:
                cur.execute(sql)
            return
        cur.execute(statement.sql)

    def _find_refused(
        self, conn: pymysql.Connection[Any], statements: Sequence[Statement], index: int,
        safe_mode: bool,
    ) -> TargetOp | None:
        """The operation of ``statements[index]`` the target refuses, found by re-running
        the batch up to it and then its operations one by one; always rolled back. None for
        a statement without operations (:meth:`apply_statements`): there is no row to find
        nor to skip."""
        refused = statements[index]
        if not refused.ops:
            return None
        if len(refused.ops) == 1:
            return refused.ops[0]
        try:
            conn.begin()
            with conn.cursor() as cur:
                for statement in statements[:index]:
                    self._run(cur, statement, safe_mode)
                for op in refused.ops:
                    try:
                        self._run(cur, single_statement(op, self._settings.database), safe_mode)
                    except pymysql.MySQLError as exc:
                        if retry.is_retryable(error_code(exc)):
                            raise
                        return op
        except pymysql.MySQLError as exc:
            self._on_error(exc)
            raise self._error(exc, refused, None, None) from None
        finally:
            self._rollback()
        return None

    def _without(self, statements: list[Statement], index: int, op: TargetOp) -> list[Statement]:
        rest = [single_statement(o, self._settings.database)
                for o in statements[index].ops if o is not op]
        return [*statements[:index], *rest, *statements[index + 1:]]

    # --- connection and errors ---------------------------------------------------------

    def _connection(self) -> pymysql.Connection[Any]:
        if self._conn is not None:
            return self._conn
        try:
            conn = self._connect()
            self._init_session(conn)
        except pymysql.MySQLError as exc:
            code = error_code(exc)
            if retry.is_retryable(code):
                raise retry.RetryAttempt(code or 0, _reason(exc)) from None
            raise connect_error(self._settings.target, exc) from None
        self._conn = conn
        return conn

    def _init_session(self, conn: pymysql.Connection[Any]) -> None:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute("SELECT VERSION(), @@SESSION.sql_mode")
            version, sql_mode = cur.fetchone() or ("", "")
            modes = _session_modes(str(sql_mode))
            if modes != str(sql_mode):
                cur.execute(f"SET SESSION sql_mode = '{modes}'")
            self.is_tidb = "TiDB" in str(version)
            if self.is_tidb:
                # AUTO_RANDOM ids must keep the source's values (PITFALLS 19).
                cur.execute("SET SESSION allow_auto_random_explicit_insert = 1")
        conn.commit()

    def _rollback(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.rollback()
        except pymysql.MySQLError:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except pymysql.MySQLError:
                log.debug("writer.close_failed")

    def _on_error(self, exc: pymysql.MySQLError) -> None:
        """Roll back; a retryable error ends the attempt (and the lost connection with it)."""
        code = error_code(exc)
        if retry.is_lost_connection(code) or isinstance(exc, pymysql.InterfaceError):
            self._drop_connection()
            raise retry.RetryAttempt(code or 2013, _reason(exc)) from None
        self._rollback()
        if retry.is_retryable(code):
            raise retry.RetryAttempt(code or 0, _reason(exc)) from None

    def _error(
        self, exc: BaseException, statement: Statement | None, op: TargetOp | None,
        where: Position | None,
    ) -> ApplyError:
        table = None
        if statement is not None:
            ref = statement.target
            table = f"{self._settings.database(ref.database)}.{ref.table}"
        reason, fix = _explain(exc, statement)
        return ApplyError(
            f"the target refused the batch with {reason}",
            fix=fix,
            table=table,
            key=_key_of(op) if op is not None else _keys_of(statement),
            position=where,
        )

    def _dead_letter(
        self, exc: BaseException, statement: Statement, op: TargetOp, where: Position | None
    ) -> DeadLetter:
        ref = op.target
        return DeadLetter(
            pipeline=self._settings.pipeline,
            table=f"{self._settings.database(ref.database)}.{ref.table}",
            key=str(_key_of(op)),
            position=where,
            reason=_explain(exc, statement)[0],
        )

    @staticmethod
    def _counts(statements: Sequence[Statement]) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for statement in statements:
            key = (str(statement.target), statement.kind)
            counts[key] = counts.get(key, 0) + len(statement.ops)
        return counts


def _explain(exc: BaseException, statement: Statement | None) -> tuple[str, str]:
    """The server's reason as an operator needs it, and the fix."""
    code = error_code(exc)
    if code == 1048 and _is_guarded_key(statement, _reason(exc)):
        return (f"error {code}: the row clashes on a unique secondary key with another row "
                "(an upsert would have overwritten that row)", _FIXES[1062])
    return f"error {code}: {_reason(exc)}", _FIXES.get(code or 0, _DEFAULT_FIX)


def _is_guarded_key(statement: Statement | None, reason: str) -> bool:
    if statement is None or statement.kind != UPSERT or not statement.ops:
        return False
    op = statement.ops[0]
    return isinstance(op, Upsert) and any(f"'{c}'" in reason for c in op.key_columns)


# Modes the writer turns off in its session: literals use backslash escapes (sync.apply.sql);
# zero and partial dates aurora holds are copied as they are, as a dump reload does (TiDB's
# default sql_mode refuses them; TRADITIONAL would bring NO_ZERO_DATE back).
_OFF_MODES: Final = frozenset({"NO_BACKSLASH_ESCAPES", "NO_ZERO_DATE", "NO_ZERO_IN_DATE",
                               "TRADITIONAL"})


def _session_modes(sql_mode: str) -> str:
    """The session's sql_mode with what the writer relies on: backslash escapes, zero dates
    accepted (``_OFF_MODES``), and strict mode, which the upsert key guard needs to refuse."""
    modes = [m for m in sql_mode.split(",") if m and m not in _OFF_MODES]
    if "STRICT_TRANS_TABLES" not in modes and "STRICT_ALL_TABLES" not in modes:
        modes.append("STRICT_TRANS_TABLES")
    return ",".join(modes)


def _key_of(op: TargetOp) -> dict[str, Any] | None:
    if isinstance(op, Upsert | Delete):
        return dict(zip(op.key_columns, op.key, strict=True))
    return None


def _keys_of(statement: Statement | None) -> tuple[Any, ...] | None:
    if statement is None:
        return None
    keys = [op.key for op in statement.ops if isinstance(op, Upsert | Delete)]
    return tuple(keys[:10]) if keys else None


def _column(cur: Any, sql: str) -> list[Any]:
    """The first column of ``sql``'s rows, read in the writer's transaction."""
    cur.execute(sql)
    return [row[0] for row in cur.fetchall()]


__all__ = ["ApplyResult", "SqlTargetWriter", "TargetWriter"]
