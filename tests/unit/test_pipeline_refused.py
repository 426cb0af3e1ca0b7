"""A batch the target refuses: the stream applies its source transactions one by one, so
those before the refused one commit, the error names that one transaction's position, and
the checkpoint stops right before it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest

from sync.apply.batcher import BatchLimits
from sync.apply.writer import ApplyResult
from sync.errors import ApplyError
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
REFUSED = 13


class Transactions:
    def __init__(self, events: Sequence[StreamEvent]) -> None:
        self.events = events

    def __iter__(self) -> Iterator[StreamEvent]:
        return iter(self.events)

    def close(self) -> None:
        pass


class OneOpPerRow:
    def map_transaction(self, txn: SourceTransaction, *, safe_mode: bool) -> list[TargetOp]:
        return [Upsert(T, ("id",), (c.image["id"],), dict(c.image), ("name",))
                for c in txn.changes]


class RefusingWriter(MemoryWriter):
    """Refuses, as a target does with error 1406, every batch writing key ``REFUSED``."""

    def apply(self, ops: Sequence[TargetOp], checkpoint: Checkpoint | None, *,
              position: Position | None = None, state: Sequence[object] = (),
              safe_mode: bool = False, statements: object = None) -> ApplyResult:
        if any(isinstance(op, Upsert) and op.key == (REFUSED,) for op in ops):
            raise ApplyError("the target refused the batch with error 1406: Data too long",
                             table="gateway_db.users", key={"id": REFUSED},
                             position=position or (checkpoint.position if checkpoint else None))
        return super().apply(ops, checkpoint, position=position, safe_mode=safe_mode)


def txn(number: int) -> SourceTransaction:
    change = RowChange("aurora", "users", Op.INSERT, None, {"id": number, "name": "n"}, TS)
    return SourceTransaction((change,), Position("binlog.000001", 100 * number), TS)


def test_a_refused_batch_commits_the_transactions_before_the_refused_one() -> None:
    events = [txn(n) for n in range(10, 17)]
    writer = RefusingWriter()
    pipeline = StreamPipeline(
        open_source=lambda _start: Transactions(events), mapper=OneOpPerRow(), writer=writer,
        # Every transaction in one batch: only the rows or the age could cut it, and neither does.
        options=StreamOptions(limits=BatchLimits(1000, 1 << 20, 60_000), mapped_tables=()),
    )
    with pytest.raises(ApplyError) as caught:
        pipeline.run(Checkpoint(Position("binlog.000001", 4)))
    assert caught.value.position == txn(REFUSED).end
    assert caught.value.key == {"id": REFUSED}
    assert writer.checkpoint == Checkpoint(txn(REFUSED - 1).end, TS)
    assert sorted(writer.target.tables[T]) == [(10,), (11,), (12,)]
