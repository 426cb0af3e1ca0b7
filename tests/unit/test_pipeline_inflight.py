"""One batch in flight: the writer thread writes batch N while the apply loop builds N+1.

Each test makes the overlap happen for sure (the writer waits until the apply loop has
mapped a later transaction) and checks the pipeline's guarantees: batches commit in order
with their checkpoints, nothing after a failed batch is applied, a stop or ``until`` waits
for the batch in flight and commits the open one, and a failure is raised even when no
further event comes."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import pytest

from sync.apply.batcher import BatchLimits, Planner, StatementLimits, plan
from sync.apply.writer import ApplyResult
from sync.daemon import HEARTBEAT_TABLE, TransactionMapper
from sync.errors import ApplyError, MappingError
from sync.gc_budget import GEN0_THRESHOLD, fewer_collections
from sync.model import (
    Checkpoint,
    Op,
    Position,
    RowChange,
    SourceTransaction,
    TableRef,
    TargetOp,
    Upsert,
)
from sync.pipeline import StreamOptions, StreamPipeline
from sync.source.events import StreamEvent
from sync.testing.memwriter import MemoryWriter

T = TableRef("gateway_db", "users")
TS = datetime(2024, 1, 1)
START = Checkpoint(Position("binlog.000001", 4))
WAIT = 5.0


def txn(number: int) -> SourceTransaction:
    change = RowChange("aurora", "users", Op.INSERT, None, {"id": number, "name": "n"}, TS)
    return SourceTransaction((change,), Position("binlog.000001", 100 * number), TS)


def key_of(ops: Sequence[TargetOp]) -> list[int]:
    return [op.key[0] for op in ops if isinstance(op, Upsert)]


class Events:
    """The transactions given, then (``hold``) nothing more until closed: an idle source."""

    def __init__(self, events: Sequence[StreamEvent], *, hold: bool = False) -> None:
        self.events = events
        self.hold = hold
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[StreamEvent]:
        yield from self.events
        if self.hold:
            self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


class Mapper:
    """One upsert per row; ``on_map`` is called with each transaction's number first."""

    def __init__(self, on_map: Callable[[int], None] = lambda _n: None) -> None:
        self.on_map = on_map
        self.mapped: dict[int, threading.Event] = {}

    def map_transaction(self, txn: SourceTransaction, *, safe_mode: bool) -> list[TargetOp]:
        number = txn.changes[0].image["id"]
        self.on_map(number)
        self.seen(number).set()
        return [Upsert(T, ("id",), (c.image["id"],), dict(c.image), ("name",))
                for c in txn.changes]

    def seen(self, number: int) -> threading.Event:
        return self.mapped.setdefault(number, threading.Event())


class Writer(MemoryWriter):
    """Records each apply; ``before`` runs first with the batch's keys (to wait or fail)."""

    def __init__(self, before: Callable[[list[int]], None] = lambda _keys: None) -> None:
        super().__init__()
        self.before = before
        self.written: list[list[int]] = []
        self.threads: set[str] = set()

    def apply(self, ops: Sequence[TargetOp], checkpoint: Checkpoint | None, *,
              position: Position | None = None, state: Sequence[object] = (),
              safe_mode: bool = False, statements: object = None) -> ApplyResult:
        self.threads.add(threading.current_thread().name)
        keys = key_of(ops)
        self.before(keys)
        result = super().apply(ops, checkpoint, position=position, safe_mode=safe_mode)
        self.written.append(keys)
        return result


def pipeline(events: Events, mapper: Mapper, writer: Writer, *, rows: int = 1,
             until: Position | None = None) -> StreamPipeline:
    return StreamPipeline(
        open_source=lambda _start: events, mapper=mapper, writer=writer,
        options=StreamOptions(limits=BatchLimits(rows, 1 << 20, 60_000), mapped_tables=(),
                              until=until),
    )


def refuse(keys: list[int]) -> ApplyError:
    return ApplyError("the target refused the batch with error 1406: Data too long",
                      table="gateway_db.users", key={"id": keys[0]},
                      position=txn(keys[0]).end)


