"""The batcher keeps MemoryTarget's semantics while merging and grouping operations."""

from __future__ import annotations

import copy
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.apply.batcher import (
    Batch,
    BatchLimits,
    Planner,
    StatementLimits,
    coalesce,
    merge_upserts,
    op_bytes,
    plan,
)
from sync.model import (
    Checkpoint,
    Delete,
    DeleteWhere,
    Eq,
    InSelect,
    Position,
    Reset,
    TableRef,
    UpdateWhere,
    Upsert,
)
from sync.testing.memtarget import MemoryTarget

T1 = TableRef("db1", "t1")
T2 = TableRef("db1", "t2")
UPDATE_CHOICES = [("x",), ("x", "w"), ("w",), ()]
RESET_CHOICES = [
    (),
    (Reset("w", {"r": None}),),
    (Reset("w", {"r": 0, "x": 9}),),
    (Reset("x", {"w": 5}), Reset("w", {"r": 7})),
]


def identity(name: str) -> str:
    return name


SIGNATURES = [(u, r) for u in UPDATE_CHOICES for r in RESET_CHOICES]


@st.composite
def t1_upsert(draw: st.DrawFn, signatures: list[tuple[object, ...]] = SIGNATURES) -> Upsert:
    key = draw(st.integers(0, 1))
    row = {"id": key, "x": draw(st.integers(0, 3)), "w": draw(st.integers(0, 2)),
           "r": draw(st.integers(0, 2))}
    updates, resets = draw(st.sampled_from(signatures))
    return Upsert(T1, ("id",), (key,), row, updates, resets)  # type: ignore[arg-type]


@st.composite
def t2_upsert(draw: st.DrawFn) -> Upsert:
    a, b = draw(st.integers(0, 2)), draw(st.sampled_from(["p", "q"]))
    return Upsert(T2, ("a", "b"), (a, b), {"a": a, "b": b, "v": draw(st.integers(0, 3))},
                  ("v",))


deletes = st.one_of(
    st.builds(lambda k: Delete(T1, ("id",), (k,)), st.integers(0, 3)),
    st.builds(lambda a, b: Delete(T2, ("a", "b"), (a, b)), st.integers(0, 2),
              st.sampled_from(["p", "q"])),
)
barriers = st.one_of(
    st.builds(lambda v, n: UpdateWhere(T1, (Eq("x", v),), {"r": n}),
              st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2)),
    st.builds(lambda w: DeleteWhere(T2, (InSelect("a", T1, "id", (Eq("w", w),)),)),
              st.integers(0, 2)),
)


@st.composite
def ops_strategy(draw: st.DrawFn) -> list[object]:
    # Few signatures per example, so that upserts of one key often can be merged.
    signatures = draw(st.lists(st.sampled_from(SIGNATURES), min_size=1, max_size=2))
    upsert = t1_upsert(signatures)
    one = st.one_of(upsert, upsert, upsert, upsert, t2_upsert(), deletes, barriers)
    return draw(st.lists(one, max_size=24))


def initial(ops: list[Upsert]) -> MemoryTarget:
    target = MemoryTarget()
    target.apply(ops)
    return target


@settings(max_examples=600, deadline=None)
@given(start=st.lists(st.one_of(t1_upsert(), t2_upsert()), min_size=1, max_size=8),
       ops=ops_strategy())
def test_coalesced_and_planned_ops_give_the_reference_state(
    start: list[Upsert], ops: list[Upsert]
) -> None:
    reference = initial(start)
    reference.apply(ops)

    merged = initial(start)
    merged.apply(coalesce(ops))
    assert merged.snapshot() == reference.snapshot()

    statements = plan(ops, identity, StatementLimits(max_rows=3, max_bytes=400))
    planned = initial(start)
    planned.apply(op for statement in statements for op in statement.ops)
    assert planned.snapshot() == reference.snapshot()
    for statement in statements:
        assert len(statement.ops) <= 3
        assert len({op.target for op in statement.ops}) == 1


