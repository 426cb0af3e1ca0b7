"""Assemble and run the stream from settings: the part of `aurora-sync run` after bootstrap.

Builds the mapping, rebuilds its lookup state from the target (the target holds exactly what
was applied), reads the committed checkpoint and the last bootstrap's window (replayed in safe
mode), opens the binlog at the checkpoint and runs :class:`~sync.pipeline.StreamPipeline`
until asked to stop. The pipeline state row says what it is doing, and why it halted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pymysql
import structlog

from sync.apply.batcher import BatchLimits, Planner
from sync.apply.writer import ApplyResult, SqlTargetWriter
from sync.checksums import ChecksumJob, ChecksumOptions
from sync.db import connect
from sync.errors import AuroraSyncError, ConfigError
from sync.mapping.catalog import read_primary_keys
from sync.mapping.engine import Mapper
from sync.mapping.lookups import LookupState
from sync.mapping.resolve import load_spec
from sync.mapping.spec import MappingSpec
from sync.model import Checkpoint, Position, Row, SourceTransaction, TargetOp
from sync.monitor.heartbeat import HeartbeatWriter, ensure_heartbeat_table
from sync.monitor.http import MonitorServer
from sync.monitor.metrics import Metrics
from sync.monitor.rolling import RollingValidation
from sync.monitor.scheduler import GapSampler, build_scheduler
from sync.monitor.status import DaemonStatus
from sync.pipeline import (
    EventSource,
    NullObserver,
    Observer,
    StreamOptions,
    StreamPipeline,
    StreamResult,
)
from sync.settings import Settings
from sync.source.events import Heartbeat
from sync.source.split import BinlogOpener
from sync.state import StateStore

log = structlog.get_logger("aurora_sync.daemon")

HEARTBEAT_TABLE = "heartbeat"


@dataclass
class TransactionMapper:
    """Maps whole transactions; heartbeat rows are held back from the targets and reported
    to ``on_heartbeat`` once the batch holding them is committed (:meth:`applied`), so the
    lag measured includes the batching and the target's commit. The pipeline maps the next
    batch while one is written, and reports the commit from its writer thread: a heartbeat is
    released by its transaction's position, under a lock."""

    mapper: Mapper
    heartbeat_schema: str | None = None
    on_heartbeat: Callable[[datetime, datetime], None] | None = None
    _pending: list[tuple[Position, datetime, datetime]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def map_transaction(self, txn: SourceTransaction, *, safe_mode: bool) -> list[TargetOp]:
        ops: list[TargetOp] = []
        for change in txn.changes:
            if change.schema == self.heartbeat_schema and change.table == HEARTBEAT_TABLE:
                self._heartbeat(change.image, txn)
                continue
            ops.extend(self.mapper.map_change(change, safe_mode=safe_mode))
        return ops

    def _heartbeat(self, row: Row, txn: SourceTransaction) -> None:
        written = row.get("ts")
        if self.on_heartbeat is not None and isinstance(written, datetime):
            with self._lock:
                self._pending.append((txn.end, written, txn.commit_ts))

    def applied(self, end: Position) -> None:
        """Everything mapped up to ``end`` is committed on the target."""
        if self.on_heartbeat is None:
            return
        with self._lock:
            if not self._pending or self._pending[0][0] > end:
                return
            done = [p for p in self._pending if p[0] <= end]
            self._pending = [p for p in self._pending if p[0] > end]
        for _, written, commit_ts in done:
            self.on_heartbeat(written, commit_ts)


@dataclass
class _AppliedHook:
    """The observer the pipeline sees: the run's observer, plus the heartbeat release."""

    inner: Observer
    mapper: TransactionMapper

    def resumed(self, checkpoint: Checkpoint) -> None:
        self.inner.resumed(checkpoint)

    def batch_applied(self, result: ApplyResult, transactions: int, end: Checkpoint) -> None:
        self.inner.batch_applied(result, transactions, end)
        self.mapper.applied(end.position)

    def heartbeat(self, event: Heartbeat) -> None:
        self.inner.heartbeat(event)

    def state(self, name: str, detail: str = "") -> None:
        self.inner.state(name, detail)

    def retried(self, kind: str, count: int = 1) -> None:
        self.inner.retried(kind, count)

    def error(self, kind: str) -> None:
        self.inner.error(kind)


def rebuild_lookups(settings: Settings, spec: MappingSpec) -> LookupState:
    """The lookup state as the target holds it now (the target is the truth after a crash)."""
    rows: dict[str, list[Row]] = {}
    with contextlib.closing(connect(settings.target, streaming=True,
                                    read_timeout=settings.target_timeout)) as conn:
        for source in spec.lookup_sources():
            db = settings.database(source.target.database)
            columns = ", ".join(f"`{c}`" for c in (source.key_column, *source.columns))
            with conn.cursor() as cur:
                cur.execute(f"SELECT {columns} FROM `{db}`.`{source.target.table}`")
                names = (source.key_column, *source.columns)
                rows[source.table] = [dict(zip(names, r, strict=True)) for r in cur]
    return LookupState.rebuild(spec, rows)


def route_schemas(spec: MappingSpec) -> set[str]:
    return {route.schema for route in spec.routes}


def build_mapper(settings: Settings, spec: MappingSpec) -> Mapper:
    primary_keys: dict[tuple[str, str], tuple[str, ...]] = {}
    schemas = route_schemas(spec)
    if schemas:
        with contextlib.closing(connect(settings.source,
                                        read_timeout=settings.read_timeout)) as conn:
            primary_keys = read_primary_keys(conn, sorted(schemas))
    return Mapper(spec, rebuild_lookups(settings, spec), primary_keys)


def mapped_tables(spec: MappingSpec) -> set[tuple[str, str]]:
    """Tables whose DDL halts the stream: every mapped aurora table."""
    return {(spec.source_schema, t) for t in spec.tables}


@dataclass
class StreamRun:
    """Everything :func:`stream` needs besides the settings; tests replace single pieces."""

    until: Position | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    accept_ddl_at: Position | None = None
    observer: Observer = field(default_factory=NullObserver)
    heartbeat_schema: str | None = None
    on_heartbeat: Callable[[datetime, datetime], None] | None = None
    open_source: Callable[[Position], EventSource] | None = None
    blocking: bool = True


def stream(settings: Settings, run: StreamRun | None = None) -> StreamResult:
    """Stream from the committed checkpoint until ``run.until`` or ``run.stop``."""
    run = run or StreamRun()
    spec = load_spec(settings)
    # Timed out like the writer's: a half-open state connection would hold the stream's
    # start, its halt record and its stop.
    store = StateStore(lambda: connect(settings.target, read_timeout=settings.target_timeout),
                       settings.state_db, settings.pipeline)
    writer = SqlTargetWriter(settings)
    try:
        start = writer.read_checkpoint()
        if start is None:
            raise ConfigError(
                "no checkpoint: the stream does not know where to start",
                fix="run `aurora-sync bootstrap` (or `aurora-sync run`, which bootstraps first)",
            )
        bootstrap = store.latest_bootstrap()
        if bootstrap is not None and bootstrap.state == "running":
            raise ConfigError(
                f"bootstrap run {bootstrap.id} has not finished: the targets are incomplete",
                fix="run `aurora-sync bootstrap` (it resumes) or `aurora-sync run`",
            )
        done = bootstrap is not None and bootstrap.state == "done"
        safe_until = bootstrap.end if bootstrap is not None and done else None
        mapper = TransactionMapper(build_mapper(settings, spec), run.heartbeat_schema,
                                   run.on_heartbeat)
        schemas = {spec.source_schema, *route_schemas(spec)}
        if run.heartbeat_schema:
            schemas.add(run.heartbeat_schema)
        open_source = run.open_source or BinlogOpener(
            settings, schemas=schemas, blocking=run.blocking, end=run.until,
            mode=settings.stream_reader, before=mapper.mapper.before_columns,
        )
        options = StreamOptions(
            limits=BatchLimits.from_settings(settings),
            mapped_tables=mapped_tables(spec),
            safe_until=safe_until if safe_until and start.position < safe_until else None,
            until=run.until,
            accept_ddl_at=run.accept_ddl_at,
            follow=run.blocking,
            # The writer's names and limits, so the statements made ahead are the writer's own.
            planner=Planner(settings.database, writer.limits),
        )
        pipeline = StreamPipeline(open_source=open_source, mapper=mapper, writer=writer,
                                  options=options, observer=_AppliedHook(run.observer, mapper))
        _record(store, run.observer, "catching_up", f"from {start.position}")
        log.info("streaming", start=str(start.position),
                 safe_until=str(options.safe_until) if options.safe_until else None)
        try:
            result = pipeline.run(start, stop=run.stop)
        except AuroraSyncError as exc:
            _halted(store, run.observer, exc)
            raise
        _record(store, run.observer, "stopped", f"at {result.checkpoint.position}"
                if result.checkpoint else "")
        return result
    finally:
        writer.close()
        store.close()


def refuse_after_cutover(settings: Settings, *, force: bool) -> None:
    """After a cutover the services own their databases: writing there needs --force."""
    store = StateStore(lambda: connect(settings.target), settings.state_db, settings.pipeline)
    try:
        state = store.read_state()
    finally:
        store.close()
    if state is not None and state.state == "cut_over" and not force:
        raise ConfigError(
            "the cutover handed the service databases to the services; aurora-sync will not "
            "write into them again",
            fix="to move aurora again after a rollback, run with --force (it bootstraps and "
            "streams over what the services wrote)",
        )


def _record(store: StateStore, observer: Observer, state: str, detail: str) -> None:
    observer.state(state, detail)
    try:
        current = store.read_state()
        if current is not None and current.state == "cut_over":
            return  # the cutover handed the databases over: its record stands
        store.write_state(state, detail)
    except (AuroraSyncError, pymysql.MySQLError) as exc:
        # A target restart leaves the state connection dead: reconnect on the next record.
        store.close()
        log.warning("state not recorded", state=state, error=type(exc).__name__)


def _caught_up(store: StateStore, observer: Observer) -> None:
    """Scheduler job: catching_up becomes streaming, unless the stream halted or stopped in
    the meantime (its record, written from the stream's thread, must stay)."""
    try:
        moved = store.promote_state("catching_up", "streaming", "caught up")
        current = None if moved else store.read_state()
    except (AuroraSyncError, pymysql.MySQLError) as exc:
        store.close()
        log.warning("state not recorded", state="streaming", error=type(exc).__name__)
        return
    # After a source reconnect only the live figures said catching_up; the row says streaming.
    if moved or (current is not None and current.state == "streaming"):
        observer.state("streaming", "caught up")


def _stop_after_cutover(store: StateStore, stop: threading.Event) -> None:
    """Scheduler job: the cutover records cut_over once it has drained us; then stop."""
    try:
        state = store.read_state()
    except (AuroraSyncError, pymysql.MySQLError) as exc:
        store.close()
        log.warning("cutover watch: state not read", error=type(exc).__name__)
        return
    if state is not None and state.state == "cut_over" and not stop.is_set():
        log.info("cut over: stopping", detail=state.detail)
        stop.set()


def _halted(store: StateStore, observer: Observer, exc: AuroraSyncError) -> None:
    log.error("halted", reason=exc.reason, fix=exc.fix, **exc.context())
    observer.error(type(exc).__name__)
    observer.state("halted", exc.reason)
    # The halt itself is what the operator must see: a target that cannot take the state
    # row (it may be why we halted) must not replace it with its own error.
    try:
        store.write_state("halted", exc.reason, error=exc.describe(), fix=exc.fix)
    except (AuroraSyncError, pymysql.MySQLError) as write_error:
        store.close()
        log.warning("halt not recorded", error=type(write_error).__name__)


def serve(
    settings: Settings,
    *,
    until: Position | None = None,
    stop: threading.Event | None = None,
    accept_ddl_at: Position | None = None,
) -> StreamResult:
    """The daemon after bootstrap: monitor endpoint, scheduled jobs and the stream."""
    stop = stop or threading.Event()
    with contextlib.closing(connect(settings.source, read_timeout=settings.read_timeout)) as conn:
        heartbeat_table = ensure_heartbeat_table(conn, settings.heartbeat_schema)
    metrics = Metrics.for_settings(settings, heartbeat_table=heartbeat_table)
    # The scheduled jobs' connections time out like the binlog's: a half-open connection
    # would otherwise hold its job (and the shutdown that waits for it) for good.
    timeout = settings.read_timeout

    def source() -> pymysql.Connection[Any]:
        return connect(settings.source, read_timeout=timeout)

    def target() -> pymysql.Connection[Any]:
        return connect(settings.target, read_timeout=timeout)

    store = StateStore(target, settings.state_db, settings.pipeline)
    gap = GapSampler(source, metrics)
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        stack.callback(gap.close)
        server = MonitorServer(settings.http_addr, metrics,
                               status=DaemonStatus(settings, metrics.live)).start()
        stack.callback(server.stop)
        log.info("monitor listening", url=server.url)
        scheduler = build_scheduler(
            settings,
            metrics=metrics,
            heartbeat=HeartbeatWriter(source, settings.heartbeat_schema)
            if heartbeat_table else None,
            gap=gap,
            checksums=ChecksumJob(lambda: connect(settings.target, settings.file_db,
                                                  read_timeout=settings.target_timeout),
                                  settings.file_db,
                                  ChecksumOptions(storage_root=settings.storage_root,
                                                  rate=settings.checksum_rate),
                                  stop=stop, on_backlog=metrics.checksum_backlog)
            if settings.checksum_job else None,
            on_caught_up=lambda: _caught_up(store, metrics),
        )
        watch = StateStore(target, settings.state_db, settings.pipeline)
        stack.callback(watch.close)
        scheduler.add_job(_stop_after_cutover, "interval", args=(watch, stop), seconds=1.0,
                          id="cutover_watch", name="cutover_watch")
        if settings.validate_interval > 0:
            scheduler.add_job(RollingValidation(settings, metrics).run, "interval",
                              seconds=settings.validate_interval, id="validate",
                              name="validate", max_instances=1, coalesce=True)
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=True)
        return stream(settings, StreamRun(
            until=until, stop=stop, accept_ddl_at=accept_ddl_at, observer=metrics,
            heartbeat_schema=settings.heartbeat_schema if heartbeat_table else None,
            on_heartbeat=metrics.source_heartbeat,
        ))
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack re-raises
