"""The binlog reader in a process of its own; its rows events decoded in the stream's.

A catch-up is CPU-bound in one Python process: reading packets, transaction boundaries and
positions took about half of its time, decoding, mapping and writing the other half, on
one core while the second had room. Here a child process runs the same
:class:`~sync.source.binlog.BinlogReader` in raw mode, so everything that decides
transactions and positions is the in-process reader's own code, and sends each committed
transaction to the stream with its rows events still bytes. The stream's process decodes
them (:class:`Expander`) with the same compiled readers. Bytes are what crosses because
pickling decoded values costs about as much as the split saves (31 µs per one-row
transaction, against about 2 µs for its event's bytes).

The child writes frames to a pipe, each a pickled list of items::

    ("x", rows, file, pos, gtid, timestamp)   a transaction (RawTransaction's fields)
    ("e", event)                              any other event, pickled whole
    ("end", error or None)                    the reader ended, with its error

A sender thread in the child sends what the reader has gathered whenever the pipe takes
it, so frames grow when the stream is busy and an idle stream waits for no batch.

What can go wrong, and what happens:

* the child dies: the pipe ends, :class:`SourceConnectionLostError`, and the pipeline reopens
  the reader at its committed checkpoint;
* the stream's process dies: the child is killed with it (``PR_SET_PDEATHSIG``), or its next
  write fails and it exits;
* a rows event the decoder here refuses, which the in-process reader would have handed to the
  library: :class:`RawRowsRefusedError` (a lost connection, so the pipeline applies what it holds
  and reopens at its checkpoint) and :class:`BinlogOpener` reads in-process from then on.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pickle
import select
import signal
import site
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from sync.errors import AuroraSyncError, SourceConnectionLostError, SourceError
from sync.handoff import Handoff
from sync.logging import configure_logging
from sync.model import Position, RowChange, SourceTransaction
from sync.settings import Settings
from sync.source.binlog import BinlogReader, open_binlog
from sync.source.events import StreamEvent
from sync.source.lean import EVENT_OPS, RawRows, TableSpec, image_pairs
from sync.source.rows import TableReader, compile_table
from sync.source.transactions import CommitTimes, RawTransaction

log = structlog.get_logger("aurora_sync.source")

# A frame ends at 1,000 items (about 1 MB of one-row transactions) or past 8 MiB of rows
# events, whichever comes first: large transactions are not gathered by the thousand.
_FRAME_ITEMS = 1000
_FRAME_BYTES = 8 << 20
_CHILD_QUEUE = 256  # items the child's reader gets ahead of its sender
_TABLES_KEPT = 256  # compiled tables kept by serial (a few per table and binlog file)
_PR_SET_PDEATHSIG = 1
_PIPE_SIZE = 1 << 20  # room for about a frame in the pipe while the stream reads one
_FRAME_BUFFER = 1 << 16
_FRAME_HEADER = struct.Struct("<I")  # a frame's length


class RawRowsRefusedError(SourceConnectionLostError):
    """A rows event the stream's decoder could not read: read it in-process instead."""


BeforeColumns = Callable[[str, str], Collection[str] | None]
"""The columns of a table's before images the stream reads (None: all of them)."""


class Expander:
    """Turns the child's transactions into :class:`SourceTransaction`, decoding rows events
    against the tables the child described (pure: no I/O). With ``before``, before images
    hold only the columns it names for their table (``Mapper.before_columns``): the rest
    are stepped over, unread, which takes a fifth off the decoding of the benchmark's
    one-row updates."""

    def __init__(self, kept: int = _TABLES_KEPT, before: BeforeColumns | None = None) -> None:
        self._tables: OrderedDict[int, tuple[str, str, TableReader]] = OrderedDict()
        self._kept = kept
        self._before = before
        self._commit_ts = CommitTimes()
        self.decoded = 0
        """Rows events decoded here (the rest arrive decoded by the library, in the child)."""

    def transaction(self, rows: list[Any], file: str, pos: int, gtid: str | None,
                    timestamp: int) -> SourceTransaction:
        commit_ts = self._commit_ts(timestamp)
        changes: list[RowChange] = []
        add = changes.append
        for entry in rows:
            if type(entry[0]) is str:  # decoded by the library, in the child
                schema, table, op, before, after, at = entry
                add(RowChange(schema, table, op, before, after, commit_ts, at))
                continue
            raw: RawRows = entry
            serial, kind, data, start, end, at_pos, spec = raw
            at, op = Position(file, at_pos), EVENT_OPS[kind]
            schema, table, reader = self._table(serial, spec, at)
            images = reader.changes(data, start, end, op)
            if images is None:
                raise _refused(f"a rows event of {schema}.{table}", at)
            self.decoded += 1
            for before, after in image_pairs(op, images):
                add(RowChange(schema, table, op, before, after, commit_ts, at))
        return SourceTransaction(tuple(changes), Position(file, pos, gtid), commit_ts)

    def _table(self, serial: int, spec: TableSpec | None,
               at: Position) -> tuple[str, str, TableReader]:
        tables = self._tables
        if spec is not None:
            schema, table, columns = spec
            reader = compile_table(columns, self._before(schema, table) if self._before else None)
            if reader is None:
                raise _refused(f"the table map of {schema}.{table}", at)
            tables[serial] = (schema, table, reader)
            if len(tables) > self._kept:
                tables.popitem(last=False)
        known = tables.get(serial)
        if known is None:  # the child sends a spec again once it was dropped here
            raise _refused(f"a rows event of table serial {serial} (no table map)", at)
        return known


