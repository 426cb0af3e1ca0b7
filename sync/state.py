"""aurora-sync's own state in the target's state database (``schemas/state.sql``).

A thin typed layer: frozen rows, pure statement builders, and :class:`StateStore` to run
them on an autocommit connection. Rows that must commit with the data they describe (the
checkpoint, bootstrap progress, dead letters) are :class:`StateWrite`s the target writer
executes inside its own transaction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import pymysql

from sync.apply.sql import literal, quote
from sync.model import Checkpoint, Position

PIPELINE_STATES: Final = (
    "bootstrapping", "catching_up", "streaming", "halted", "stopped", "cut_over",
)
NOW: Final = "UTC_TIMESTAMP(6)"


class StateWrite(Protocol):
    """A state row written inside the target writer's transaction."""

    def statement(self, state_db: str) -> str: ...


def _upsert(state_db: str, table: str, row: Mapping[str, Any], keys: Sequence[str]) -> str:
    cols = [*row, "updated_at"]
    values = [literal(v) for v in row.values()] + [NOW]
    updates = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in cols if c not in keys)
    return (
        f"INSERT INTO {quote(state_db)}.{quote(table)} ({', '.join(map(quote, cols))}) "
        f"VALUES ({', '.join(values)}) ON DUPLICATE KEY UPDATE {updates}"
    )


def _insert(state_db: str, table: str, row: Mapping[str, Any], stamp: str) -> str:
    """An INSERT of ``row`` with the ``stamp`` column set to the server's UTC now."""
    cols = [*map(quote, row), quote(stamp)]
    values = [*(literal(v) for v in row.values()), NOW]
    return (
        f"INSERT INTO {quote(state_db)}.{quote(table)} ({', '.join(cols)}) "
        f"VALUES ({', '.join(values)})"
    )


@dataclass(frozen=True, slots=True)
class CheckpointWrite:
    pipeline: str
    checkpoint: Checkpoint

    def statement(self, state_db: str) -> str:
        pos = self.checkpoint.position
        row = {"pipeline": self.pipeline, "binlog_file": pos.file, "binlog_pos": pos.pos,
               "gtid": pos.gtid, "source_commit_ts": self.checkpoint.commit_ts}
        return _upsert(state_db, "checkpoint", row, ("pipeline",))


