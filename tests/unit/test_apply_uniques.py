"""Safe mode's pre-delete, pure parts: which keys, which holders go, the SQL text."""

from __future__ import annotations

from typing import Any

import pytest

from sync.apply.batcher import plan
from sync.apply.uniques import (
    UniqueKey,
    UniqueValues,
    decidable,
    delete_keys_sql,
    doomed,
    holders_sql,
    read_unique_keys,
)
from sync.model import Delete, Reset, TableRef, TargetOp, Upsert

T = TableRef("logical_db", "t")
EMAIL = UniqueKey("uq_email", ("email",))
PAIR = UniqueKey("uq_pair", ("subject_id", "meta_key"))


def physical(name: str) -> str:
    return {"logical_db": "real_db"}.get(name, name)


def up(key: int, **row: Any) -> Upsert:
    full = {"id": key, "email": None, "subject_id": None, "meta_key": None, "note": None}
    full.update(row)
    return Upsert(T, ("id",), (key,), full, ("email", "subject_id", "meta_key", "note"))


def test_holders_are_read_by_each_distinct_non_null_value() -> None:
    ops = [up(1, email="tmp"), up(2, email="a"), up(1, email="it's"), up(3), up(4, email="a")]
    assert holders_sql(ops, EMAIL, physical) == (
        "SELECT `id`, `email` FROM `real_db`.`t` WHERE `email` IN ('tmp','a','it\\'s')"
    )
    assert holders_sql([up(1), up(2)], EMAIL, physical) is None


def test_a_composite_key_skips_values_with_a_null_in_them() -> None:
    ops = [up(1, subject_id=7, meta_key="colour"), up(2, subject_id=None, meta_key="size"),
           up(3, subject_id=8, meta_key=None), up(4, subject_id=7, meta_key="size")]
    assert holders_sql(ops, PAIR, physical) == (
        "SELECT `id`, `subject_id`, `meta_key` FROM `real_db`.`t` "
        "WHERE (`subject_id`, `meta_key`) IN ((7,'colour'),(7,'size'))"
    )


@pytest.mark.parametrize(
    ("ops", "holders", "gone"),
    [
        # Replaying over its own result: every row holds what it writes first.
        ([up(1, email="a"), up(2, email="b")], [(1, "a"), (2, "b")], []),
        # A row outside the statement holding a value it writes always goes.
        ([up(1, email="a")], [(5, "a")], [(5,)]),
        # The swap from the state before it: each row is reached before its value is taken.
        ([up(1, email="t"), up(2, email="a"), up(1, email="b")], [(1, "a"), (2, "b")], []),
        # The swap replayed over its result: 1 is reached at 0, before 'b' is written at 2;
        # 2 is reached at 1, where it writes the 'a' it holds.
        ([up(1, email="t"), up(2, email="a"), up(1, email="b")], [(1, "b"), (2, "a")], []),
        # 2 holds 'a' and is reached only after 1 takes it.
        ([up(1, email="a"), up(2, email="c")], [(2, "a")], [(2,)]),
        # A row writing the value itself, but after another row took it, goes.
        ([up(1, email="v"), up(3, email="z"), up(1, email="w"), up(2, email="v")],
         [(2, "v"), (3, "z")], [(2,)]),
        # Matched as the collation would, taking the earlier position: 'A ' is 2's 'a'.
        ([up(2, email="a"), up(1, email="A")], [(1, "A ")], [(1,)]),
        # A value the statement does not recognise counts as written first.
        ([up(1, email="a")], [(1, "å")], [(1,)]),
    ],
)
def test_a_holder_goes_when_its_value_is_written_before_its_own_first_upsert(
    ops: list[Upsert], holders: list[tuple[Any, ...]], gone: list[tuple[Any, ...]]
) -> None:
    assert doomed(ops, EMAIL, holders) == gone