def test_batches_commit_in_order_on_the_writer_thread() -> None:
    mapper = Mapper()

    def slow(keys: list[int]) -> None:
        # Batch n is written only once the loop has mapped n + 1: always one in flight.
        if keys[0] < 19:
            assert mapper.seen(keys[0] + 1).wait(WAIT)

    writer = Writer(slow)
    result = pipeline(Events([txn(n) for n in range(10, 20)]), mapper, writer).run(START)
    assert writer.written == [[n] for n in range(10, 20)]
    assert result.checkpoint == writer.checkpoint == Checkpoint(txn(19).end, TS)
    assert result.batches == 10 and result.stopped_by == "end"
    assert writer.threads and threading.current_thread().name not in writer.threads


def test_a_batch_failing_in_flight_halts_before_it_and_drops_what_follows() -> None:
    mapper = Mapper()

    def fail_13(keys: list[int]) -> None:
        if keys == [13]:
            # The loop has built the next batch meanwhile: it must never be written.
            assert mapper.seen(14).wait(WAIT)
            raise refuse(keys)

    writer = Writer(fail_13)
    with pytest.raises(ApplyError) as caught:
        pipeline(Events([txn(n) for n in range(10, 20)]), mapper, writer).run(START)
    assert caught.value.position == txn(13).end
    assert writer.written == [[10], [11], [12]]
    assert writer.checkpoint == Checkpoint(txn(12).end, TS)
    assert sorted(writer.target.tables[T]) == [(10,), (11,), (12,)]


def test_a_refused_batch_in_flight_is_applied_one_transaction_at_a_time() -> None:
    mapper = Mapper()

    def refuse_13(keys: list[int]) -> None:
        if 13 in keys:
            raise refuse([13])

    writer = Writer(refuse_13)
    with pytest.raises(ApplyError) as caught:
        pipeline(Events([txn(n) for n in range(10, 20)]), mapper, writer, rows=4).run(START)
    assert caught.value.position == txn(13).end
    # The batch 10-13 is refused, then its transactions go one by one up to 13.
    assert writer.written == [[10], [11], [12]]
    assert writer.checkpoint == Checkpoint(txn(12).end, TS)


def test_stop_while_a_batch_is_in_flight_commits_it_and_the_open_batch() -> None:
    stop = threading.Event()
    in_flight = threading.Event()

    def stop_during_12(number: int) -> None:
        if number == 12:
            # Batch 10-11 is being written: the stop arrives now, with 12 still to add.
            assert in_flight.wait(WAIT)
            stop.set()

    def slow_first(keys: list[int]) -> None:
        if keys == [10, 11]:
            in_flight.set()
            time.sleep(0.2)

    mapper, writer = Mapper(stop_during_12), Writer(slow_first)
    events = Events([txn(n) for n in range(10, 20)])
    result = pipeline(events, mapper, writer, rows=2).run(START, stop=stop)
    assert result.stopped_by == "stop"
    assert writer.written == [[10, 11], [12]]
    assert result.checkpoint == writer.checkpoint == Checkpoint(txn(12).end, TS)


def test_until_waits_for_the_batch_in_flight() -> None:
    mapper = Mapper()

    def slow(keys: list[int]) -> None:
        time.sleep(0.05)

    writer = Writer(slow)
    result = pipeline(Events([txn(n) for n in range(10, 20)]), mapper, writer,
                      until=txn(15).end).run(START)
    assert result.stopped_by == "until"
    assert writer.written == [[n] for n in range(10, 16)]
    assert result.checkpoint == writer.checkpoint == Checkpoint(txn(15).end, TS)


def test_an_error_in_the_loop_waits_for_the_batch_in_flight_to_commit() -> None:
    def bad_14(number: int) -> None:
        if number == 14:
            raise MappingError("no route for the row", table="aurora.users")

    def slow(keys: list[int]) -> None:
        time.sleep(0.05)

    writer = Writer(slow)
    with pytest.raises(MappingError):
        pipeline(Events([txn(n) for n in range(10, 20)]), Mapper(bad_14), writer).run(START)
    assert writer.written == [[10], [11], [12], [13]]
    assert writer.checkpoint == Checkpoint(txn(13).end, TS)