@dataclass(frozen=True, slots=True)
class TableProgress:
    """How far the copy of one source table has come in one bootstrap run."""

    run_id: int
    source_table: str
    last_key: tuple[Any, ...] | None
    rows_copied: int
    chunks: int
    done: bool = False
    rows_estimated: int | None = None

    def statement(self, state_db: str) -> str:
        row = {"run_id": self.run_id, "source_table": self.source_table,
               "last_key": None if self.last_key is None else _key_json(self.last_key),
               "rows_copied": self.rows_copied, "rows_estimated": self.rows_estimated,
               "chunks": self.chunks, "done": self.done}
        return _upsert(state_db, "bootstrap_progress", row, ("run_id", "source_table"))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A change an operator chose to skip; validation reports it."""

    pipeline: str
    table: str
    key: str
    position: Position | None
    reason: str

    def statement(self, state_db: str) -> str:
        row = {"pipeline": self.pipeline, "source_table": self.table[:128], "row_key": self.key,
               "binlog_file": self.position.file if self.position else "",
               "binlog_pos": self.position.pos if self.position else 0,
               "reason": self.reason}
        return _insert(state_db, "dead_letter", row, "created_at")


def _key_json(key: tuple[Any, ...]) -> str:
    return json.dumps([v if isinstance(v, int | str | None) else str(v) for v in key])


@dataclass(frozen=True, slots=True)
class PipelineState:
    pipeline: str
    state: str
    detail: str | None = None
    last_error: str | None = None
    last_error_fix: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BootstrapRun:
    id: int
    pipeline: str
    state: str
    method: str
    start: Position
    end: Position | None
    tables: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Throttle:
    pipeline: str
    max_rows_per_second: int | None
    max_threads_running: int | None
    paused: bool


@dataclass(frozen=True, slots=True)
class ValidationRun:
    id: int
    pipeline: str
    started_at: datetime
    finished_at: datetime | None
    position: Position | None
    clean: bool | None
    summary: Any


@dataclass(frozen=True, slots=True)
class CutoverRecord:
    id: int
    pipeline: str
    state: str
    freeze_method: str
    final: Position | None
    reason: str | None
    started_at: datetime
    finished_at: datetime | None


def _position(file: Any, pos: Any, gtid: Any = None) -> Position | None:
    return None if file is None else Position(str(file), int(pos), gtid)


class StateStore:
    """Reads and writes the state database for one pipeline, on autocommit connections."""

    def __init__(
        self, connect: Callable[[], pymysql.Connection[Any]], state_db: str, pipeline: str
    ) -> None:
        self._connect = connect
        self._conn: pymysql.Connection[Any] | None = None
        self.state_db = state_db
        self.pipeline = pipeline

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # A connection the server dropped cannot say goodbye; forget it all the same.
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()

    def _execute(self, sql: str) -> tuple[list[tuple[Any, ...]], int, int]:
        """(rows, last insert id, affected rows) of ``sql``, connecting on first use."""
        if self._conn is None:
            self._conn = self._connect()
            self._conn.autocommit(True)
        with self._conn.cursor() as cur:
            affected = cur.execute(sql)
            return list(cur.fetchall()), int(cur.lastrowid or 0), int(affected)

    def _run(self, sql: str) -> tuple[list[tuple[Any, ...]], int]:
        rows, last_id, _ = self._execute(sql)
        return rows, last_id

    def _affected(self, sql: str) -> int:
        return self._execute(sql)[2]

    def _t(self, table: str) -> str:
        return f"{quote(self.state_db)}.{quote(table)}"

    def _select(self, table: str, columns: str, where: str) -> list[tuple[Any, ...]]:
        return self._run(f"SELECT {columns} FROM {self._t(table)} WHERE {where}")[0]

    def _mine(self) -> str:
        return f"pipeline = {literal(self.pipeline)}"

    # checkpoint
    def read_checkpoint(self) -> Checkpoint | None:
        rows = self._select("checkpoint", "binlog_file, binlog_pos, gtid, source_commit_ts",
                            self._mine())
        if not rows:
            return None
        file, pos, gtid, ts = rows[0]
        return Checkpoint(Position(str(file), int(pos), gtid), ts)

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._run(CheckpointWrite(self.pipeline, checkpoint).statement(self.state_db))

    # pipeline state
    def read_state(self) -> PipelineState | None:
        rows = self._select("pipeline_state",
                            "state, detail, last_error, last_error_fix, updated_at", self._mine())
        return PipelineState(self.pipeline, *rows[0]) if rows else None

    def write_state(self, state: str, detail: str | None = None, *,
                    error: str | None = None, fix: str | None = None) -> None:
        if state not in PIPELINE_STATES:
            raise ValueError(f"unknown pipeline state {state!r}; one of {PIPELINE_STATES}")
        row = {"pipeline": self.pipeline, "state": state, "detail": detail,
               "last_error": error, "last_error_fix": fix}
        self._run(_upsert(self.state_db, "pipeline_state", row, ("pipeline",)))

    def promote_state(self, old: str, new: str, detail: str | None = None) -> bool:
        """Move the state from ``old`` to ``new`` in one statement; False when it was not
        ``old`` (a halt or a stop recorded meanwhile by another thread stays)."""
        if new not in PIPELINE_STATES:
            raise ValueError(f"unknown pipeline state {new!r}; one of {PIPELINE_STATES}")
        return self._affected(
            f"UPDATE {self._t('pipeline_state')} SET state = {literal(new)}, "
            f"detail = {literal(detail)}, last_error = NULL, last_error_fix = NULL, "
            f"updated_at = {NOW} WHERE {self._mine()} AND state = {literal(old)}") > 0

    # bootstrap
    def start_bootstrap(self, method: str, start: Position, tables: Sequence[str]) -> int:
        row = {"pipeline": self.pipeline, "state": "running", "method": method,
               "start_file": start.file, "start_pos": start.pos, "start_gtid": start.gtid,
               "tables": json.dumps(list(tables))}
        return self._run(_insert(self.state_db, "bootstrap_run", row, "started_at"))[1]

    def finish_bootstrap(self, run_id: int, state: str, end: Position | None) -> None:
        sets = {"state": state, "end_file": end and end.file, "end_pos": end and end.pos,
                "end_gtid": end and end.gtid}
        assign = ", ".join(f"{quote(c)} = {literal(v)}" for c, v in sets.items())
        self._run(f"UPDATE {self._t('bootstrap_run')} SET {assign}, finished_at = {NOW} "
                  f"WHERE id = {int(run_id)}")

    def latest_bootstrap(self) -> BootstrapRun | None:
        rows = self._select(
            "bootstrap_run",
            "id, state, method, start_file, start_pos, start_gtid, end_file, end_pos, "
            "end_gtid, tables, started_at, finished_at",
            f"{self._mine()} ORDER BY id DESC LIMIT 1",
        )
        if not rows:
            return None
        (run_id, state, method, sf, sp, sg, ef, ep, eg, tables, started, finished) = rows[0]
        start = Position(str(sf), int(sp), sg)
        return BootstrapRun(int(run_id), self.pipeline, state, method, start,
                            _position(ef, ep, eg), tuple(json.loads(tables or "[]")),
                            started, finished)

    def write_progress(self, progress: TableProgress) -> None:
        self._run(progress.statement(self.state_db))

    def read_progress(self, run_id: int) -> list[TableProgress]:
        rows = self._select(
            "bootstrap_progress",
            "source_table, last_key, rows_copied, chunks, done, rows_estimated",
            f"run_id = {int(run_id)} ORDER BY source_table",
        )
        return [
            TableProgress(int(run_id), t, None if k is None else tuple(json.loads(k)),
                          int(n), int(c), bool(d), None if e is None else int(e))
            for t, k, n, c, d, e in rows
        ]

    # throttle
    def read_throttle(self) -> Throttle | None:
        rows = self._select("throttle", "max_rows_per_second, max_threads_running, paused",
                            self._mine())
        return Throttle(self.pipeline, rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    def write_throttle(self, throttle: Throttle) -> None:
        row = {"pipeline": throttle.pipeline,
               "max_rows_per_second": throttle.max_rows_per_second,
               "max_threads_running": throttle.max_threads_running, "paused": throttle.paused}
        self._run(_upsert(self.state_db, "throttle", row, ("pipeline",)))

    # dead letters
    def dead_letters(self) -> list[DeadLetter]:
        rows = self._select("dead_letter", "source_table, row_key, binlog_file, binlog_pos, "
                            "reason", f"{self._mine()} ORDER BY id")
        return [DeadLetter(self.pipeline, t, k, _position(f, p), r) for t, k, f, p, r in rows]

    # validation
    def start_validation(self, position: Position | None) -> int:
        row = {"pipeline": self.pipeline, "binlog_file": position and position.file,
               "binlog_pos": position and position.pos}
        return self._run(_insert(self.state_db, "validation_run", row, "started_at"))[1]

    def finish_validation(self, run_id: int, clean: bool, summary: Any) -> None:
        self._run(f"UPDATE {self._t('validation_run')} SET clean = {literal(clean)}, "
                  f"summary = {literal(json.dumps(summary))}, finished_at = {NOW} "
                  f"WHERE id = {int(run_id)}")

    def latest_validation(self) -> ValidationRun | None:
        rows = self._select("validation_run", "id, started_at, finished_at, binlog_file, "
                            "binlog_pos, clean, summary", f"{self._mine()} ORDER BY id DESC "
                            "LIMIT 1")
        if not rows:
            return None
        vid, started, finished, file, pos, clean, summary = rows[0]
        return ValidationRun(int(vid), self.pipeline, started, finished, _position(file, pos),
                             None if clean is None else bool(clean),
                             None if summary is None else json.loads(summary))

    # cutover
    def start_cutover(self, freeze_method: str) -> int:
        row = {"pipeline": self.pipeline, "state": "running", "freeze_method": freeze_method}
        return self._run(_insert(self.state_db, "cutover", row, "started_at"))[1]

    def finish_cutover(self, cutover_id: int, state: str, final: Position | None,
                       reason: str | None = None, summary: Any = None) -> None:
        sets = {"state": state, "final_file": final and final.file,
                "final_pos": final and final.pos, "final_gtid": final and final.gtid,
                "reason": reason, "summary": None if summary is None else json.dumps(summary)}
        assign = ", ".join(f"{quote(c)} = {literal(v)}" for c, v in sets.items())
        self._run(f"UPDATE {self._t('cutover')} SET {assign}, finished_at = {NOW} "
                  f"WHERE id = {int(cutover_id)}")

    def latest_cutover(self) -> CutoverRecord | None:
        rows = self._select("cutover", "id, state, freeze_method, final_file, final_pos, "
                            "final_gtid, reason, started_at, finished_at",
                            f"{self._mine()} ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        cid, state, method, ff, fp, fg, reason, started, finished = rows[0]
        return CutoverRecord(int(cid), self.pipeline, state, method, _position(ff, fp, fg),
                             reason, started, finished)


__all__ = [
    "PIPELINE_STATES",
    "BootstrapRun",
    "CheckpointWrite",
    "CutoverRecord",
    "DeadLetter",
    "PipelineState",
    "StateStore",
    "StateWrite",
    "TableProgress",
    "Throttle",
    "ValidationRun",
]
