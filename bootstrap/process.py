"""One copy worker process: its own source and target connections, reading, mapping and
writing the tasks its parent hands it, one at a time.

The parent (:mod:`bootstrap.workers`) keeps the plan, the throttle, the progress display and
stop handling; a worker asks it before each chunk and tells it what it did, over one pipe:

    parent → worker   WorkerJob, once
                      (task, progress) | None (no more work: exit)
    worker → parent   ("admit", rows)          answered True (go on) or False (stop)
                      ("chunk", task, table, rows, last key, seconds)
                      ("seen", snapshot position)
                      ("done", TaskOutcome)
                      ("error", RemoteError)   then the worker exits

SIGINT and SIGTERM are the parent's to handle (a terminal's Ctrl-C reaches the whole process
group): the worker learns of a stop at its next admission, after its chunk has committed.
It dies with its parent, so a killed bootstrap leaves no copy running behind it.

A worker is started as ``python -m bootstrap.worker FD`` (FD: its end of a socket pair) with
the parent's import path, not through multiprocessing's spawn: that would import the
parent's ``__main__`` module again, running any script that calls :func:`run_bootstrap`
without an ``if __name__ == "__main__"`` guard a second time.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import pymysql

from bootstrap.chunks import CopyTask
from bootstrap.copy import CopyContext, ParentCache, TaskCopier
from bootstrap.position import Method
from bootstrap.reading import fast_temporal_decoders
from sync.apply.writer import SqlTargetWriter
from sync.db import connect
from sync.errors import AuroraSyncError, BootstrapError
from sync.logging import configure_logging
from sync.mapping.engine import PrimaryKeys
from sync.mapping.spec import MappingSpec
from sync.model import Position
from sync.settings import Settings
from sync.state import TableProgress

if TYPE_CHECKING:
    from bootstrap.progress import TableSummary

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerJob:
    """What a worker process needs of its run (pickled to it once)."""

    settings: Settings
    spec: MappingSpec
    run_id: int
    method: Method
    chunk_size: int
    primary_keys: PrimaryKeys
    parent_pid: int


@dataclass(frozen=True)
class RemoteError:
    """A worker's error as the parent raises it again: the same type, reason and context."""

    kind: type[BaseException]
    reason: str
    context: dict[str, Any] = field(default_factory=dict)
    trace: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> RemoteError:
        trace = "".join(traceback.format_exception(exc))
        if isinstance(exc, AuroraSyncError):
            return cls(type(exc), exc.reason, {"fix": exc.fix, "table": exc.table,
                                               "key": exc.key, "position": exc.position}, trace)
        return cls(type(exc), str(exc), {}, trace)

    def rebuild(self) -> BaseException:
        if issubclass(self.kind, AuroraSyncError):
            return self.kind(self.reason, **self.context)
        error = BootstrapError(f"a copy worker failed: {self.kind.__name__}: {self.reason}",
                               fix="report this as a bug, with the trace in the log")
        error.add_note(self.trace)
        return error


class _Parent:
    """The worker's side of the pipe, as the copy's throttle, reporter and position sink."""

    def __init__(self, conn: Connection, stop: threading.Event) -> None:
        self._conn = conn
        self._stop = stop

    def admit(self, rows: int, stop: threading.Event) -> float:
        self._conn.send(("admit", rows))
        if not self._conn.recv():
            self._stop.set()
        return 0.0

    def seen(self, position: Position | None) -> None:
        if position is not None:
            self._conn.send(("seen", position))

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        self._conn.send(("chunk", task, table, rows, last_key, seconds))

    def table(self, table: str, estimated: int, already: int) -> None:
        pass

    def throttled(self, reason: str | None) -> None:
        pass

    def finish(self, summaries: Sequence[TableSummary]) -> None:
        pass


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies (Linux); elsewhere it exits at the next
    message, when the pipe is found closed."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)


def main(fd: int) -> None:
    """The process's entry point: serve tasks until told to exit or an error."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    conn = Connection(fd)
    try:
        job: WorkerJob = conn.recv()
        _die_with_parent(job.parent_pid)
        configure_logging(job.settings)
        _serve(conn, job)
    except (EOFError, BrokenPipeError):
        return  # the parent is gone: nothing to report to
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
        with contextlib.suppress(OSError):
            conn.send(("error", RemoteError.of(_explained(exc))))
    finally:
        conn.close()


def _explained(exc: BaseException) -> BaseException:
    if isinstance(exc, pymysql.MySQLError):
        return BootstrapError(
            f"the copy lost its way: {exc.args[-1]}",
            fix="check both servers, then run `aurora-sync bootstrap` again: it resumes at "
            "the next chunk",
        )
    return exc


def _serve(conn: Connection, job: WorkerJob) -> None:
    stop = threading.Event()
    parent = _Parent(conn, stop)
    settings = job.settings
    ctx = CopyContext(spec=job.spec, run_id=job.run_id, method=job.method,
                      chunk_size=job.chunk_size, primary_keys=job.primary_keys,
                      database=settings.database, throttle=parent, reporter=parent,
                      ends=parent, stop=stop,
                      render_on_source=settings.bootstrap_render == "aurora")
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(contextlib.closing(connect(settings.source)))
        source.decoders = fast_temporal_decoders(source.decoders)
        target = stack.enter_context(contextlib.closing(
            connect(settings.target, autocommit=False)))
        writer = SqlTargetWriter(settings)
        stack.callback(writer.close)
        copier = TaskCopier(ctx, source, target, writer)
        parents = ParentCache()
        while (work := conn.recv()) is not None:
            task, progress = work
            assert isinstance(task, CopyTask) and isinstance(progress, TableProgress)
            outcome = copier.copy(task, progress,
                                  functools.partial(parents.for_task, task, target, ctx))
            conn.send(("done", outcome))


__all__ = ["RemoteError", "WorkerJob", "main"]
