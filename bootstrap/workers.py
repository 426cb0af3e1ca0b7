"""Copy worker processes sharing one run's tasks, parents before the children that look them
up.

Processes, not threads: reading (PyMySQL's row parsing), mapping and building the SQL are
Python work that holds the GIL, so threads of one process took turns on one core. Each
process (:mod:`bootstrap.process`) owns its connections and its parents' lookup rows; this
side keeps what must be one for the run: the task order (:class:`Scheduler`), the shared
rows-per-second budget and pauses (the :class:`~bootstrap.throttle.Throttle`, asked on a
worker's behalf before each of its chunks), the progress display, the end position, stop
handling and the first error. One thread per process serves its pipe.

A worker's error reaches :func:`run_workers`'s caller as the same
:class:`~sync.errors.AuroraSyncError` type with its reason and context; a worker that dies
(killed, out of memory) becomes a :class:`~sync.errors.BootstrapError` naming it. On a stop
or an error the other workers finish the chunk they are writing and exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from bootstrap.chunks import CopyTask, ready
from bootstrap.copy import CopyContext, TaskOutcome
from bootstrap.process import RemoteError, WorkerJob
from sync.errors import BootstrapError
from sync.settings import Settings
from sync.state import TableProgress

# How long an exiting worker may take to close its connections before it is killed.
EXIT_SECONDS = 10.0


class Scheduler:
    """Hands out ready tasks, and collects outcomes and the first error."""

    def __init__(self, tasks: Sequence[CopyTask], progress: dict[str, TableProgress]) -> None:
        self.tasks = tuple(tasks)
        self.progress = progress
        self.done = {t.name: progress[t.name].done for t in tasks}
        self.running: set[str] = set()
        self.outcomes: list[TaskOutcome] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()

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


class _WorkerFailed(Exception):  # noqa: N818 - internal: the worker's error, rebuilt
    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _serve_task(conn: Connection, ctx: CopyContext) -> TaskOutcome:
    """Answer one worker's requests while it copies one task; its outcome."""
    while True:
        message: tuple[Any, ...] = conn.recv()
        kind = message[0]
        if kind == "admit":
            ctx.throttle.admit(message[1], ctx.stop)
            conn.send(not ctx.stop.is_set())
        elif kind == "chunk":
            ctx.reporter.chunk(*message[1:])
        elif kind == "seen":
            ctx.ends.seen(message[1])
        elif kind == "done":
            outcome: TaskOutcome = message[1]
            return outcome
        else:
            remote: RemoteError = message[1]
            raise _WorkerFailed(remote.rebuild())


def _drive(conn: Connection, worker: _Worker, ctx: CopyContext, scheduler: Scheduler) -> None:
    task: CopyTask | None = None
    try:
        while (task := scheduler.take(ctx.stop)) is not None:
            conn.send((task, scheduler.progress[task.name]))
            scheduler.finish(task, _serve_task(conn, ctx))
            task = None
        conn.send(None)
    except _WorkerFailed as failed:
        scheduler.fail(task, failed.error)
    except (EOFError, OSError):
        scheduler.fail(task, BootstrapError(
            f"copy worker {worker.name} died (exit code {worker.exit_code(1.0)})",
            table=task.name if task else None,
            fix="look for the cause in the system log (out of memory?), then run "
            "`aurora-sync bootstrap` again: it resumes at the next chunk",
        ))
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
        scheduler.fail(task, exc)
    finally:
        conn.close()  # a worker still waiting for work reads the end and exits


def _job(settings: Settings, ctx: CopyContext) -> WorkerJob:
    return WorkerJob(settings=settings, spec=ctx.spec, run_id=ctx.run_id, method=ctx.method,
                     chunk_size=ctx.chunk_size, primary_keys=dict(ctx.primary_keys),
                     parent_pid=os.getpid())


def worker_command(fd: int) -> list[str]:
    """How a worker is started on its end of the socket pair ``fd``. ``-P``: ``-m`` would
    otherwise put the working directory first on its path, and a ``bootstrap`` or ``sync``
    folder there would be imported instead."""
    return [sys.executable, "-P", "-m", "bootstrap.worker", str(fd)]


class _Worker:
    """One worker process and the parent's end of its socket pair."""

    def __init__(self, name: str, job: WorkerJob) -> None:
        self.name = name
        mine, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                worker_command(theirs.fileno()),
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())
        self.conn.send(job)

    def exit_code(self, wait: float) -> int | None:
        try:
            return self.process.wait(wait)
        except subprocess.TimeoutExpired:
            return None

    def reap(self) -> None:
        if self.exit_code(EXIT_SECONDS) is None:
            self.process.kill()
            self.process.wait()


def run_workers(settings: Settings, ctx: CopyContext, scheduler: Scheduler,
                workers: int) -> None:
    """Run ``workers`` processes until every task is done, a stop is asked or one fails."""
    job = _job(settings, ctx)
    started: list[_Worker] = []
    drivers: list[threading.Thread] = []
    try:
        for i in range(workers):
            worker = _Worker(f"bootstrap-{i}", job)
            started.append(worker)
            drivers.append(threading.Thread(
                target=_drive, args=(worker.conn, worker, ctx, scheduler),
                name=worker.name, daemon=True))
        for driver in drivers:
            driver.start()
        for driver in drivers:
            while driver.is_alive():
                driver.join(0.5)
                if scheduler.error is not None:
                    ctx.stop.set()  # the others finish their chunk and leave
    finally:
        for worker in started:
            worker.conn.close()  # idle ones read the end and exit
            worker.reap()
    if scheduler.error is not None:
        raise scheduler.error


__all__ = ["Scheduler", "run_workers", "worker_command"]
