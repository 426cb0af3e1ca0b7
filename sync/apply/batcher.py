"""Ordered target operations → ordered SQL statements, and batches of source transactions.

:func:`plan` keeps the reference semantics of :class:`~sync.testing.memtarget.MemoryTarget`:

- per target table the order of operations is kept; tables are independent (the targets
  declare no foreign keys), so their queues are flushed one table after another;
- ``UpdateWhere`` / ``DeleteWhere`` are barriers: they may read any table through
  ``InSelect``, so every queued operation is written before them;
- consecutive upserts of one table with one signature (columns, update columns, resets)
  become one multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``, which handles its rows in
  order, so a key repeated in it, or a unique value moved between rows, ends as the
  sequence would;
- operations on one key are merged only where the result cannot differ, even under unique
  secondary keys the reference model does not know: a delete replaces the earlier queued
  operations of its key *at the place of the first one* (it only frees unique values
  earlier); an upsert merges into the directly preceding upsert of its key (nothing of
  another row in between) when its watched values and update columns make it equivalent;
- within one table, :func:`plan` writes the deletes before the upserts: a delete is always
  the first queued operation of its key, so each key keeps its order, and moving a delete
  earlier only frees unique values sooner. Interleaved deletes and upserts would otherwise
  cut the table's upserts into many small statements (one round trip each).

:class:`Batch` collects whole source transactions until a budget is reached and cuts them
into target transactions; only one source transaction larger than the byte budget is split,
and only its last part carries the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from sync.apply import sql
from sync.apply.sql import Resolve, Statement
from sync.model import Checkpoint, Delete, Key, Position, TableRef, TargetOp, Upsert

# Far below TiDB's 6 MiB row and 100 MiB transaction limits, and any max_allowed_packet.
DEFAULT_STATEMENT_BYTES: Final = 4 * 1024 * 1024
_FIXED_OP_BYTES: Final = 24


@dataclass(frozen=True, slots=True)
class StatementLimits:
    max_rows: int = 5000
    max_bytes: int = DEFAULT_STATEMENT_BYTES


# --- coalescing -------------------------------------------------------------------------


def _signature(op: Upsert) -> tuple[Any, ...]:
    return (tuple(op.row), op.key_columns, op.update_columns, op.resets)


def merge_upserts(first: Upsert, second: Upsert) -> Upsert | None:
    """One upsert with the effect of ``first`` then ``second`` on one key, or None.

    Equivalent when the second changes no watched value (so it triggers no reset the first
    did not) and no reset writes an update column or a watched one (the second's update
    would win over the first's reset, but one upsert applies resets last).
    """
    if first.key != second.key or _signature(first) != _signature(second):
        return None
    watched = {reset.watch for reset in first.resets}
    for reset in first.resets:
        if first.row.get(reset.watch) != second.row.get(reset.watch):
            return None
        written = set(reset.values)
        if not written.isdisjoint(first.update_columns) or not written.isdisjoint(watched):
            return None
    updates = set(second.update_columns)
    row = {c: (second.row[c] if c in updates else v) for c, v in first.row.items()}
    return Upsert(
        target=first.target,
        key_columns=first.key_columns,
        key=first.key,
        row=row,
        update_columns=first.update_columns,
        resets=first.resets,
    )


class _TableQueue:
    """The keyed operations queued for one table, with the places of each key."""

    def __init__(self) -> None:
        self.slots: list[Upsert | Delete | None] = []
        self.places: dict[Key, list[int]] = {}

    def add(self, op: Upsert | Delete) -> None:
        places = self.places.setdefault(op.key, [])
        if isinstance(op, Delete) and places:
            first, *rest = places
            self.slots[first] = op
            for index in rest:
                self.slots[index] = None
            del places[1:]
            return
        last = self.slots[-1] if self.slots else None
        if isinstance(op, Upsert) and isinstance(last, Upsert) and places:
            merged = merge_upserts(last, op)
            if merged is not None and places[-1] == len(self.slots) - 1:
                self.slots[-1] = merged
                return
        places.append(len(self.slots))
        self.slots.append(op)

    def ops(self) -> list[Upsert | Delete]:
        return [op for op in self.slots if op is not None]

    def deletes_first(self) -> list[Upsert | Delete]:
        deletes = [op for op in self.slots if isinstance(op, Delete)]
        if not deletes:
            return self.ops()
        return deletes + [op for op in self.slots if isinstance(op, Upsert)]


def coalesce(ops: Iterable[TargetOp]) -> list[TargetOp]:
    """``ops`` with same-key operations merged, barriers kept in place (for tests)."""
    return _coalesced(ops, _TableQueue.ops)


def _coalesced(
    ops: Iterable[TargetOp], take: Callable[[_TableQueue], list[Upsert | Delete]]
) -> list[TargetOp]:
    out: list[TargetOp] = []
    queues: dict[TableRef, _TableQueue] = {}
    for op in ops:
        if isinstance(op, Upsert | Delete):
            queue = queues.get(op.target)
            if queue is None:
                queue = queues[op.target] = _TableQueue()
            queue.add(op)
            continue
        for queue in queues.values():
            out.extend(take(queue))
        queues.clear()
        out.append(op)
    for queue in queues.values():
        out.extend(take(queue))
    return out


# --- statements -------------------------------------------------------------------------


def plan(
    ops: Iterable[TargetOp], resolve: Resolve, limits: StatementLimits = StatementLimits()
) -> list[Statement]:
    """The statements that write ``ops`` with the reference semantics."""
    statements: list[Statement] = []
    for group in _runs(_coalesced(ops, _TableQueue.deletes_first)):
        statements.extend(_group_statements(group, resolve, limits))
    return statements


@dataclass(frozen=True, slots=True)
class Planner:
    """Makes the statements of a batch's operations ahead, with the writer's database names
    and statement limits: the stream builds them while the previous batch is written, and
    hands them to the writer with the operations (``TargetWriter.apply(statements=...)``)."""

    resolve: Resolve
    limits: StatementLimits

    def __call__(self, ops: Sequence[TargetOp]) -> tuple[Statement, ...] | None:
        """The statements of ``ops``, or None when a value or a name has no SQL (the writer
        then plans them itself and raises, naming the batch, as it always did)."""
        try:
            return tuple(plan(ops, self.resolve, self.limits))
        except (ValueError, TypeError):
            return None


def _runs(ops: list[TargetOp]) -> Iterable[list[TargetOp]]:
    """Maximal runs of one table and one kind (and one upsert signature)."""
    run: list[TargetOp] = []
    run_key: tuple[Any, ...] | None = None
    for op in ops:
        key = _run_key(op)
        if run and (key is None or key != run_key):
            yield run
            run = []
        run.append(op)
        run_key = key
    if run:
        yield run


def _run_key(op: TargetOp) -> tuple[Any, ...] | None:
    if isinstance(op, Upsert):
        return (op.target, sql.UPSERT, _signature(op))
    if isinstance(op, Delete):
        return (op.target, sql.DELETE, op.key_columns)
    return None


def _group_statements(
    group: list[TargetOp], resolve: Resolve, limits: StatementLimits
) -> list[Statement]:
    first = group[0]
    if isinstance(first, Upsert):
        head, tail = sql.upsert_head(first, resolve)
        parts = [sql.row_values(op) for op in cast(list[Upsert], group)]
        return _chunked(group, head=head, parts=parts, tail=tail, kind=sql.UPSERT, limits=limits)
    if isinstance(first, Delete):
        head = sql.delete_head(first, resolve)
        parts = [sql.key_tuple_sql(op.key) for op in cast(list[Delete], group)]
        return _chunked(group, head=head, parts=parts, tail=")", kind=sql.DELETE, limits=limits)
    return [sql.single_statement(first, resolve)]


def _chunked(
    group: list[TargetOp],
    *,
    head: str,
    parts: list[str],
    tail: str,
    kind: str,
    limits: StatementLimits,
) -> list[Statement]:
    out: list[Statement] = []
    start, size, fixed = 0, 0, len(head) + len(tail)
    target = group[0].target
    for index, part in enumerate(parts):
        rows = index - start
        if rows and (rows >= limits.max_rows or fixed + size + len(part) > limits.max_bytes):
            out.append(Statement(head + ",".join(parts[start:index]) + tail, target, kind,
                                 tuple(group[start:index])))
            start, size = index, 0
        size += len(part) + 1
    out.append(Statement(head + ",".join(parts[start:]) + tail, target, kind,
                         tuple(group[start:])))
    return out


# --- batches of source transactions ----------------------------------------------------


def op_bytes(op: TargetOp) -> int:
    """A cheap estimate of the bytes ``op`` adds to a target transaction: 8 per value,
    the length of text and bytes values."""
    kind = type(op)
    values: Collection[Any]
    if kind is Upsert:
        values = cast(Upsert, op).row.values()
    elif kind is Delete:
        values = cast(Delete, op).key
    else:
        return 256
    size = _FIXED_OP_BYTES + 8 * len(values)
    # A plain loop with exact type tests: this runs for every operation of the stream.
    for value in values:
        vtype = type(value)
        if vtype is str or vtype is bytes:
            size += len(value) - 8
    return size


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_rows: int
    max_bytes: int
    max_ms: int

    @classmethod
    def from_settings(cls, settings: Any) -> BatchLimits:
        return cls(settings.batch_max_rows, settings.batch_max_bytes, settings.batch_max_ms)


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One target transaction. ``checkpoint`` is None on every part of a split source
    transaction but its last: a crash in between is repaired by replaying it whole."""

    ops: tuple[TargetOp, ...]
    checkpoint: Checkpoint | None
    position: Position
    transactions: int
    group: tuple[_Pending, ...] = ()
    """The source transactions of a part holding several (see :meth:`pieces`)."""
    statements: tuple[Statement, ...] | None = None
    """``ops`` as the writer's statements, made ahead by a :class:`Planner` (None: the
    writer makes them)."""

    def pieces(self) -> tuple[BatchPart, ...]:
        """The part's source transactions, each a part of its own with its checkpoint:
        applied one by one when the target refuses the part, so that the error names the
        one transaction it is about and the checkpoint stops right before it. Built only
        then: making them for every batch cost a tenth of the stream's time."""
        return tuple(_whole([txn]) for txn in self.group) if len(self.group) > 1 else ()


@dataclass(slots=True)
class _Pending:
    ops: Sequence[TargetOp]
    checkpoint: Checkpoint
    size: int


@dataclass
class Batch:
    """Whole source transactions waiting to be written together."""

    limits: BatchLimits
    clock: Callable[[], float] = time.monotonic
    _pending: list[_Pending] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    _started: float | None = None

    def add(self, ops: Sequence[TargetOp], checkpoint: Checkpoint) -> None:
        """Add one whole source transaction that ends at ``checkpoint``."""
        if self._started is None:
            self._started = self.clock()
        size = sum(map(op_bytes, ops))
        self._pending.append(_Pending(ops, checkpoint, size))
        self.rows += len(ops)
        self.bytes += size

    @property
    def transactions(self) -> int:
        return len(self._pending)

    def age_ms(self) -> float:
        return 0.0 if self._started is None else (self.clock() - self._started) * 1000

    def full(self) -> bool:
        if not self._pending:
            return False
        return self.at_budget() or self.age_ms() >= self.limits.max_ms

    def at_budget(self) -> bool:
        """At its row or byte budget (its age aside)."""
        return self.rows >= self.limits.max_rows or self.bytes >= self.limits.max_bytes

    def take(self) -> list[BatchPart]:
        """The target transactions to write, in order; the batch is empty afterwards."""
        parts = _cut(self._pending, self.limits.max_bytes)
        self._pending, self.rows, self.bytes, self._started = [], 0, 0, None
        return parts


def _cut(pending: list[_Pending], budget: int) -> list[BatchPart]:
    parts: list[BatchPart] = []
    group: list[_Pending] = []
    size = 0
    for txn in pending:
        if group and size + txn.size > budget:
            parts.append(_whole(group))
            group, size = [], 0
        if txn.size > budget:
            parts.extend(_split(txn, budget))
            continue
        group.append(txn)
        size += txn.size
    if group:
        parts.append(_whole(group))
    return parts


def _whole(group: list[_Pending]) -> BatchPart:
    ops = tuple(op for txn in group for op in txn.ops)
    end = group[-1].checkpoint
    return BatchPart(ops, end, end.position, len(group), tuple(group))


def _split(txn: _Pending, budget: int) -> list[BatchPart]:
    chunks: list[list[TargetOp]] = [[]]
    size = 0
    for op in txn.ops:
        cost = op_bytes(op)
        if chunks[-1] and size + cost > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(op)
        size += cost
    end = txn.checkpoint
    return [
        BatchPart(tuple(chunk), end if i == len(chunks) - 1 else None, end.position, 1)
        for i, chunk in enumerate(chunks)
    ]


__all__ = [
    "Batch",
    "BatchLimits",
    "BatchPart",
    "Planner",
    "StatementLimits",
    "coalesce",
    "merge_upserts",
    "op_bytes",
    "plan",
]
