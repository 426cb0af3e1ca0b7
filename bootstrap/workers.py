"""Worker threads sharing one run's tasks, parents before the children that look them up.

Threads, not processes: each worker overlaps its own server round trips (source read, target
commit) with the Python work of the others; see bench/bench_bootstrap.py for what 1, 2 and 4
workers gave on two cores. The parents' lookup rows are loaded from the target once, when
the first task that needs them starts, and shared read-only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pymysql

from bootstrap.chunks import CopyTask, ready
from bootstrap.copy import CopyContext, ParentRows, TaskCopier, TaskOutcome, load_parents
from sync.apply.writer import SqlTargetWriter
from sync.db import connect
from sync.errors import AuroraSyncError, BootstrapError
from sync.settings import Settings
from sync.state import TableProgress


class Scheduler:
    """Hands out ready tasks, loads parents once, and collects outcomes and the first error."""

    def __init__(self, tasks: Sequence[CopyTask], progress: dict[str, TableProgress]) -> None:
        self.tasks = tuple(tasks)
        self.progress = progress
        self.done = {t.name: progress[t.name].done for t in tasks}
        self.running: set[str] = set()
        self.outcomes: list[TaskOutcome] = []
        self.error: BaseException | None = None
        self.parents: ParentRows = {}
        self._cond = threading.Condition()
        self._loading = threading.Lock()

    def take(self, stop: threading.Event) -> CopyTask | None:
        with self._cond:
            while not stop.is_set() and self.error is None:
                task = ready(self.tasks, self.done, frozenset(self.running))
                if task is not None:
                    self.running.add(task.name)
                    return task
                if not self.running:
                    return None  # every task is done
                self._cond.wait(0.5)
            return None

    def finish(self, task: CopyTask, outcome: TaskOutcome) -> None:
        with self._cond:
            self.running.discard(task.name)
            self.done[task.name] = outcome.done
            self.outcomes.append(outcome)
            self._cond.notify_all()

    def fail(self, task: CopyTask | None, exc: BaseException) -> None:
        with self._cond:
            if task is not None:
                self.running.discard(task.name)
            if self.error is None:
                self.error = exc
            self._cond.notify_all()

    def parents_for(self, task: CopyTask, conn: pymysql.Connection[Any],
                    ctx: CopyContext) -> ParentRows:
        with self._loading:
            missing = sorted(t for t in task.info.parents if t not in self.parents)
            if missing:
                self.parents.update(load_parents(conn, ctx.spec, missing, ctx.database))
                conn.commit()
            return {t: self.parents[t] for t in task.info.parents if t in self.parents}


def _work(settings: Settings, ctx: CopyContext, scheduler: Scheduler) -> None:
    task: CopyTask | None = None
    try:
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(contextlib.closing(connect(settings.source)))
            target = stack.enter_context(contextlib.closing(
                connect(settings.target, autocommit=False)))
            writer = SqlTargetWriter(settings)
            stack.callback(writer.close)
            copier = TaskCopier(ctx, source, target, writer)
            while (task := scheduler.take(ctx.stop)) is not None:
                parents = scheduler.parents_for(task, target, ctx)
                outcome = copier.copy(task, scheduler.progress[task.name], parents)
                scheduler.finish(task, outcome)
                task = None
    except AuroraSyncError as exc:
        scheduler.fail(task, exc)
    except pymysql.MySQLError as exc:
        scheduler.fail(task, BootstrapError(
            f"the copy lost its way: {exc.args[-1]}",
            table=task.name if task else None,
            fix="check both servers, then run `aurora-sync bootstrap` again: it resumes at "
            "the next chunk",
        ))
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
        scheduler.fail(task, exc)


def run_workers(settings: Settings, ctx: CopyContext, scheduler: Scheduler, workers: int,
                *, work: Callable[[Settings, CopyContext, Scheduler], None] = _work) -> None:
    """Run ``workers`` threads until every task is done, a stop is asked or one fails."""
    threads = [threading.Thread(target=work, args=(settings, ctx, scheduler),
                                name=f"bootstrap-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
            if scheduler.error is not None:
                ctx.stop.set()  # the others finish their chunk and leave
    if scheduler.error is not None:
        raise scheduler.error


__all__ = ["Scheduler", "run_workers"]
