"""The stream: binlog reader → mapping → batcher → target writer, with the checkpoint.

One reader thread turns the binlog into whole source transactions and puts them on a bounded
queue; the apply loop (the caller's thread) maps them, gathers them into batches bounded by
rows, bytes and age, and hands each batch to the writer thread, which writes it with its
checkpoint in one target transaction. The three overlap: while the target commits batch N,
the apply loop builds batch N+1 and the reader decodes what follows. One batch at most is in
flight (:mod:`sync.apply.flight`): batch N+1 is handed over only once batch N has committed,
so batches commit in order, and none is written after one failed (the batches held then are
dropped: they are read again from the checkpoint, or the stream halts). Past its age, a batch
keeps growing while the one before is still being written (it could not go sooner), up to
its row and byte budgets; its statements are built then too (``StreamOptions.planner``).
Whatever makes the loop return or raise (``until``, a stop, the end of the stream, a schema
change, an error) waits for the batch in flight first, so the checkpoint returned or
recorded is committed.

Exactly-once effect: the checkpoint is written with the data; on a lost source connection
the loop applies what it already holds, then reopens the reader at the committed checkpoint
(never at the reader's own idea of where it was). Every write is idempotent, so the replay
after a crash or a bootstrap ("safe mode") converges on the same state. A batch the target
refuses is applied again one source transaction at a time: those before the refused one
commit, and the error names that transaction with the checkpoint right before it.

The loop stops on demand: ``until`` (a source position: the cutover drain and tests use it)
or a stop event (SIGTERM/SIGINT): it commits what it holds and returns.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from sync.apply.batcher import Batch, BatchLimits, BatchPart, Planner
from sync.apply.flight import InFlight
from sync.apply.writer import ApplyResult, TargetWriter
from sync.errors import (
    ApplyError,
    ConnectError,
    RetryableApplyError,
    SchemaChangeError,
    SourceConnectionLostError,
)
from sync.gc_budget import fewer_collections
from sync.handoff import Handoff
from sync.model import Checkpoint, Position, SourceTransaction, TargetOp
from sync.source.events import Heartbeat, SchemaChange, StreamEvent

log = structlog.get_logger("aurora_sync.pipeline")


class EventSource(Protocol):
    """A reader of stream events from a start position (the binlog, or a twin in tests)."""

    def __iter__(self) -> Iterator[StreamEvent]: ...

    def close(self) -> None: ...


class ChangeMapper(Protocol):
    def map_transaction(self, txn: SourceTransaction, *, safe_mode: bool) -> list[TargetOp]: ...


class Observer(Protocol):
    """Receives what the loop does, for metrics and status. Every method must be cheap."""

    def resumed(self, checkpoint: Checkpoint) -> None: ...

    def batch_applied(self, result: ApplyResult, transactions: int, end: Checkpoint) -> None: ...

    def heartbeat(self, event: Heartbeat) -> None: ...

    def state(self, name: str, detail: str = "") -> None: ...

    def retried(self, kind: str, count: int = 1) -> None: ...

    def error(self, kind: str) -> None: ...


class NullObserver:
    def resumed(self, checkpoint: Checkpoint) -> None:
        pass

    def batch_applied(self, result: ApplyResult, transactions: int, end: Checkpoint) -> None:
        pass

    def heartbeat(self, event: Heartbeat) -> None:
        pass

    def state(self, name: str, detail: str = "") -> None:
        pass

    def retried(self, kind: str, count: int = 1) -> None:
        pass

    def error(self, kind: str) -> None:
        pass


@dataclass(frozen=True)
class StreamOptions:
    limits: BatchLimits
    mapped_tables: Collection[tuple[str, str]]
    safe_until: Position | None = None
    until: Position | None = None
    accept_ddl_at: Position | None = None
    queue_transactions: int = 20_000
    # An idle stream still moves its checkpoint on, so a restart replays little.
    idle_checkpoint_seconds: float = 5.0
    # A blocking binlog never ends by itself: when it does, the source closed the stream
    # (its shutdown ends the dump with an EOF, not an error) and the loop reconnects.
    follow: bool = False
    # The writer's statements, made by the apply loop while the batch before is written
    # (None: the writer makes them, on its thread).
    planner: Planner | None = None


@dataclass
class StreamResult:
    checkpoint: Checkpoint | None
    transactions: int = 0
    batches: int = 0
    reconnects: int = 0
    stopped_by: str = "until"


@dataclass
class _End:
    """Put on the queue by the reader thread when it stops, with the reason."""

    error: BaseException | None = None


@dataclass
class _Reader:
    thread: threading.Thread
    source: EventSource
    events: Handoff[StreamEvent | _End]
    halt: threading.Event = field(default_factory=threading.Event)


class StreamPipeline:
    """The apply loop. Build it with the pieces; call :meth:`run`."""

    def __init__(
        self,
        *,
        open_source: Callable[[Position], EventSource],
        mapper: ChangeMapper,
        writer: TargetWriter,
        options: StreamOptions,
        observer: Observer | None = None,
    ) -> None:
        self._open_source = open_source
        self._mapper = mapper
        self._writer = writer
        self._options = options
        self._observer = observer or NullObserver()
        self._batch = Batch(options.limits)
        self._batch_safe = False
        self._replaying = True
        # Written by the writer thread while a batch is in flight: the apply loop reads them
        # only after waiting for it (_settle).
        self._last_applied: Checkpoint | None = None
        self._last_commit = time.monotonic()
        self._flight = InFlight("aurora-sync-writer")

    def run(self, start: Checkpoint, *, stop: threading.Event | None = None) -> StreamResult:
        """Stream from ``start`` until ``until``, the stop event or an error."""
        stop = stop or threading.Event()
        self._last_applied = start
        self._observer.resumed(start)
        result = StreamResult(checkpoint=start)
        try:
            with fewer_collections():
                return self._run(result, stop)
        finally:
            self._flight.close()

    def _run(self, result: StreamResult, stop: threading.Event) -> StreamResult:
        assert self._last_applied is not None
        delay = 0.5
        while True:
            reader: _Reader | None = None
            try:
                reader = self._start_reader(self._last_applied.position)
                result.stopped_by = self._consume(reader, stop, result)
            except (SourceConnectionLostError, ConnectError) as exc:
                # Apply what is held; reopen where the target says we are.
                self._finish(result)
                result.reconnects += 1
                self._observer.retried("source_reconnect")
                log.warning("source connection lost; reconnecting", reason=exc.reason,
                            position=str(self._last_applied.position), delay_s=delay)
                self._observer.state("catching_up", "reconnecting to the source")
                if stop.wait(delay):
                    result.stopped_by = "stop"
                    return result
                delay = min(delay * 2, 30.0)
            else:
                return result
            finally:
                if reader is not None:
                    self._stop_reader(reader)
                try:
                    # On an error in the loop: the batch in flight still commits (or fails,
                    # and its error, earlier in the stream, is the one raised).
                    self._settle()
                finally:
                    result.checkpoint = self._last_applied

    # --- the loop ----------------------------------------------------------------------

    def _consume(self, reader: _Reader, stop: threading.Event, result: StreamResult) -> str:
        until = self._options.until
        if until is not None and self._last_applied is not None and \
                self._last_applied.position >= until:
            return "until"
        while True:
            if stop.is_set():
                self._finish(result)
                return "stop"
            try:
                event = reader.events.get(timeout=self._wait_seconds())
            except queue.Empty:
                if self._batch.transactions:
                    self._flush(result)
                else:
                    self._check()
                continue
            if isinstance(event, _End):
                self._finish(result)
                if event.error is not None:
                    raise event.error
                if self._options.follow:
                    raise SourceConnectionLostError(
                        "the source ended the binlog stream (a shutdown or restart)",
                        fix="nothing to do if it passes: the stream reopens at its committed "
                        "checkpoint once the source is back",
                        position=self._last_applied.position if self._last_applied else None,
                    )
                return "end"
            if self._handle(event, result):
                self._finish(result)
                return "until"
            if self._due():
                self._flush(result)

    def _due(self) -> bool:
        """The batch is handed over now: at its row or byte budget, or at its age once the
        writer is free. While a batch is in flight the next one keeps growing: it could not
        be written sooner, and larger batches mean fewer round trips to the target."""
        batch = self._batch
        if not batch.transactions:
            return False
        return batch.at_budget() or (batch.full() and not self._flight.busy())

    def _handle(self, event: StreamEvent, result: StreamResult) -> bool:
        """Take one event; True when ``until`` is reached."""
        if isinstance(event, SourceTransaction):
            # The first transaction after a (re)start may have been half written when a
            # split source transaction was cut by a crash: it is replayed in safe mode too.
            safe = self._replaying or (
                self._options.safe_until is not None and event.end <= self._options.safe_until)
            self._replaying = False
            ops = self._mapper.map_transaction(event, safe_mode=safe)
            # A batch holding any replayed transaction is written in safe mode as a whole.
            self._batch_safe = self._batch_safe or safe
            self._batch.add(ops, Checkpoint(event.end, event.commit_ts))
            result.transactions += 1
            return self._options.until is not None and event.end >= self._options.until
        if isinstance(event, SchemaChange):
            self._schema_change(event, result)
            return False
        if isinstance(event, Heartbeat):
            self._observer.heartbeat(event)
            self._idle_checkpoint(event.position)
            return self._options.until is not None and event.position >= self._options.until
        return False  # a Rotate needs nothing: positions already carry the file

    def _schema_change(self, event: SchemaChange, result: StreamResult) -> None:
        touched = [f"{s}.{t}" for s, t in self._options.mapped_tables if event.touches(s, t)]
        if not touched:
            return
        if self._options.accept_ddl_at is not None and \
                event.position == self._options.accept_ddl_at:
            log.warning("schema change accepted by the operator", kind=event.statement_kind,
                        tables=touched, position=str(event.position))
            return
        # Everything before the DDL is applied; the checkpoint stays before it.
        self._finish(result)
        raise SchemaChangeError(
            f"{event.statement_kind} on mapped table {', '.join(touched)}: the stream stopped "
            "before it; nothing after it was applied",
            table=touched[0],
            position=event.position,
            fix="make the target schema and config/mapping.yaml match the new source table, "
            "run `aurora-sync check`, then continue past this statement with "
            f"`aurora-sync run --accept-ddl {event.position.file}:{event.position.pos}` "
            "(or bootstrap the table again with `aurora-sync bootstrap --tables ...`)",
        )

    def _idle_checkpoint(self, position: Position) -> None:
        if self._batch.transactions or self._flight.busy():
            return
        self._settle()
        if self._last_applied is None:
            return
        if position <= self._last_applied.position:
            return
        if time.monotonic() - self._last_commit < self._options.idle_checkpoint_seconds:
            return
        checkpoint = Checkpoint(position, self._last_applied.commit_ts)
        self._writer.apply((), checkpoint)
        self._last_applied = checkpoint
        self._last_commit = time.monotonic()

    def _wait_seconds(self) -> float:
        if not self._batch.transactions:
            return 0.5
        left_ms = self._options.limits.max_ms - self._batch.age_ms()
        return max(left_ms / 1000.0, 0.0)

    def _flush(self, result: StreamResult) -> None:
        """Hand the batch held to the writer thread, once the one before it has committed."""
        if not self._batch.transactions:
            return
        transactions = self._batch.transactions
        safe, self._batch_safe = self._batch_safe, False
        parts = self._batch.take()
        planner = self._options.planner
        if planner is not None:
            parts = [replace(part, statements=planner(part.ops)) for part in parts]
        # Taken first: if the batch before failed, this one is dropped with the error.
        self._settle()
        self._flight.submit(lambda: self._write_batch(parts, safe, transactions, result))

    def _finish(self, result: StreamResult) -> None:
        """Write the batch held and wait until it has committed."""
        self._flush(result)
        self._settle()

    def _settle(self) -> None:
        """Wait for the batch in flight; if it failed, drop the batch held and raise."""
        self._outcome(self._flight.wait)

    def _check(self) -> None:
        """Raise the error of a batch that failed in flight, without waiting."""
        self._outcome(self._flight.check)

    def _outcome(self, flight: Callable[[], None]) -> None:
        try:
            flight()
        except BaseException:
            # Nothing is written after a failed batch: the batch held goes with it.
            self._batch.take()
            self._batch_safe = False
            raise

    def _write_batch(self, parts: list[BatchPart], safe: bool, transactions: int,
                     result: StreamResult) -> None:
        """The writer thread's job: one batch's target transactions, in order."""
        for part in parts:
            self._write(part, safe)
        result.batches += 1
        self._last_commit = time.monotonic()
        log.debug("batch applied", transactions=transactions,
                  position=str(self._last_applied.position) if self._last_applied else None)

    def _write(self, part: BatchPart, safe: bool) -> None:
        try:
            applied = self._writer.apply(part.ops, part.checkpoint, position=part.position,
                                         safe_mode=safe, statements=part.statements)
        except RetryableApplyError:
            raise
        except ApplyError as exc:
            pieces = part.pieces()
            if not pieces:
                raise
            # Which transaction is it? One by one: those before it commit, and its own
            # error names its position with the checkpoint right before it.
            log.warning("batch refused; applying its transactions one by one",
                        transactions=part.transactions, reason=exc.reason)
            for piece in pieces:
                self._write(piece, safe)
            return
        if part.checkpoint is not None:
            self._last_applied = part.checkpoint
            self._observer.batch_applied(applied, part.transactions, part.checkpoint)

    # --- the reader thread -----------------------------------------------------------------

    def _start_reader(self, start: Position) -> _Reader:
        events: Handoff[StreamEvent | _End] = Handoff(self._options.queue_transactions)
        source = self._open_source(start)
        reader = _Reader(threading.Thread(), source, events)
        reader.thread = threading.Thread(
            target=_pump, args=(reader,), name="aurora-sync-binlog", daemon=True
        )
        reader.thread.start()
        return reader

    def _stop_reader(self, reader: _Reader) -> None:
        reader.halt.set()
        reader.source.close()
        # Unblock a reader waiting on a full queue.
        while reader.thread.is_alive():
            try:
                reader.events.get_nowait()
            except queue.Empty:
                reader.thread.join(timeout=0.1)


def _pump(reader: _Reader) -> None:
    end = _End()
    try:
        for event in reader.source:
            if reader.halt.is_set():
                return
            _put(reader, event)
    except Exception as exc:  # noqa: BLE001 - handed to the apply loop, which raises it
        end.error = exc
    if not reader.halt.is_set():
        _put(reader, end)


def _put(reader: _Reader, item: StreamEvent | _End) -> None:
    while not reader.halt.is_set():
        try:
            reader.events.put(item, timeout=0.2)
        except queue.Full:
            continue
        return