@st.composite
def same_key_pair(draw: st.DrawFn) -> tuple[Upsert, Upsert]:
    updates, resets = draw(st.sampled_from(SIGNATURES))

    def one() -> Upsert:
        row = {"id": 1, "x": draw(st.integers(0, 2)), "w": draw(st.integers(0, 2)),
               "r": draw(st.integers(0, 2))}
        return Upsert(T1, ("id",), (1,), row, updates, resets)  # type: ignore[arg-type]

    return one(), one()


@settings(max_examples=1500, deadline=None)
@given(existing=st.one_of(st.none(), t1_upsert([((), ())])), pair=same_key_pair())
def test_a_merged_upsert_has_the_effect_of_the_pair(
    existing: Upsert | None, pair: tuple[Upsert, Upsert]
) -> None:
    merged = merge_upserts(*pair)
    if merged is None:
        return
    start = [existing] if existing is not None and existing.key == (1,) else []
    sequential, single = initial(start), initial(start)
    sequential.apply(pair)
    single.apply([merged])
    assert single.snapshot() == sequential.snapshot()


def test_repeated_upserts_of_one_key_become_one_row() -> None:
    ops = [Upsert(T1, ("id",), (1,), {"id": 1, "x": n, "w": 0, "r": 0}, ("x",))
           for n in range(5)]
    assert coalesce(ops) == [Upsert(T1, ("id",), (1,), {"id": 1, "x": 4, "w": 0, "r": 0},
                                    ("x",))]


def test_insert_only_columns_keep_the_first_value_when_merged() -> None:
    first = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 0, "r": 5}, ("x",))
    second = Upsert(T1, ("id",), (1,), {"id": 1, "x": 2, "w": 0, "r": 6}, ("x",))
    merged = merge_upserts(first, second)
    assert merged is not None
    assert merged.row == {"id": 1, "x": 2, "w": 0, "r": 5}


def test_a_changed_watch_value_is_never_merged() -> None:
    reset = (Reset("w", {"r": None}),)
    first = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 0, "r": 5}, ("w",), reset)
    second = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 1, "r": 5}, ("w",), reset)
    assert merge_upserts(first, second) is None


def test_upserts_with_another_key_between_are_not_merged() -> None:
    # A unique value may move through the row between them (users.email swap).
    a1 = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 0, "r": 0}, ("x",))
    b = Upsert(T1, ("id",), (2,), {"id": 2, "x": 0, "w": 0, "r": 0}, ("x",))
    a2 = Upsert(T1, ("id",), (1,), {"id": 1, "x": 2, "w": 0, "r": 0}, ("x",))
    assert coalesce([a1, b, a2]) == [a1, b, a2]


def test_a_delete_takes_the_place_of_the_first_queued_op_of_its_key() -> None:
    a1 = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 0, "r": 0}, ("x",))
    b = Upsert(T1, ("id",), (2,), {"id": 2, "x": 0, "w": 0, "r": 0}, ("x",))
    a2 = Upsert(T1, ("id",), (1,), {"id": 1, "x": 2, "w": 0, "r": 0}, ("x",))
    gone = Delete(T1, ("id",), (1,))
    assert coalesce([a1, b, a2, gone]) == [gone, b]


def test_barriers_flush_everything_queued_before_them() -> None:
    up = Upsert(T2, ("a", "b"), (1, "p"), {"a": 1, "b": "p", "v": 1}, ("v",))
    barrier = DeleteWhere(T2, (InSelect("a", T1, "id", (Eq("w", 1),)),))
    later = Upsert(T1, ("id",), (1,), {"id": 1, "x": 1, "w": 1, "r": 0}, ("x",))
    statements = plan([up, barrier, later], identity)
    assert [s.kind for s in statements] == ["upsert", "delete_where", "upsert"]


def test_consecutive_upserts_share_one_statement_up_to_the_row_limit() -> None:
    ops = [Upsert(T1, ("id",), (k,), {"id": k, "x": 0, "w": 0, "r": 0}, ("x",))
           for k in range(10)]
    statements = plan(ops, identity, StatementLimits(max_rows=4))
    assert [len(s.ops) for s in statements] == [4, 4, 2]
    assert statements[0].sql.count("),(") == 3


