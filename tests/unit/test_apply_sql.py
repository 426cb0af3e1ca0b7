"""Pure statement building: identifiers, literals, conditions, ODKU assignment order."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymysql.converters import escape_string

from sync.apply.sql import literal, odku_assignments, quote, single_statement, where_sql
from sync.model import Delete, Eq, InSelect, Reset, TableRef, Upsert

T = TableRef("logical_db", "t")


def physical(name: str) -> str:
    return {"logical_db": "real_db"}.get(name, name)


@pytest.mark.parametrize("name", ["a`b", "x; DROP TABLE y", "", "a" * 65, "naïve", "a.b"])
def test_unsafe_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="refusing SQL identifier"):
        quote(name)


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"), (True, "1"), (7, "7"), (Decimal("1.50"), "1.50"), (1.5, "1.5e0"),
        ("it's \\ ok", "'it\\'s \\\\ ok'"), (b"\x00\xff", "_binary X'00ff'"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5, 6), "'2024-01-02 03:04:05.000006'"),
        (datetime.datetime(2024, 1, 2, 4, 4, 5,
                           tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
         "'2024-01-02 03:04:05'"),
        (datetime.date(2024, 1, 2), "'2024-01-02'"), ({"k": "ü"}, r"""'{\"k\":\"ü\"}'"""),
        ({"b", "a"}, "'a,b'"),
    ],
)
def test_literals(value: object, sql: str) -> None:
    assert literal(value) == sql


def test_values_without_a_literal_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        literal(object())
    with pytest.raises(ValueError, match="nan"):
        literal(float("nan"))


def test_an_eq_on_null_matches_nothing_and_nested_selects_resolve_names() -> None:
    parent = TableRef("logical_db", "parent")
    where = (Eq("a", None), InSelect("pid", parent, "id", (InSelect("gid", parent, "id", ()),)))
    assert where_sql(where, physical) == (
        "FALSE AND `pid` IN (SELECT `id` FROM `real_db`.`parent` WHERE `gid` IN "
        "(SELECT `id` FROM `real_db`.`parent` WHERE TRUE))"
    )


def test_resets_are_assigned_before_the_watched_column() -> None:
    got = odku_assignments(("id", "url", "sum"), ("id",), ("url",), (Reset("url", {"sum": None}),))
    assert got[0].startswith("`id` = IF(`id` <=> VALUES(`id`), `id`, NULL)")
    columns = [a.split(" = ")[0] for a in got]
    assert columns.index("`sum`") < columns.index("`url`")


def test_resets_that_read_each_other_in_a_cycle_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        odku_assignments(("id", "a", "b"), ("id",), ("a", "b"),
                         (Reset("a", {"b": 1}), Reset("b", {"a": 1})))


def test_composite_key_delete() -> None:
    statement = single_statement(Delete(T, ("a", "b"), (1, "x")), physical)
    assert statement.sql == "DELETE FROM `real_db`.`t` WHERE (`a`, `b`) IN ((1,'x'))"


def test_upsert_without_update_columns_keeps_the_row() -> None:
    sql = single_statement(Upsert(T, ("id",), (1,), {"id": 1}, ()), physical).sql
    assert sql.endswith("ON DUPLICATE KEY UPDATE `id` = IF(`id` <=> VALUES(`id`), `id`, NULL)")


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\0\n\r\\'\"\x1a")))
def test_text_literals_escape_as_pymysql_does(text: str) -> None:
    assert literal(text) == "'" + escape_string(text) + "'"


def test_a_datetime_written_again_and_between_others_keeps_its_own_literal() -> None:
    commit = datetime.datetime(2024, 5, 6, 7, 8, 9)
    other = datetime.datetime(2023, 1, 1, 0, 0, 0, 500)
    aware = datetime.datetime(2024, 5, 6, 9, 8, 9,
                              tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    written = [literal(v) for v in (commit, commit, other, commit, aware, aware, commit)]
    assert written == ["'2024-05-06 07:08:09'", "'2024-05-06 07:08:09'",
                       "'2023-01-01 00:00:00.000500'", "'2024-05-06 07:08:09'",
                       "'2024-05-06 07:08:09'", "'2024-05-06 07:08:09'",
                       "'2024-05-06 07:08:09'"]