def test_a_failure_in_flight_is_raised_while_the_source_is_idle() -> None:
    def fail(keys: list[int]) -> None:
        raise refuse(keys)

    events = Events([txn(10)], hold=True)
    began = time.monotonic()
    with pytest.raises(ApplyError):
        StreamPipeline(
            open_source=lambda _start: events, mapper=Mapper(), writer=Writer(fail),
            # Written by age (20 ms), then no event comes: the loop must notice by itself.
            options=StreamOptions(limits=BatchLimits(1000, 1 << 20, 20), mapped_tables=()),
        ).run(START)
    assert time.monotonic() - began < WAIT


def test_while_a_batch_is_in_flight_the_next_grows_past_its_age() -> None:
    mapper = Mapper(lambda _n: time.sleep(0.002))  # each transaction outlives the age

    def first_waits(keys: list[int]) -> None:
        if keys == [10]:
            assert mapper.seen(15).wait(WAIT)

    class FirstAlone(Events):
        def __iter__(self) -> Iterator[StreamEvent]:
            yield txn(10)
            time.sleep(0.05)  # batch 10 is written by its age, alone
            yield from (txn(n) for n in range(11, 20))

    writer = Writer(first_waits)
    result = StreamPipeline(
        open_source=lambda _start: FirstAlone([]), mapper=mapper, writer=writer,
        # A 1 ms age: each transaction would be its own batch without the one in flight.
        options=StreamOptions(limits=BatchLimits(1000, 1 << 20, 1), mapped_tables=()),
    ).run(START)
    assert writer.written[0] == [10]
    assert len(writer.written[1]) > 1
    assert [k for keys in writer.written for k in keys] == list(range(10, 20))
    assert result.checkpoint == Checkpoint(txn(19).end, TS)


def test_heartbeats_are_released_with_the_batch_holding_them() -> None:
    released: list[datetime] = []

    class NoRows:
        def map_change(self, change: RowChange, *, safe_mode: bool) -> list[TargetOp]:
            return []

    mapper = TransactionMapper(NoRows(), "hb", lambda written, _ts: released.append(written))  # type: ignore[arg-type]
    beats = []
    for n in (1, 2):
        row = {"id": 1, "ts": datetime(2024, 1, 1, 0, 0, n)}
        change = RowChange("hb", HEARTBEAT_TABLE, Op.UPDATE, row, row, TS)
        beats.append(SourceTransaction((change,), Position("binlog.000001", 100 * n), TS))
        mapper.map_transaction(beats[-1], safe_mode=False)
    mapper.applied(beats[0].end)
    assert released == [datetime(2024, 1, 1, 0, 0, 1)]
    mapper.applied(beats[1].end)
    assert released == [datetime(2024, 1, 1, 0, 0, 1), datetime(2024, 1, 1, 0, 0, 2)]


def test_fewer_collections_restores_the_thresholds_once_the_last_user_leaves() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], GEN0_THRESHOLD)
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == max(before[0], GEN0_THRESHOLD)
    assert gc.get_threshold() == before


def test_the_apply_loop_makes_the_statements_the_writer_runs() -> None:
    seen: list[object] = []

    class Recording(Writer):
        def apply(self, ops: Sequence[TargetOp], checkpoint: Checkpoint | None, *,
                  position: Position | None = None, state: Sequence[object] = (),
                  safe_mode: bool = False, statements: object = None) -> ApplyResult:
            seen.append(statements)
            assert statements == tuple(plan(ops, lambda logical: logical, StatementLimits()))
            return super().apply(ops, checkpoint, position=position, safe_mode=safe_mode)

    planner = Planner(lambda logical: logical, StatementLimits())
    writer = Recording()
    StreamPipeline(
        open_source=lambda _start: Events([txn(n) for n in range(10, 14)]), mapper=Mapper(),
        writer=writer,
        options=StreamOptions(limits=BatchLimits(2, 1 << 20, 60_000), mapped_tables=(),
                              planner=planner),
    ).run(START)
    assert len(seen) == 2 and all(seen)
    assert writer.written == [[10, 11], [12, 13]]
