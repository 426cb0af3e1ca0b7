"""What people watch while the copy runs: a bar per table on a terminal, or one structured
log line per chunk elsewhere; a summary per table at the end; throttling shown in both.

A :class:`Reporter` is called from every worker thread; both implementations lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

log = structlog.get_logger("aurora_sync.bootstrap")


@dataclass(frozen=True, slots=True)
class TableSummary:
    """One source table's copy in this run (all its slices)."""

    table: str
    rows: int
    chunks: int
    resumed_from: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        copied = self.rows - self.resumed_from
        return copied / self.seconds if self.seconds > 0 else 0.0


class Reporter(Protocol):
    def table(self, table: str, estimated: int, already: int) -> None: ...

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None: ...

    def throttled(self, reason: str | None) -> None: ...

    def finish(self, summaries: Sequence[TableSummary]) -> None: ...


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, int] = {}
        self.started = time.monotonic()


class LogReporter:
    """One structlog event per chunk, per throttle change and per table at the end."""

    def __init__(self) -> None:
        self._tally = _Tally()

    def table(self, table: str, estimated: int, already: int) -> None:
        with self._tally.lock:
            self._tally.rows[table] = already
        log.info("bootstrap.table", table=table, rows_estimated=estimated, rows_done=already)

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        with self._tally.lock:
            total = self._tally.rows[table] = self._tally.rows.get(table, 0) + rows
        log.info("bootstrap.chunk", table=table, task=task, rows=rows, rows_total=total,
                 last_key=str(last_key), seconds=round(seconds, 3),
                 rows_per_second=round(rows / seconds) if seconds > 0 else None)

    def throttled(self, reason: str | None) -> None:
        if reason is None:
            log.info("bootstrap.throttle_released")
        else:
            log.warning("bootstrap.throttled", reason=reason)

    def finish(self, summaries: Sequence[TableSummary]) -> None:
        for s in summaries:
            log.info("bootstrap.table_done", table=s.table, rows=s.rows, chunks=s.chunks,
                     resumed_from=s.resumed_from, seconds=round(s.seconds, 2),
                     rows_per_second=round(s.rows_per_second))


class RichReporter:
    """A bar per table with rows, rows/s and ETA; the throttle state in the description."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=self._console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._progress.start()

    def table(self, table: str, estimated: int, already: int) -> None:
        with self._lock:
            if table in self._tasks:
                return
            self._tasks[table] = self._progress.add_task(
                table, total=max(estimated, already), completed=already, rate="", note="")
            self._started[table] = (time.monotonic(), already)

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        with self._lock:
            tid = self._tasks[table]
            self._progress.advance(tid, rows)
            done = int(self._progress.tasks[tid].completed)
            total = self._progress.tasks[tid].total or 0
            since, base = self._started[table]
            elapsed = time.monotonic() - since
            rate = (done - base) / elapsed if elapsed > 0 else 0.0
            # TABLE_ROWS is an estimate: grow the total rather than overflow the bar.
            self._progress.update(tid, total=max(total, done),
                                  rate=f"{rate:>9,.0f} rows/s")

    def throttled(self, reason: str | None) -> None:
        with self._lock:
            for tid in self._tasks.values():
                self._progress.update(tid, note="" if reason is None else f"⏸ {reason}")
        LogReporter().throttled(reason)

    def finish(self, summaries: Sequence[TableSummary]) -> None:
        self._progress.stop()
        table = Table(title="bootstrap")
        for column in ("table", "rows", "chunks", "resumed at", "seconds", "rows/s"):
            table.add_column(column, justify="left" if column == "table" else "right")
        for s in summaries:
            table.add_row(s.table, f"{s.rows:,}", str(s.chunks), f"{s.resumed_from:,}",
                          f"{s.seconds:.1f}", f"{s.rows_per_second:,.0f}")
        self._console.print(table)


class NullReporter:
    def table(self, table: str, estimated: int, already: int) -> None:
        pass

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        pass

    def throttled(self, reason: str | None) -> None:
        pass

    def finish(self, summaries: Sequence[TableSummary]) -> None:
        pass


def default_reporter() -> Reporter:
    """Bars on a terminal, log lines otherwise."""
    console = Console(stderr=True)
    return RichReporter(console) if console.is_terminal else LogReporter()


__all__ = ["LogReporter", "NullReporter", "Reporter", "RichReporter", "TableSummary",
           "default_reporter"]