def test_composite_primary_and_unique_keys() -> None:
    key = UniqueKey("uq", ("x", "y"))

    def op(a: int, b: str, x: int, y: str) -> Upsert:
        return Upsert(T, ("a", "b"), (a, b), {"a": a, "b": b, "x": x, "y": y}, ("x", "y"))

    ops = [op(1, "p", 1, "q"), op(2, "p", 2, "q")]
    assert doomed(ops, key, [(1, "p", 1, "q"), (3, "p", 2, "q")]) == [(3, "p")]
    assert delete_keys_sql(ops[0], [(3, "p"), (4, "it's")], physical) == (
        "DELETE FROM `real_db`.`t` WHERE (`a`, `b`) IN ((3,'p'),(4,'it\\'s'))"
    )
    assert delete_keys_sql(up(1), [(7,), (8,)], physical) == (
        "DELETE FROM `real_db`.`t` WHERE `id` IN (7,8)"
    )


@pytest.mark.parametrize(
    ("key", "op", "expected"),
    [
        (EMAIL, up(1, email="a"), True),
        # No other row can clash on a key holding the whole primary key.
        (UniqueKey("uq", ("id", "email")), up(1, email="a"), False),
        # Prefix and expression keys clash on what the statement cannot list.
        (UniqueKey("uq", ("email",), whole=False), up(1, email="a"), False),
        # A column not written on update (or written by a reset, or not at all): whether
        # the found row takes the value is not in the statement; the key guard decides.
        (EMAIL, Upsert(T, ("id",), (1,), {"id": 1, "email": "a"}, ()), False),
        (EMAIL, Upsert(T, ("id",), (1,), {"id": 1, "email": "a", "url": "u"}, ("email",),
                       (Reset("url", {"email": None}),)), False),
        (EMAIL, Upsert(T, ("id",), (1,), {"id": 1, "note": "n"}, ("note",)), False),
    ],
)
def test_which_keys_the_statement_decides(key: UniqueKey, op: Upsert, expected: bool) -> None:
    assert decidable(key, op) is expected


class FakeCursor:
    """Answers the catalog query with ``keys`` and a holders query with ``holders``."""

    def __init__(self, keys: list[tuple[Any, ...]], holders: list[tuple[Any, ...]]) -> None:
        self.keys, self.holders = keys, holders
        self.queries: list[tuple[str, Any]] = []

    def execute(self, query: str, args: Any = None) -> int:
        self.queries.append((query, args))
        return 1

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.keys if "information_schema" in self.queries[-1][0] else self.holders


def test_keys_are_read_in_column_order_and_flag_prefixes() -> None:
    cur = FakeCursor([("uq_a", "x", None), ("uq_a", "y", None), ("uq_b", "email", 10),
                      ("uq_c", None, None)], [])
    assert read_unique_keys(cur, "real_db", "t") == (
        UniqueKey("uq_a", ("x", "y")),
        UniqueKey("uq_b", ("email",), whole=False),
        UniqueKey("uq_c", (), whole=False),
    )
    assert cur.queries[0][1] == ("real_db", "t")


def test_free_reads_the_keys_once_and_deletes_only_what_clashes() -> None:
    cur = FakeCursor([("uq_email", "email", None)], [(1, "a"), (9, "b")])
    values = UniqueValues()
    ops: list[TargetOp] = [up(1, email="a"), Delete(T, ("id",), (5,)), up(2, email="b")]
    # One statement each (plan alone would write the delete first, the upserts together).
    upsert, delete, upsert2 = [statement for op in ops for statement in plan([op], physical)]
    assert values.free(cur, upsert, physical) == {"uq_email": 1}
    assert values.free(cur, delete, physical) == {}
    assert values.free(cur, upsert2, physical) == {"uq_email": 1}
    assert len([q for q, _ in cur.queries if "information_schema" in q]) == 1
    assert [q for q, _ in cur.queries if q.startswith("DELETE")] == [
        "DELETE FROM `real_db`.`t` WHERE `id` IN (9)",
        "DELETE FROM `real_db`.`t` WHERE `id` IN (1,9)",
    ]


def test_a_table_without_unique_keys_costs_the_catalog_read_only() -> None:
    cur = FakeCursor([], [])
    values = UniqueValues()
    [statement] = plan([up(1, email="a"), up(2, email="a")], physical)
    assert values.free(cur, statement, physical) == {}
    assert values.free(cur, statement, physical) == {}
    assert len(cur.queries) == 1