def test_statements_stay_under_the_byte_limit() -> None:
    ops = [Upsert(T1, ("id",), (k,), {"id": k, "x": "v" * 100, "w": 0, "r": 0}, ("x",))
           for k in range(50)]
    statements = plan(ops, identity, StatementLimits(max_rows=5000, max_bytes=1000))
    assert len(statements) > 5
    assert all(len(s.sql) <= 1000 for s in statements)
    assert sum(len(s.ops) for s in statements) == 50


# --- Batch ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cp(n: int) -> Checkpoint:
    return Checkpoint(Position("binlog.000001", n), datetime(2024, 1, 1))


def rows(n: int, start: int = 0) -> list[Upsert]:
    return [Upsert(T1, ("id",), (k,), {"id": k, "x": "y" * 50, "w": 0, "r": 0}, ("x",))
            for k in range(start, start + n)]


def test_a_batch_is_full_by_rows_bytes_or_age() -> None:
    clock = FakeClock()
    batch = Batch(BatchLimits(max_rows=10, max_bytes=10_000, max_ms=100), clock=clock)
    assert not batch.full()
    batch.add(rows(5), cp(1))
    assert not batch.full()
    clock.now = 0.2
    assert batch.full()
    batch.take()
    batch.add(rows(10), cp(2))
    assert batch.full()
    batch.take()
    batch.add(rows(1, 0)[:1] * 1, cp(3))
    batch.add([Upsert(T1, ("id",), (9,), {"id": 9, "x": "z" * 20_000}, ("x",))], cp(4))
    assert batch.full()


def test_whole_transactions_make_one_part_with_the_last_checkpoint() -> None:
    batch = Batch(BatchLimits(max_rows=100, max_bytes=100_000, max_ms=100))
    batch.add(rows(3), cp(1))
    batch.add(rows(4, 3), cp(2))
    parts = batch.take()
    assert len(parts) == 1
    assert parts[0].checkpoint == cp(2)
    assert parts[0].transactions == 2
    assert len(parts[0].ops) == 7
    assert batch.take() == []


def test_only_a_transaction_over_the_byte_budget_is_split_and_checkpointed_at_its_end() -> None:
    budget = 2_000
    batch = Batch(BatchLimits(max_rows=100_000, max_bytes=budget, max_ms=100))
    small, huge, after = rows(3), rows(200, 100), rows(2, 900)
    batch.add(small, cp(1))
    batch.add(huge, cp(2))
    batch.add(after, cp(3))
    parts = batch.take()
    assert parts[0].ops == tuple(small) and parts[0].checkpoint == cp(1)
    middle = parts[1:-1]
    assert len(middle) > 1
    assert [p.checkpoint for p in middle] == [None] * (len(middle) - 1) + [cp(2)]
    assert all(p.position == cp(2).position for p in middle)
    assert tuple(op for p in middle for op in p.ops) == tuple(huge)
    assert all(sum(map(op_bytes, p.ops)) <= budget for p in middle)
    assert parts[-1].ops == tuple(after) and parts[-1].checkpoint == cp(3)


def test_transactions_are_never_split_when_they_fit() -> None:
    batch = Batch(BatchLimits(max_rows=100_000, max_bytes=1_000, max_ms=100))
    first, second = rows(8), rows(8, 50)
    batch.add(first, cp(1))
    batch.add(second, cp(2))
    parts = batch.take()
    assert [p.ops for p in parts] == [tuple(first), tuple(second)]
    assert [p.checkpoint for p in parts] == [cp(1), cp(2)]
    assert copy.copy(parts[0]) == parts[0]


def _named(logical: str) -> str:
    return f"x_{logical}"


def test_statements_planned_ahead_are_the_writers_own() -> None:
    ops = [Upsert(T1, ("id",), (i,), {"id": i, "x": i}, ("x",)) for i in range(5)]
    ops.append(Delete(T2, ("id",), (1,)))
    limits = StatementLimits(max_rows=2)
    planned = Planner(_named, limits)(tuple(ops))
    assert planned == tuple(plan(ops, _named, limits))
    assert planned is not None and "`x_" in str(planned[0].sql) and len(planned) == 4


def test_operations_without_sql_are_left_for_the_writer_to_plan_and_refuse() -> None:
    ops = (Upsert(T1, ("id",), (1,), {"id": 1, "x": object()}, ("x",)),)
    assert Planner(_named, StatementLimits())(ops) is None
