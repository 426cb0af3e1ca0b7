"""SqlTargetWriter against a real MariaDB target: SQL semantics, errors, dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from test_writer_support import (
    Faults,
    clear,
    faulty_connect,
    prepare,
    read_tables,
    writer_settings,
)

from sync.apply.batcher import plan
from sync.apply.writer import SqlTargetWriter
from sync.dev.localdb import LocalServer
from sync.errors import ApplyError
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
from sync.state import StateStore, TableProgress
from sync.testing.memtarget import MemoryTarget

pytestmark = pytest.mark.integration

DATA, STATE = "w_data", "w_state"
PEOPLE = TableRef(DATA, "people")
PEOPLE_UPDATES = ("email", "name", "score", "data", "seen", "url")
URL_RESET = (Reset("url", {"checksum": None}),)


def person(pid: int, **values: Any) -> Upsert:
    row = {"id": pid, "email": f"{pid}@x", "name": None, "score": None, "data": None,
           "seen": None, "url": None, "checksum": None, "created": "first"}
    row.update(values)
    return Upsert(PEOPLE, ("id",), (pid,), row, PEOPLE_UPDATES, URL_RESET)


def cp(n: int) -> Checkpoint:
    return Checkpoint(Position("binlog.000001", n), datetime(2024, 5, 1, 12, 0, 0))


@pytest.fixture(scope="module")
def prepared(target_server: LocalServer) -> LocalServer:
    prepare(target_server, DATA, STATE)
    return target_server


@pytest.fixture
def server(prepared: LocalServer) -> LocalServer:
    clear(prepared, DATA, STATE)
    return prepared


@pytest.fixture
def writer(server: LocalServer) -> Iterator[SqlTargetWriter]:
    w = SqlTargetWriter(writer_settings(server, STATE))
    yield w
    w.close()


def store(server: LocalServer) -> StateStore:
    return StateStore(server.connect, STATE, "test")


def both(server: LocalServer, ops: list[Any]) -> tuple[Any, Any]:
    memory = MemoryTarget()
    memory.apply(ops)
    return read_tables(server, DATA), memory.snapshot()


def test_reset_compares_the_watched_value_before_it_is_overwritten(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    ops = [
        person(1, url="http://a", checksum="pending"),
        Upsert(PEOPLE, ("id",), (1,), {**person(1).row, "url": "http://a"}, ("checksum",)),
    ]
    # The service computed a checksum; a same-URL upsert keeps it, a new URL resets it.
    ops[1] = Upsert(PEOPLE, ("id",), (1,), {"id": 1, "checksum": "sha:1"}, ("checksum",))
    ops += [person(1, url="http://a", checksum="ignored"), person(2, url="x")]
    writer.apply(ops, cp(1))
    assert read_tables(server, DATA)[PEOPLE][(1,)]["checksum"] == "sha:1"
    # A case-only change is a change: the reference compares exactly, not by collation.
    more = [person(1, url="http://A", checksum="ignored")]
    writer.apply(more, cp(2))
    stored, expected = both(server, ops + more)
    assert stored == expected
    assert stored[PEOPLE][(1,)]["checksum"] is None
    assert stored[PEOPLE][(1,)]["url"] == "http://A"


def test_one_multi_row_statement_moves_a_unique_value_between_rows(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    writer.apply([person(1, email="a"), person(2, email="b")], cp(1))
    swap = [person(1, email="tmp"), person(2, email="a"), person(1, email="b")]
    assert len(plan(swap, lambda d: d)) == 1
    writer.apply(swap, cp(2))
    stored = read_tables(server, DATA)[PEOPLE]
    assert (stored[(1,)]["email"], stored[(2,)]["email"]) == ("b", "a")


def test_a_merged_delete_frees_its_unique_value_where_the_source_did(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    writer.apply([person(1, email="a")], cp(1))
    # Source order: 1 gives up 'a', 2 takes it, 1 is deleted.
    ops = [person(1, email="gone"), person(2, email="a"), Delete(PEOPLE, ("id",), (1,))]
    writer.apply(ops, cp(2))
    stored = read_tables(server, DATA)[PEOPLE]
    assert list(stored) == [(2,)]
    assert stored[(2,)]["email"] == "a"


CHILDREN, PAIRS = TableRef(DATA, "children"), TableRef(DATA, "pairs")


def _rows_scanned(server: LocalServer) -> int:
    status = server.execute("SHOW GLOBAL STATUS LIKE 'Handler_read_rnd_next'")
    return int(str(status[0][1]))


def test_rows_reached_through_a_parent_are_changed_by_key_not_by_a_scan(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    children = [Upsert(CHILDREN, ("id",), (i,), {"id": i, "person_id": None, "flag": 0,
                                                  "label": None}, ("flag",)) for i in range(3000)]
    # pairs.v holds child ids: b = 'x' reaches children 0, 10, ..., 40.
    pairs = [Upsert(PAIRS, ("a", "b"), (i, "x" if i < 5 else "y"),
                    {"a": i, "b": "x" if i < 5 else "y", "v": i * 10, "note": None}, ("v",))
             for i in range(50)]
    writer.apply([*children, *pairs], cp(1))
    through = (InSelect("id", PAIRS, "v", (Eq("b", "x"),)),)
    ops: list[Any] = [UpdateWhere(CHILDREN, through, {"flag": 7}),
                      DeleteWhere(CHILDREN, (*through, Eq("flag", 7), Eq("id", 40))),
                      # Reaches no row: nothing is written, nothing fails.
                      UpdateWhere(CHILDREN, (InSelect("id", PAIRS, "v", (Eq("b", "z"),)),),
                                  {"flag": 9})]
    before = _rows_scanned(server)
    writer.apply(ops, cp(2))
    scanned = _rows_scanned(server) - before
    stored, memory = both(server, [*children, *pairs, *ops])
    assert stored[CHILDREN] == memory[CHILDREN]
    assert sorted(k for k, row in stored[CHILDREN].items() if row["flag"] == 7) == [
        (0,), (10,), (20,), (30,)]
    # The parents' table is read (50 rows, each statement); the 3,000 children are not.
    assert scanned < 1000, scanned


def test_the_checkpoint_and_state_rows_commit_with_the_data(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    assert writer.read_checkpoint() is None
    progress = TableProgress(run_id=7, source_table="users", last_key=(10,), rows_copied=10,
                             chunks=1)
    result = writer.apply([person(k) for k in range(10)], cp(42), state=[progress])
    assert writer.read_checkpoint() == cp(42)
    assert store(server).read_progress(7) == [progress]
    assert result.rows == {(str(PEOPLE), "upsert"): 10}
    assert result.statements == 1


def _refused(writer: SqlTargetWriter, ops: list[Any]) -> ApplyError:
    with pytest.raises(ApplyError) as caught:
        writer.apply(ops, cp(99), state=[TableProgress(1, "users", (1,), 1, 1)])
    return caught.value


@pytest.mark.parametrize(
    ("bad", "code", "fix_word", "existing"),
    [
        # A new row clashing on the unique email: plain ODKU would overwrite row 1.
        (person(13, email="1@x"), 1048, "unique", []),
        (person(13, email="1@x"), 1062, "unique", [person(13)]),
        (person(13, name="n" * 40), 1406, "longer", []),
        (person(13, seen="not a date"), 1292, "checkpoint", []),
    ],
)
def test_a_refused_row_halts_with_its_exact_key_and_changes_nothing(
    server: LocalServer, writer: SqlTargetWriter, bad: Upsert, code: int, fix_word: str,
    existing: list[Upsert],
) -> None:
    writer.apply([person(1), *existing], cp(1))
    before = read_tables(server, DATA)
    ops = [person(k) for k in range(2, 30) if k != 13]
    ops.insert(10, bad)
    error = _refused(writer, ops)
    assert f"error {code}" in error.reason
    assert error.key == {"id": 13}
    assert error.table == "w_data.people"
    assert error.position == cp(99).position
    assert fix_word in (error.fix or "")
    assert read_tables(server, DATA) == before
    assert writer.read_checkpoint() == cp(1)
    assert store(server).read_progress(1) == []


def test_a_missing_table_halts_naming_the_table(server: LocalServer,
                                               writer: SqlTargetWriter) -> None:
    ghost = Upsert(TableRef(DATA, "ghost"), ("id",), (1,), {"id": 1}, ())
    error = _refused(writer, [person(1), ghost])
    assert "error 1146" in error.reason
    assert error.table == "w_data.ghost"
    assert read_tables(server, DATA) == {}
    assert writer.read_checkpoint() is None


def test_dead_letter_skips_the_refused_row_and_records_it(server: LocalServer) -> None:
    writer = SqlTargetWriter(writer_settings(server, STATE, dead_letter=True))
    try:
        writer.apply([person(1, email="taken")], cp(1))
        ops = [person(k) for k in range(2, 8)] + [person(8, email="taken"), person(9)]
        result = writer.apply(ops, cp(2))
    finally:
        writer.close()
    stored = read_tables(server, DATA)[PEOPLE]
    assert sorted(stored) == [(k,) for k in range(1, 8)] + [(9,)]
    assert len(result.dead_letters) == 1
    letters = store(server).dead_letters()
    assert [(d.table, d.key, d.position) for d in letters] == [
        ("w_data.people", "{'id': 8}", cp(2).position)
    ]
    assert letters[0].reason.startswith("error 1048: the row clashes on a unique")
    assert SqlTargetWriter(writer_settings(server, STATE)).read_checkpoint() == cp(2)


def test_tidb_sessions_allow_explicit_auto_random_ids(server: LocalServer) -> None:
    faults = Faults()
    faults.fake_version = "8.0.11-TiDB-v7.5.1"
    settings = writer_settings(server, STATE)
    writer = SqlTargetWriter(settings, connect=faulty_connect(settings, faults))
    try:
        writer.apply([person(1)], cp(1))
    finally:
        writer.close()
    assert writer.is_tidb
    assert faults.swallowed == ["SET SESSION allow_auto_random_explicit_insert = 1"]
    assert not any("FOR UPDATE" in sql for sql in faults.executed)


def test_a_mariadb_session_is_not_taken_for_tidb(writer: SqlTargetWriter) -> None:
    writer.apply([], cp(1))
    assert not writer.is_tidb
