"""``run_bootstrap``: the snapshot from start to finish, resumable, and what the stream needs.

1. Find the run to do: a ``running`` run of the same tables is resumed (its start position
   and slicing stay); a ``done`` full run makes a full bootstrap a no-op (``force`` starts
   again); otherwise a new run records its start position (:mod:`bootstrap.position`)
   before reading any row, and its tasks' progress rows in one transaction.
2. Copy the tasks with the workers (:mod:`bootstrap.workers`), throttled
   (:mod:`bootstrap.throttle`), shown (:mod:`bootstrap.progress`).
3. Read the end position; set the stream checkpoint to the start after a full copy (a
   forced one too), and after a re-copy when there is none or it lies after the start (a
   re-copy must be replayed over), then mark the run done.

The stream then starts at the checkpoint and runs in safe mode until ``safe_until`` (the
run's end): :func:`safe_window` gives both to the daemon.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

from bootstrap import catalog
from bootstrap.chunks import CopyTask, TableInfo, plan_slices, table_of, tasks_from_names
from bootstrap.copy import CopyContext, TaskOutcome
from bootstrap.position import EndTracker, Method, capture_start
from bootstrap.progress import Reporter, TableSummary, default_reporter
from bootstrap.throttle import Limits, Override, Throttle
from bootstrap.workers import Scheduler, run_workers
from sync.apply.writer import SqlTargetWriter
from sync.db import connect
from sync.errors import BootstrapError
from sync.mapping.catalog import read_primary_keys
from sync.mapping.resolve import load_mapping
from sync.mapping.spec import MappingSpec
from sync.model import Checkpoint, Position
from sync.settings import Settings
from sync.state import BootstrapRun, StateStore, TableProgress


@dataclass(frozen=True, slots=True)
class SafeWindow:
    """Stream from ``start`` (or the checkpoint) in safe mode until past ``safe_until``."""

    run_id: int
    start: Position
    safe_until: Position


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    run_id: int
    method: str
    start: Position
    end: Position
    tables: tuple[TableSummary, ...]
    resumed: bool
    skipped: bool  # a full bootstrap was already done: nothing copied
    checkpoint: Position | None  # the checkpoint this run set, if it set one
    seconds: float

    @property
    def safe_until(self) -> Position:
        return self.end

    @property
    def rows(self) -> int:
        return sum(t.rows - t.resumed_from for t in self.tables)


def store_of(settings: Settings) -> StateStore:
    return StateStore(lambda: connect(settings.target), settings.state_db, settings.pipeline)


def safe_window(settings: Settings) -> SafeWindow | None:
    """The latest finished run's window, or None when no bootstrap has finished."""
    store = store_of(settings)
    try:
        run = store.latest_bootstrap()
    finally:
        store.close()
    if run is None or run.state != "done" or run.end is None:
        return None
    return SafeWindow(run.id, run.start, run.end)


def needs_bootstrap(settings: Settings) -> bool:
    """True until a bootstrap run has finished (a killed one is resumed by run_bootstrap)."""
    return safe_window(settings) is None


@dataclass
class _Plan:
    run: BootstrapRun
    resumed: bool
    infos: list[TableInfo]
    tasks: list[CopyTask]
    progress: dict[str, TableProgress]


def _new_tasks(conn: pymysql.Connection[Any], infos: Sequence[TableInfo],
               settings: Settings, workers: int) -> list[CopyTask]:
    tasks: list[CopyTask] = []
    for info in infos:
        low, high = catalog.key_range(conn, info)
        tasks += plan_slices(info, low, high, slices=workers, chunk_size=settings.chunk_size)
    return tasks


def _plan(settings: Settings, spec: MappingSpec, source: pymysql.Connection[Any],
          store: StateStore, *, only: Sequence[str] | None, force: bool,
          workers: int) -> _Plan | BootstrapRun:
    """The run to do, or the finished run when a full bootstrap has nothing to do."""
    latest = store.latest_bootstrap()
    wanted = sorted(only) if only is not None else None
    if latest is not None and latest.state == "running":
        if wanted is None or sorted(latest.tables) == wanted:
            infos = catalog.copied_tables(source, spec, list(latest.tables))
            return _resume(settings, source, store, run=latest, infos=infos, workers=workers)
        store.finish_bootstrap(latest.id, "abandoned", None)
    elif latest is not None and latest.state == "done" and wanted is None and not force:
        return latest
    infos = catalog.copied_tables(source, spec, only)
    start, method = capture_start(source)  # before any row is read
    run_id = store.start_bootstrap(method, start, [i.label for i in infos])
    run = store.latest_bootstrap()
    assert run is not None and run.id == run_id
    return _fresh(settings, source, run, infos, workers)