def _refused(what: str, at: Position) -> RawRowsRefusedError:
    return RawRowsRefusedError(
        f"{what} could not be decoded outside the binlog reader; reading the binlog "
        "in-process from the checkpoint instead",
        fix="nothing to do: the stream goes on, a little slower; report the position if "
        "this repeats",
        position=at,
    )


class ProcessReader:
    """An event source reading the binlog in a child process (see the module's text).

    ``options`` are :func:`~sync.source.binlog.open_binlog`'s (``raw`` excepted), ``before``
    is :class:`Expander`'s. The child is ``python -P -m sync.source.split``: it imports this
    package as the stream's process does, never the program that runs the stream (as
    multiprocessing's spawn would).
    """

    def __init__(self, settings: Settings, start: Position, *,
                 before: BeforeColumns | None = None, **options: Any) -> None:
        job = _Job(settings, start, options, os.getpid())
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
            child_command(),
            # Unbuffered: select() on the pipe then says all there is to read.
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_environment(),
            bufsize=0,
            # Its own session: a terminal's Ctrl-C reaches the daemon, which stops it.
            start_new_session=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        # The settings (passwords included) go through the pipe, never argv or the environment.
        try:
            self._process.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            self._process.stdin.close()
        except OSError:
            pass  # the child died at once: its end of stdout says so
        self._frames = self._process.stdout
        self._start = start
        self._closed = False
        # The child forwards the source's heartbeats, so it is never silent for long unless
        # it hangs; the first frame may also wait for its connection.
        self._silence = settings.read_timeout + settings.connect_timeout
        self.expander = Expander(before=before)

    @property
    def pid(self) -> int:
        return self._process.pid

    def __enter__(self) -> ProcessReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        expander = self.expander
        while True:
            frame = self._frame()
            if frame is None:
                if self._closed:
                    return
                raise self._died()
            # Frames come only from the child started here, over its private pipe.
            for item in pickle.loads(frame):  # noqa: S301
                kind = item[0]
                if kind == "x":
                    yield expander.transaction(*item[1:])
                elif kind == "e":
                    yield item[1]
                else:
                    if item[1] is not None:
                        raise item[1]
                    return

    def close(self) -> None:
        self._closed = True
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(10)
        self._frames.close()

    def _frame(self) -> bytearray | None:
        """The next frame, or None once the child's end is closed."""
        try:
            header = self._read(_FRAME_HEADER.size)
            if header is None:
                return None
            (size,) = _FRAME_HEADER.unpack(header)
            return self._read(size)
        except (OSError, ValueError):  # closed by close(), from the stream's thread
            return None

    def _read(self, size: int) -> bytearray | None:
        frames = self._frames
        data = bytearray(size)
        view = memoryview(data)
        got = 0
        while got < size:
            if not select.select([frames], [], [], self._silence)[0]:
                raise self._silent()
            count = os.readv(frames.fileno(), [view[got:]])
            if not count:
                return None
            got += count
        return data

    def _silent(self) -> SourceConnectionLostError:
        return SourceConnectionLostError(
            f"the binlog reader process sent nothing for {self._silence:.0f} s, not even the "
            "source's heartbeat: it is stopped or hung",
            fix="nothing to do if it passes: the stream stops it and starts a new reader at "
            "its committed checkpoint; if it repeats, report it with the log",
            position=self._start,
        )

    def _died(self) -> SourceConnectionLostError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        return SourceConnectionLostError(
            f"the binlog reader process ended unexpectedly (exit code {self._process.returncode})",
            fix="nothing to do if it passes: the stream starts a new reader at its committed "
            "checkpoint; if it repeats, read the reader's error above in the log, and look "
            "for the process being killed (memory limits)",
            position=self._start,
        )


def child_command() -> list[str]:
    """How the child is started. ``-P``: ``-m`` would otherwise put the working directory
    first on the child's path, and a ``sync`` folder there would be imported instead."""
    return [sys.executable, "-P", "-m", "sync.source.split"]


