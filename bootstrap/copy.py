"""One worker's copy of one task: keyset chunks read, mapped and written by the stream's
applier, each chunk with its progress row in one target transaction.

A chunk commits its rows and ``bootstrap_progress`` (last key, rows, chunks, done) together,
so a killed copy resumes at the next chunk: nothing is written twice as a different value,
nothing is skipped.

A chunk of a mapped table is first read as its target rows, rendered by aurora's server
(:mod:`bootstrap.literals`). What that cannot do (a row that misses a parent, a chunk the
target refuses, a table with a type it cannot spell, a routed table, a re-copy over existing
rows) goes through the stream's mapping engine instead: rows become INSERT
:class:`~sync.model.RowChange`s with ``commit_ts`` the snapshot's time.

That engine's lookup state is the copied parents' stored columns, loaded from the target the
first time a task needs them, once the parents' tables are done (:class:`ParentCache`, one
per worker process); each chunk gets a fresh
:class:`~sync.mapping.engine.Mapper` over it, so what the mapper stores of the table being
copied is dropped with the chunk and memory stays flat.

A row whose parent that state lacks was read after the parent's table: the parent was
inserted since, or its key changed since (``ON UPDATE CASCADE`` moved the row, and the binlog
shows only the parent's change, which moves no row the target lacks). The parent is read by
key in the chunk's read view, where the row's foreign key holds, mapped first (its own missing
parents before it) and written in the chunk's transaction; the worker's lookup state keeps
it. Only a parent the view no longer holds (a read without a snapshot, after a delete whose
cascade takes the row too) leaves the row to safe mode: skipped, or its SET NULL reference
nulled, as the replayed delete leaves it.

Pruning (re-copies, or a table whose target already holds rows of the range): target keys
of the chunk's key range that the source no longer has are deleted through the mapping's
DELETE, so their cascades and derived rows (the file split) go too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pymysql
import structlog

from bootstrap.chunks import CopyTask, chunk_sql, range_where
from bootstrap.literals import LiteralQuery, SourceTypes, source_types
from bootstrap.position import Method, Snapshot, close_snapshot, open_snapshot
from sync.apply.sql import quote
from sync.apply.writer import SqlTargetWriter
from sync.errors import ApplyError, RetryableApplyError
from sync.mapping.engine import Mapper, PrimaryKeys
from sync.mapping.lookups import LookupState
from sync.mapping.plans import MissingParentError
from sync.mapping.spec import MappingSpec
from sync.model import Op, Position, RowChange, TargetOp
from sync.state import TableProgress

if TYPE_CHECKING:  # the workers need not import the display (rich)
    from bootstrap.progress import Reporter

log = structlog.get_logger("aurora_sync.bootstrap.copy")

ParentRows = dict[str, dict[Any, tuple[Any, ...]]]
# A read view older than this is let go and a new one opened: a long-lived snapshot holds
# back purge on the live source.
SNAPSHOT_SECONDS = 60.0


class Admission(Protocol):
    """Waits until ``rows`` more may be read (:class:`~bootstrap.throttle.Throttle`)."""

    def admit(self, rows: int, stop: threading.Event) -> float: ...


class Positions(Protocol):
    """Told every snapshot position read (:class:`~bootstrap.position.EndTracker`)."""

    def seen(self, position: Position | None) -> None: ...


@dataclass(frozen=True)
class CopyContext:
    """What every task of one worker shares."""

    spec: MappingSpec
    run_id: int
    method: Method
    chunk_size: int
    primary_keys: PrimaryKeys
    database: Callable[[str], str]
    throttle: Admission
    reporter: Reporter
    ends: Positions
    stop: threading.Event
    # Chunks of mapped tables rendered as literals by aurora's server (bootstrap.literals).
    render_on_source: bool = True


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    name: str
    rows: int
    chunks: int
    done: bool
    started: float  # time.monotonic()
    ended: float


def load_parents(conn: pymysql.Connection[Any], spec: MappingSpec, tables: Sequence[str],
                 database: Callable[[str], str]) -> ParentRows:
    """The stored lookup columns of ``tables`` as the target holds them (their copy is done)."""
    out: ParentRows = {}
    for source in spec.lookup_sources():
        if source.table not in tables:
            continue
        columns = ", ".join(quote(c) for c in (source.key_column, *source.columns))
        table = f"{quote(database(source.target.database))}.{quote(source.target.table)}"
        rows: dict[Any, tuple[Any, ...]] = {}
        # Siblings share their parent's values (a semester's subjects, one semester_id): one
        # tuple per distinct value keeps every worker's copy of a large parent small.
        shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f"SELECT {columns} FROM {table}")
            for row in cur.fetchall_unbuffered():
                values = tuple(row[1:])
                rows[row[0]] = shared.setdefault(values, values)
        out[source.table] = rows
    return out


class ParentCache:
    """The parents' lookup rows one worker has loaded, each table once, with the parents
    its chunks have read from the source since."""

    def __init__(self) -> None:
        self.rows: ParentRows = {}

    def for_task(self, task: CopyTask, conn: pymysql.Connection[Any],
                 ctx: CopyContext) -> ParentRows:
        missing = parent_rows_needed(task, self.rows)
        if missing:
            self.rows.update(load_parents(conn, ctx.spec, missing, ctx.database))
            conn.commit()
        return {t: self.rows[t] for t in task.info.parents if t in self.rows}


class TaskCopier:
    """Copies tasks on one source connection and one target writer (one worker)."""

    def __init__(self, ctx: CopyContext, source: pymysql.Connection[Any],
                 target: pymysql.Connection[Any], writer: SqlTargetWriter) -> None:
        self.ctx = ctx
        self.source = source
        self.target = target
        self.writer = writer
        self._snapshot: Snapshot | None = None
        self._opened = 0.0
        self._types: SourceTypes | None = None
        self._queries: dict[str, LiteralQuery | None] = {}

    def close(self) -> None:
        if self._snapshot is not None:
            close_snapshot(self.source)
            self._snapshot = None

    def _view(self) -> Snapshot:
        """The read view for the next chunk, renewed when it grows old."""
        now = time.monotonic()
        if self._snapshot is None or now - self._opened > SNAPSHOT_SECONDS:
            self.close()
            self._snapshot = open_snapshot(self.source, self.ctx.method)
            self._opened = now
            self.ctx.ends.seen(self._snapshot.position)
        return self._snapshot

    def copy(self, task: CopyTask, progress: TableProgress,
             parents: Callable[[], ParentRows]) -> TaskOutcome:
        """Copy ``task`` from where ``progress`` says, until done or asked to stop.

        ``parents`` gives the lookup rows of the table's parents, loaded from the target the
        first time the Python mapping needs them (rendered chunks do not)."""
        ctx, info = self.ctx, task.info
        began = time.monotonic()
        prune = self._has_target_rows(task, progress.last_key)
        # Over target rows the copy prunes and updates: only the Python mapping does that.
        rendering = None if prune else self._rendering(task)
        state = progress
        try:
            while not state.done and not ctx.stop.is_set():
                ctx.throttle.admit(ctx.chunk_size, ctx.stop)
                if ctx.stop.is_set():
                    break
                started = time.monotonic()
                view = self._view()
                done = None
                if rendering is not None:
                    done = self._rendered_chunk(rendering, task, state, view.taken_at)
                if done is None:
                    done = self._mapped_chunk(task, state, view.taken_at, parents(), prune)
                state, rows = done
                ctx.reporter.chunk(task.name, info.label, rows, state.last_key,
                                   time.monotonic() - started)
        finally:
            self.close()
        return TaskOutcome(task.name, state.rows_copied - progress.rows_copied,
                           state.chunks - progress.chunks, state.done, began, time.monotonic())

    def _next(self, state: TableProgress, rows: int, last: tuple[Any, ...] | None
              ) -> TableProgress:
        return TableProgress(self.ctx.run_id, state.source_table, last, state.rows_copied + rows,
                             state.chunks + 1, rows < self.ctx.chunk_size, state.rows_estimated)

    def _mapped_chunk(self, task: CopyTask, state: TableProgress, ts: datetime,
                      parents: ParentRows, prune: bool) -> tuple[TableProgress, int]:
        """The next chunk read, mapped in Python and written with its progress row."""
        info = task.info
        rows = self._read(task, state.last_key)
        last = tuple(rows[-1][i] for i in self._key_index(info.columns, info.key)) \
            if rows else state.last_key
        after = self._next(state, len(rows), last)
        ops = self._map(task, rows, ts, parents, prune)
        if prune:
            ops = self._prune(task, rows, after=state.last_key,
                              upto=None if after.done else last, ts=ts, parents=parents) + ops
        # Safe mode: rows copied at different moments of a live source may briefly hold
        # each other's unique values; the stream's replay settles them.
        self.writer.apply(ops, None, state=[after], safe_mode=True)
        return after, len(rows)

    def _rendered_chunk(self, query: LiteralQuery, task: CopyTask, state: TableProgress,
                        ts: datetime) -> tuple[TableProgress, int] | None:
        """The next chunk as aurora's server renders it, written with its progress row; None
        when it must be mapped in Python (see :mod:`bootstrap.literals`)."""
        chunk = query.read(self.source, task, state.last_key, limit=self.ctx.chunk_size,
                           ts=ts, limits=self.writer.limits)
        if not chunk.clean:
            log.debug("bootstrap.chunk_mapped_in_python", task=task.name,
                      reason="a row misses a parent or is too large to render")
            return None
        after = self._next(state, chunk.rows, chunk.last_key or state.last_key)
        try:
            self.writer.apply_statements(chunk.statements, state=[after])
        except RetryableApplyError:
            raise
        except ApplyError as refused:
            # Most often a unique value another row still holds (a live source): safe mode
            # settles it; anything else the Python path names row by row.
            log.info("bootstrap.chunk_mapped_in_python", task=task.name,
                     reason=refused.reason)
            return None
        log.debug("bootstrap.chunk_rendered", task=task.name, rows=chunk.rows)
        return after, chunk.rows

    def _rendering(self, task: CopyTask) -> LiteralQuery | None:
        """How aurora's server renders ``task``'s table, when it can (one per table)."""
        spec, info = self.ctx.spec, task.info
        if not self.ctx.render_on_source or info.schema != spec.source_schema \
                or info.table not in spec.tables:
            return None  # routes copy their tables as they are, through the Python path
        if info.table not in self._queries:
            if self._types is None:
                self._types = source_types(self.source, spec.source_schema)
                self.source.commit()
            self._queries[info.table] = LiteralQuery.build(
                spec, spec.tables[info.table], self._types, self.ctx.database)
            if self._queries[info.table] is None:
                log.info("bootstrap.table_mapped_in_python", table=info.table,
                         reason="a column type aurora's server does not render")
        return self._queries[info.table]

    @staticmethod
    def _key_index(columns: Sequence[str], key: Sequence[str]) -> tuple[int, ...]:
        return tuple(columns.index(k) for k in key)

    def _read(self, task: CopyTask, after: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        sql, args = chunk_sql(task, after, self.ctx.chunk_size)
        with self.source.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def _mapper(self, parents: ParentRows) -> Mapper:
        state = LookupState(self.ctx.spec)
        for table, rows in parents.items():
            # Shared with the worker's cache (the walks bind to these dicts): a parent read
            # from the source for one chunk is known to the next.
            state.rows[table] = rows
        return Mapper(self.ctx.spec, state, self.ctx.primary_keys)

    def _map(self, task: CopyTask, rows: Sequence[tuple[Any, ...]], ts: datetime,
             parents: ParentRows, over: bool) -> list[TargetOp]:
        """INSERTs; over existing target rows (``over``) UPDATEs of the row onto itself, so
        derived rows the source no longer implies (a file whose URL is gone) go too."""
        info = task.info
        mapper = self._mapper(parents)
        columns = info.columns
        ops: list[TargetOp] = []
        for values in rows:
            image = dict(zip(columns, values, strict=True))
            change = (RowChange(info.schema, info.table, Op.UPDATE, image, image, ts) if over
                      else RowChange(info.schema, info.table, Op.INSERT, None, image, ts))
            try:
                ops.extend(mapper.map_or_missing(change))
            except MissingParentError as missing:
                ops.extend(self._with_parents(mapper, change, missing))
        return ops

    def _with_parents(self, mapper: Mapper, change: RowChange,
                      missing: MissingParentError) -> list[TargetOp]:
        """``change``'s operations after those of the parents it lacks, read from the source
        (see the module docstring)."""
        ops: list[TargetOp] = []
        tried: set[tuple[str, Any]] = set()
        while (missing.table, missing.key) not in tried:
            tried.add((missing.table, missing.key))
            image = self._source_row(missing.table, missing.key)
            if image is None:
                break
            parent = RowChange(self.ctx.spec.source_schema, missing.table, Op.INSERT, None,
                               image, change.commit_ts)
            try:
                ops.extend(mapper.map_or_missing(parent))
            except MissingParentError as above:
                ops.extend(self._with_parents(mapper, parent, above))
            try:
                ops.extend(mapper.map_or_missing(change))
            except MissingParentError as again:
                missing = again  # another parent, or this one gone with its own parent
            else:
                return ops
        ops.extend(mapper.map_change(change, safe_mode=True))
        return ops

    def _source_row(self, table: str, key: Any) -> dict[str, Any] | None:
        """``table``'s row ``key`` as the chunk's read view holds it; None when it has none."""
        spec = self.ctx.spec
        column = quote(spec.tables[table].key[0])
        with self.source.cursor() as cur:
            cur.execute(f"SELECT * FROM {quote(spec.source_schema)}.{quote(table)} "
                        f"WHERE {column} = %s", [key])
            row = cur.fetchone()
            if row is None:
                return None
            names = [str(d[0]) for d in cur.description or ()]
        return dict(zip(names, row, strict=True))

    def _target_table(self, task: CopyTask) -> str:
        ref = task.info.target
        return f"{quote(self.ctx.database(ref.database))}.{quote(ref.table)}"

    def _has_target_rows(self, task: CopyTask, after: Sequence[Any] | None) -> bool:
        where, args = range_where(task, task.info.target_key, after, None)
        with self.target.cursor() as cur:
            cur.execute(f"SELECT 1 FROM {self._target_table(task)} WHERE {where} LIMIT 1", args)
            found = cur.fetchone() is not None
        self.target.commit()
        return found

    def _prune(self, task: CopyTask, rows: Sequence[tuple[Any, ...]], *,
               after: Sequence[Any] | None, upto: Sequence[Any] | None, ts: datetime,
               parents: ParentRows) -> list[TargetOp]:
        """DELETEs of the target keys in ``(after, upto]`` the source chunk does not hold."""
        info = task.info
        index = self._key_index(info.columns, info.key)
        present = {tuple(r[i] for i in index) for r in rows}
        where, args = range_where(task, info.target_key, after, upto)
        keys = ", ".join(quote(c) for c in info.target_key)
        with self.target.cursor() as cur:
            cur.execute(f"SELECT {keys} FROM {self._target_table(task)} WHERE {where}", args)
            gone = [tuple(r) for r in cur.fetchall() if tuple(r) not in present]
        self.target.commit()
        mapper = self._mapper(parents)
        ops: list[TargetOp] = []
        for key in gone:
            image = dict(zip(info.key, key, strict=True))
            change = RowChange(info.schema, info.table, Op.DELETE, image, None, ts)
            ops.extend(mapper.map_change(change, safe_mode=True))
        return ops


def parent_rows_needed(task: CopyTask, loaded: Mapping[str, Any]) -> list[str]:
    return sorted(t for t in task.info.parents if t not in loaded)


__all__ = ["Admission", "CopyContext", "ParentCache", "ParentRows", "Positions", "TaskCopier",
           "TaskOutcome", "load_parents", "parent_rows_needed"]