def _fresh(settings: Settings, source: pymysql.Connection[Any], run: BootstrapRun,
           infos: list[TableInfo], workers: int) -> _Plan:
    tasks = _new_tasks(source, infos, settings, workers)
    estimate = {i.label: i.estimated_rows for i in infos}
    slices = {i.label: sum(1 for t in tasks if t.info.label == i.label) for i in infos}
    progress = {t.name: TableProgress(run.id, t.name, None, 0, 0, False,
                                      estimate[t.info.label] // slices[t.info.label])
                for t in tasks}
    # All at once: a resume must see the whole slicing or none of it.
    writer = SqlTargetWriter(settings)
    try:
        writer.apply([], None, state=list(progress.values()))
    finally:
        writer.close()
    return _Plan(run, False, infos, tasks, progress)


def _resume(settings: Settings, source: pymysql.Connection[Any], store: StateStore, *,
            run: BootstrapRun, infos: list[TableInfo], workers: int) -> _Plan:
    recorded = {p.source_table: p for p in store.read_progress(run.id)}
    if not recorded:  # killed before its progress rows were written
        return _fresh(settings, source, run, infos, workers)
    tasks: list[CopyTask] = []
    for info in infos:
        tasks += tasks_from_names(info, [n for n in recorded if table_of(n) == info.label])
    lost = sorted(set(recorded) - {t.name for t in tasks})
    if lost:  # never skip a recorded range silently
        raise BootstrapError(
            f"bootstrap run {run.id} has progress rows this version cannot read: "
            f"{', '.join(lost)}",
            fix="start the bootstrap again with --force",
        )
    return _Plan(run, True, infos, tasks, {t.name: recorded[t.name] for t in tasks})


def _throttle(settings: Settings, reporter: Reporter, stack: contextlib.ExitStack) -> Throttle:
    store = store_of(settings)
    stack.callback(store.close)
    probe_conn = stack.enter_context(contextlib.closing(connect(settings.source)))
    lock = threading.Lock()

    def read_override() -> Override | None:
        with lock:
            row = store.read_throttle()
        if row is None:
            return None
        return Override(row.max_rows_per_second, row.max_threads_running, row.paused)

    def threads_running() -> int:
        with lock, probe_conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_running'")
            found = cur.fetchone()
        return int(found[1]) if found else 0

    base = Limits(settings.max_rows_per_second, settings.max_threads_running)
    return Throttle(base, read_override=read_override, threads_running=threads_running,
                    on_change=reporter.throttled)


@contextlib.contextmanager
def _signals(throttle: Throttle, stop: threading.Event) -> Iterator[None]:
    """SIGUSR1 toggles a pause; SIGTERM/SIGINT let the chunks in flight commit, then stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {
        signal.SIGUSR1: lambda *_: throttle.toggle_pause(),
        signal.SIGTERM: lambda *_: stop.set(),
        signal.SIGINT: lambda *_: stop.set(),
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _summaries(plan: _Plan, store: StateStore,
               outcomes: Sequence[TaskOutcome]) -> tuple[TableSummary, ...]:
    final = {p.source_table: p for p in store.read_progress(plan.run.id)}
    out = []
    for info in plan.infos:
        names = [t.name for t in plan.tasks if t.info.label == info.label]
        rows = sum(final[n].rows_copied for n in names if n in final)
        before = sum(plan.progress[n].rows_copied for n in names)
        chunks = sum(final[n].chunks for n in names if n in final)
        mine = [o for o in outcomes if o.name in names]
        # wall time of the table in this process: its slices ran side by side
        seconds = max(o.ended for o in mine) - min(o.started for o in mine) if mine else 0.0
        out.append(TableSummary(info.label, rows, chunks, before, seconds))
    return tuple(out)


def _finish(store: StateStore, source: pymysql.Connection[Any], *,
            run: BootstrapRun, ends: EndTracker, recopy: bool) -> tuple[Position, Position | None]:
    method: Method = "consistent_snapshot" if run.method == "consistent_snapshot" else "lockless"
    end = ends.end(source, method, run.start)
    existing = store.read_checkpoint()
    set_to: Position | None = None
    # A full copy (forced too) replaces every target row, so the stream restarts at its
    # start, even when the old checkpoint's binlog is gone; a re-copy only moves the
    # checkpoint back, so its tables are replayed over.
    if existing is None or not recopy or existing.position > run.start:
        set_to = run.start
        store.write_checkpoint(Checkpoint(run.start))
    store.finish_bootstrap(run.id, "done", end)
    return end, set_to


def run_bootstrap(
    settings: Settings,
    *,
    tables: Sequence[str] | None = None,
    workers: int | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    stop: threading.Event | None = None,
) -> BootstrapResult:
    """Copy aurora (or only ``tables``, re-copied with removals) into the targets.

    Resumes a killed run; returns at once when a full bootstrap is already done (unless
    ``force``). A stop (SIGTERM/SIGINT or ``stop``) leaves the run resumable and raises
    :class:`~sync.errors.BootstrapError`.
    """
    started = time.monotonic()
    spec = load_mapping(settings.mapping_file, source_schema=settings.source_db)
    count = workers or settings.bootstrap_workers
    stop = stop or threading.Event()
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(contextlib.closing(connect(settings.source)))
        store = store_of(settings)
        stack.callback(store.close)
        planned = _plan(settings, spec, source, store, only=tables, force=force, workers=count)
        if isinstance(planned, BootstrapRun):
            return _already_done(store, planned, started)
        reporter = reporter or default_reporter()
        throttle = _throttle(settings, reporter, stack)
        ends = EndTracker()
        ctx = CopyContext(
            spec=spec, run_id=planned.run.id,
            method="consistent_snapshot" if planned.run.method == "consistent_snapshot"
            else "lockless",
            chunk_size=settings.chunk_size,
            primary_keys=read_primary_keys(source, [r.schema for r in spec.routes]),
            database=settings.database, throttle=throttle, reporter=reporter, ends=ends,
            stop=stop,
        )
        for info in planned.infos:
            names = [t.name for t in planned.tasks if t.info.label == info.label]
            reporter.table(info.label, info.estimated_rows,
                           sum(planned.progress[n].rows_copied for n in names))
        scheduler = Scheduler(planned.tasks, planned.progress)
        with _signals(throttle, stop):
            try:
                run_workers(settings, ctx, scheduler, count)
            finally:
                reporter.finish(_summaries(planned, store, scheduler.outcomes))
        _check_complete(scheduler, planned)
        end, set_to = _finish(store, source, run=planned.run, ends=ends,
                              recopy=tables is not None)
        return BootstrapResult(
            run_id=planned.run.id, method=planned.run.method, start=planned.run.start, end=end,
            tables=_summaries(planned, store, scheduler.outcomes),
            resumed=planned.resumed, skipped=False, checkpoint=set_to,
            seconds=time.monotonic() - started,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _check_complete(scheduler: Scheduler, plan: _Plan) -> None:
    unfinished = sorted(n for n, done in scheduler.done.items() if not done)
    if unfinished:
        raise BootstrapError(
            f"the bootstrap stopped before it finished ({len(unfinished)} of "
            f"{len(plan.tasks)} tasks left: {', '.join(unfinished[:5])})",
            fix="run `aurora-sync bootstrap` again: it resumes at the next chunk",
        )


def _already_done(store: StateStore, run: BootstrapRun, started: float) -> BootstrapResult:
    assert run.end is not None
    set_to = None
    if store.read_checkpoint() is None:
        set_to = run.start
        store.write_checkpoint(Checkpoint(run.start))
    return BootstrapResult(run.id, run.method, run.start, run.end, (), resumed=False,
                           skipped=True, checkpoint=set_to, seconds=time.monotonic() - started)


__all__ = ["BootstrapResult", "SafeWindow", "needs_bootstrap", "run_bootstrap", "safe_window"]