def _child_environment() -> dict[str, str]:
    """This environment, with the folder this package was imported from first on the
    child's path when it is not a site directory (a checkout, or a path a program added):
    the child runs the code this process runs. A site directory stays where it is, after
    the standard library."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    sites = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root not in sites:
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    return env


class BinlogOpener:
    """The stream's ``open_source``: the binlog read in a child process (``"process"``) or
    in the stream's own (``"thread"``); in-process for good after a refused event."""

    def __init__(self, settings: Settings, *, schemas: Collection[str], blocking: bool,
                 end: Position | None, mode: str = "process",
                 before: BeforeColumns | None = None) -> None:
        self._settings = settings
        self._before = before
        self._schemas = set(schemas)
        self._blocking = blocking
        self._end = end
        self.mode = mode

    def __call__(self, start: Position) -> ProcessReader | BinlogReader:
        if self.mode == "process":
            return _Watched(self, self._settings, start, schemas=sorted(self._schemas),
                            blocking=self._blocking, end=self._end, before=self._before)
        return open_binlog(self._settings, start, schemas=self._schemas,
                           blocking=self._blocking, end=self._end)


class _Watched(ProcessReader):
    """A process reader that turns its opener in-process when an event is refused."""

    def __init__(self, opener: BinlogOpener, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opener = opener

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            yield from super().__iter__()
        except RawRowsRefusedError as exc:
            self._opener.mode = "thread"
            log.warning("binlog reader moves in-process", reason=exc.reason,
                        position=str(exc.position))
            raise


# --- the child ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What the child reads: :func:`sync.source.binlog.open_binlog`'s arguments."""

    settings: Settings
    start: Position
    options: dict[str, Any]
    parent: int


def _child() -> None:
    # The stream's process handles Ctrl-C and stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Frames own stdout; anything printed goes to stderr instead.
    frames = os.fdopen(os.dup(1), "wb", buffering=_FRAME_BUFFER)
    os.dup2(2, 1)
    with contextlib.suppress(OSError):
        fcntl.fcntl(frames.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    job: _Job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our parent
    # What the libraries log here reaches the daemon's stderr as its own logs do: redacted.
    configure_logging(job.settings)
    # Dying with the stream's process keeps no orphan reading under its server id.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != job.parent:
        return
    # Each item with the bytes of its rows events.
    items: Handoff[tuple[int, tuple[Any, ...]]] = Handoff(_CHILD_QUEUE)
    specs = _Specs()
    sender = threading.Thread(target=_send, args=(frames, items), name="aurora-sync-send",
                              daemon=True)
    sender.start()
    try:
        reader = open_binlog(job.settings, job.start, **job.options, raw=True)
        with reader:
            while True:
                try:
                    event = reader.read()
                except StopIteration:
                    break
                if isinstance(event, RawTransaction):
                    position = event.position
                    size = sum(len(e[2]) for e in event.rows if type(e[0]) is int)
                    items.put((size, ("x", specs.once(event.rows), position.file,
                                      position.pos, position.gtid, event.timestamp)))
                else:
                    items.put((0, ("e", event)))
        items.put((0, ("end", None)))
    except BaseException as exc:  # noqa: BLE001 - every error is the stream's to raise
        items.put((0, ("end", _portable(exc, job.start))))
    sender.join()


class _Specs:
    """Which table specs the stream's :class:`Expander` holds, as it keeps them (the last
    ``kept`` received), so each is sent once while it is held there and again after.

    Decided when a transaction is sent, not when its rows are read: an XA transaction's
    rows are read before others that are sent first."""

    def __init__(self, kept: int = _TABLES_KEPT) -> None:
        self._held: OrderedDict[int, None] = OrderedDict()
        self._kept = kept

    def once(self, rows: list[Any]) -> list[Any]:
        held = self._held
        out = rows
        for index, entry in enumerate(rows):
            if type(entry[0]) is not int:
                continue  # decoded by the library
            serial = entry[0]
            if serial not in held:
                held[serial] = None
                if len(held) > self._kept:
                    held.popitem(last=False)
                continue
            if out is rows:
                out = list(rows)
            out[index] = (*entry[:6], None)
        return out


def _send(frames: BinaryIO, items: Handoff[tuple[int, tuple[Any, ...]]]) -> None:
    """The sender thread: whatever the reader gathered meanwhile, as one frame."""
    try:
        while True:
            size, item = items.get()
            batch = [item]
            while len(batch) < _FRAME_ITEMS and size < _FRAME_BYTES and items.qsize():
                more, item = items.get_nowait()
                batch.append(item)
                size += more
            payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            frames.write(_FRAME_HEADER.pack(len(payload)))
            frames.write(payload)
            frames.flush()
            if batch[-1][0] == "end":
                return
    except BaseException:  # noqa: BLE001 - the stream is gone or stopped this reader
        os._exit(0)


def _portable(exc: BaseException, start: Position) -> BaseException:
    """The error as the stream's process can unpickle it (ours pickle by their parts)."""
    if isinstance(exc, AuroraSyncError):
        return exc
    return SourceError(
        f"the binlog reader process failed: {type(exc).__name__}: {exc}",
        fix="report this with the log: the stream stopped at its committed checkpoint",
        position=start,
    )


if __name__ == "__main__":
    _child()
