"""Safe mode's pre-deletes as SQL text: which keys, which values, which rows are kept."""

from __future__ import annotations

from typing import Any

import pytest

from sync.apply.batcher import plan
from sync.apply.sql import DELETE, UPSERT
from sync.apply.uniques import (
    CLASH_DELETE,
    UniqueKey,
    UniqueKeyCache,
    clash_deletes,
    decidable,
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


def deletes(ops: list[Upsert], *keys: UniqueKey) -> list[str]:
    [statement] = plan(ops, physical)
    found = clash_deletes(statement, keys, physical)
    assert all(s.kind == CLASH_DELETE and s.ops == () and s.target == T for s in found)
    return [s.sql for s in found]


def test_one_key_frees_each_value_except_under_the_pairs_the_statement_writes() -> None:
    ops = [up(1, email="tmp"), up(2, email="a"), up(1, email="b"), up(3, email="it's")]
    assert deletes(ops, EMAIL) == [
        "DELETE FROM `real_db`.`t` WHERE `email` IN ('tmp','a','b','it\\'s') "
        "AND NOT ((`id`, `email`) IN ((1,'tmp'),(2,'a'),(1,'b'),(3,'it\\'s')))"
    ]


def test_repeated_values_are_listed_once() -> None:
    ops = [up(1, email="a"), up(2, email="b"), up(1, email="a")]
    assert deletes(ops, EMAIL) == [
        "DELETE FROM `real_db`.`t` WHERE `email` IN ('a','b') "
        "AND NOT ((`id`, `email`) IN ((1,'a'),(2,'b')))"
    ]


def test_a_composite_key_skips_rows_with_a_null_in_it() -> None:
    ops = [up(1, subject_id=7, meta_key="colour"), up(2, subject_id=None, meta_key="size"),
           up(3, subject_id=8, meta_key=None), up(4, subject_id=7, meta_key="size")]
    assert deletes(ops, PAIR) == [
        "DELETE FROM `real_db`.`t` WHERE (`subject_id`, `meta_key`) IN ((7,'colour'),(7,'size'))"
        " AND NOT ((`id`, `subject_id`, `meta_key`) IN ((1,7,'colour'),(4,7,'size')))"
    ]


def test_only_nulls_means_no_statement_and_each_key_gets_its_own() -> None:
    assert deletes([up(1), up(2)], EMAIL, PAIR) == []
    both = deletes([up(1, email="a", subject_id=1, meta_key="k")], EMAIL, PAIR)
    assert [s.split(" WHERE ")[1].split(" IN ")[0] for s in both] == [
        "`email`", "(`subject_id`, `meta_key`)"]


def test_a_composite_primary_key_is_paired_whole() -> None:
    op = Upsert(T, ("a", "b"), (1, "x"), {"a": 1, "b": "x", "label": "red"}, ("label",))
    [statement] = plan([op], physical)
    [found] = clash_deletes(statement, [UniqueKey("uq", ("label",))], physical)
    assert found.sql.endswith("AND NOT ((`a`, `b`, `label`) IN ((1,'x','red')))")


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
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, Any]] = []

    def execute(self, query: str, args: Any = None) -> int:
        self.queries.append((query, args))
        return len(self.rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def test_keys_are_read_in_column_order_and_flag_prefixes() -> None:
    cur = FakeCursor([("uq_a", "x", None), ("uq_a", "y", None), ("uq_b", "email", 10),
                      ("uq_c", None, None)])
    assert read_unique_keys(cur, "real_db", "t") == (
        UniqueKey("uq_a", ("x", "y")),
        UniqueKey("uq_b", ("email",), whole=False),
        UniqueKey("uq_c", (), whole=False),
    )
    assert cur.queries[0][1] == ("real_db", "t")


def test_the_cache_reads_each_table_once_and_places_deletes_before_their_upserts() -> None:
    cur = FakeCursor([("uq_email", "email", None)])
    cache = UniqueKeyCache()
    ops: list[TargetOp] = [up(1, email="a"), Delete(T, ("id",), (5,)), up(2, email="b")]
    statements = plan(ops, physical)
    out = cache.with_clash_deletes(cur, statements, physical)
    assert [s.kind for s in out] == [CLASH_DELETE, UPSERT, DELETE, CLASH_DELETE, UPSERT]
    assert cache.with_clash_deletes(cur, statements, physical) == out
    assert len(cur.queries) == 1
    assert cur.queries[0][1] == ("real_db", "t")


def test_a_table_without_unique_keys_gets_no_extra_statement() -> None:
    statements = plan([up(1, email="a"), up(2, email="a")], physical)
    assert UniqueKeyCache().with_clash_deletes(FakeCursor([]), statements, physical) == \
        statements
