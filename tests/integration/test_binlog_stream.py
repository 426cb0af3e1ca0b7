"""The binlog reader on a real MariaDB: how transactions end, where positions fall, filters,
DDL, partial images and GTID starts (PITFALLS 2, 3, 5, 7, 13).

Every test runs twice: with the reader in this process, and with the reader process
(:mod:`sync.source.split`), whose events and errors must be the same."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from sync.dev.localdb import LocalServer
from sync.dev.localenv import reader_settings
from sync.errors import PartialRowImageError, SourceError, UnsupportedEventError
from sync.model import Op, Position, SourceTransaction
from sync.settings import Settings
from sync.source.binlog import open_binlog
from sync.source.events import SchemaChange, StreamEvent
from sync.source.position import current_position
from sync.source.split import ProcessReader

pytestmark = pytest.mark.integration

DB = "stream_t"
OTHER = "stream_other"


def _settings(server: LocalServer) -> Settings:
    return reader_settings(server, server_id=4_300_201)


@pytest.fixture(autouse=True, params=["in-process", "reader-process"])
def reader_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "reader-process":
        monkeypatch.setattr(sys.modules[__name__], "open_binlog", ProcessReader)
    return str(request.param)


@pytest.fixture(scope="module")
def db(source_server: LocalServer) -> LocalServer:
    for name in (DB, OTHER):
        source_server.execute(f"DROP DATABASE IF EXISTS {name}")
        source_server.execute(f"CREATE DATABASE {name}")
        source_server.execute(f"CREATE TABLE {name}.t (id INT PRIMARY KEY, v VARCHAR(20))")
    source_server.execute(f"CREATE TABLE {DB}.aria (id INT PRIMARY KEY, v INT) ENGINE=Aria")
    return source_server


@pytest.fixture
def conn(db: LocalServer) -> Iterator[pymysql.Connection[Any]]:
    with contextlib.closing(db.connect(DB)) as connection:
        connection.cursor().execute(f"DELETE FROM {DB}.t")
        connection.cursor().execute(f"DELETE FROM {DB}.aria")
        connection.cursor().execute(f"DELETE FROM {OTHER}.t")
        yield connection


def _run(
    server: LocalServer, conn: pymysql.Connection[Any], work: Callable[[Any], None], **kw: Any
) -> tuple[Position, Position, list[StreamEvent]]:
    """Do ``work`` on the source and read back everything it binlogged."""
    start = current_position(conn)
    with conn.cursor() as cur:
        work(cur)
    end = current_position(conn)
    kw.setdefault("schemas", {DB})
    with open_binlog(_settings(server), start, blocking=False, progress_every=1e9, **kw) as r:
        events = list(r)
    return start, end, events


def _txs(events: list[StreamEvent]) -> list[SourceTransaction]:
    return [e for e in events if isinstance(e, SourceTransaction) and e.changes]


def _ids(tx: SourceTransaction) -> list[tuple[str, Any]]:
    return [(c.op.value, c.image["id"]) for c in tx.changes]


def test_xid_commit_yields_one_transaction_ending_after_the_commit(
    db: LocalServer, conn: Any
) -> None:
    def work(cur: Any) -> None:
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {DB}.t VALUES (1, 'a'), (2, 'b')")
        cur.execute(f"UPDATE {DB}.t SET v = 'c' WHERE id = 1")
        cur.execute(f"DELETE FROM {DB}.t WHERE id = 2")
        cur.execute("COMMIT")

    _, end, events = _run(db, conn, work)
    (tx,) = _txs(events)
    assert _ids(tx) == [("insert", 1), ("insert", 2), ("update", 1), ("delete", 2)]
    update = tx.changes[2]
    assert update.op is Op.UPDATE
    assert update.before == {"id": 1, "v": "a"}
    assert update.after == {"id": 1, "v": "c"}
    assert tx.end == end  # right after the Xid event: nothing else was written
    assert tx.end.gtid == end.gtid


def test_commit_query_ends_a_non_transactional_table_change(db: LocalServer, conn: Any) -> None:
    _, end, events = _run(db, conn, lambda cur: cur.execute(f"INSERT INTO {DB}.aria VALUES (1, 1)"))
    (tx,) = _txs(events)
    assert tx.changes[0].table == "aria"
    assert tx.end == end


def test_standalone_ddl_is_a_schema_change_at_a_boundary(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        cur.execute(f"INSERT INTO {DB}.t VALUES (10, 'before')")
        cur.execute("ALTER TABLE t ADD COLUMN extra INT DEFAULT 5")  # unqualified name
        cur.execute(f"INSERT INTO {DB}.t VALUES (11, 'after', 6)")
        cur.execute("ALTER TABLE t DROP COLUMN extra")

    _, end, events = _run(db, conn, work)
    kinds = [type(e).__name__ for e in events if not isinstance(e, SourceTransaction) or e.changes]
    assert kinds == ["SourceTransaction", "SchemaChange", "SourceTransaction", "SchemaChange"]
    change = events[1]
    assert isinstance(change, SchemaChange)
    assert change.statement_kind == "ALTER TABLE"
    assert change.tables == ((DB, "t"),)
    assert change.touches(DB, "t")
    assert "ADD COLUMN" not in repr(change)  # the raw statement never reaches logs
    first, second = _txs(events)
    assert first.end < change.position < second.end
    assert second.changes[0].after == {"id": 11, "v": "after", "extra": 6}  # new columns
    last = events[-1]
    assert isinstance(last, SchemaChange)
    assert last.position == end


def test_ddl_on_another_schema_is_not_reported(db: LocalServer, conn: Any) -> None:
    _, _, events = _run(db, conn, lambda cur: cur.execute(f"ALTER TABLE {OTHER}.t FORCE"))
    assert not [e for e in events if isinstance(e, SchemaChange)]


def test_xa_rows_are_held_until_xa_commit_and_dropped_on_rollback(
    db: LocalServer, conn: Any
) -> None:
    with contextlib.closing(db.connect(DB)) as other:

        def work(cur: Any) -> None:
            cur.execute("XA START 'keep'")
            cur.execute(f"INSERT INTO {DB}.t VALUES (20, 'xa')")
            cur.execute("XA END 'keep'")
            cur.execute("XA PREPARE 'keep'")
            other.cursor().execute(f"INSERT INTO {DB}.t VALUES (21, 'between')")
            cur.execute("XA COMMIT 'keep'")
            cur.execute("XA START 'drop'")
            cur.execute(f"INSERT INTO {DB}.t VALUES (22, 'gone')")
            cur.execute("XA END 'drop'")
            cur.execute("XA PREPARE 'drop'")
            cur.execute("XA ROLLBACK 'drop'")
            cur.execute("XA START 'one'")
            cur.execute(f"INSERT INTO {DB}.t VALUES (23, 'one phase')")
            cur.execute("XA END 'one'")
            cur.execute("XA COMMIT 'one' ONE PHASE")

        start, end, events = _run(db, conn, work)
    between, xa, one = _txs(events)
    assert _ids(between) == [("insert", 21)]
    assert _ids(xa) == [("insert", 20)]
    assert _ids(one) == [("insert", 23)]
    # While 'keep' was prepared, resuming after 'between' would have lost its row: the
    # position is held back to where 'keep' began.
    assert between.end == start
    assert start < xa.end < one.end == end


def test_only_tracked_schema_table_pairs_are_read(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        cur.execute(f"INSERT INTO {OTHER}.t VALUES (30, 'other schema')")
        cur.execute(f"INSERT INTO {DB}.t VALUES (31, 'ours')")
        cur.execute(f"INSERT INTO {DB}.aria VALUES (32, 1)")

    _, _, events = _run(db, conn, work, tables={(DB, "t")})
    assert [(c.schema, c.table, c.image["id"]) for tx in _txs(events) for c in tx.changes] == [
        (DB, "t", 31)
    ]


def test_end_position_makes_a_blocking_stream_finite(db: LocalServer, conn: Any) -> None:
    start = current_position(conn)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {DB}.t VALUES (40, 'a')")
        middle = current_position(conn)
        cur.execute(f"INSERT INTO {DB}.t VALUES (41, 'b')")
    with open_binlog(_settings(db), start, schemas={DB}, end=middle, blocking=True) as reader:
        txs = _txs(list(reader))
    assert [_ids(tx) for tx in txs] == [[("insert", 40)]]
    assert txs[-1].end == middle


def test_resume_from_a_yielded_end_continues_exactly(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        for i in range(50, 56):
            cur.execute(f"INSERT INTO {DB}.t VALUES ({i}, 'r')")

    _, _, events = _run(db, conn, work)
    txs = _txs(events)
    with open_binlog(_settings(db), txs[2].end, schemas={DB}, blocking=False) as reader:
        resumed = _txs(list(reader))
    assert [_ids(t) for t in resumed] == [_ids(t) for t in txs[3:]]
    assert [t.end for t in resumed] == [t.end for t in txs[3:]]


def test_mariadb_gtid_start_matches_file_position_start(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        for i in range(60, 64):
            cur.execute(f"INSERT INTO {DB}.t VALUES ({i}, 'g')")

    _, _, events = _run(db, conn, work)
    txs = _txs(events)
    resume = txs[1].end
    assert resume.gtid
    by_gtid = Position("", 4, resume.gtid)
    with open_binlog(
        _settings(db), by_gtid, schemas={DB}, blocking=False, auto_position=True
    ) as reader:
        resumed = _txs(list(reader))
    assert [_ids(t) for t in resumed] == [_ids(t) for t in txs[2:]]
    assert [t.end for t in resumed] == [t.end for t in txs[2:]]


def test_start_inside_a_transaction_is_refused(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        cur.execute(f"INSERT INTO {DB}.t VALUES (70, 'x'), (71, 'y')")

    start, _, events = _run(db, conn, work)
    (tx,) = _txs(events)
    inside = tx.changes[0].position  # the row event, after the GTID event
    assert inside is not None and start < inside < tx.end
    with (
        pytest.raises(SourceError, match="inside a transaction"),
        open_binlog(_settings(db), inside, schemas={DB}, blocking=False) as reader,
    ):
        list(reader)


def test_minimal_row_image_halts_with_the_table(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        cur.execute(f"INSERT INTO {DB}.t VALUES (80, 'full')")
        cur.execute("SET SESSION binlog_row_image = 'MINIMAL'")
        cur.execute(f"UPDATE {DB}.t SET v = 'minimal' WHERE id = 80")
        cur.execute("SET SESSION binlog_row_image = 'FULL'")

    with pytest.raises(PartialRowImageError) as caught:
        _run(db, conn, work)
    assert caught.value.table == f"{DB}.t"
    assert caught.value.position is not None


def test_statement_based_change_on_a_tracked_schema_halts(db: LocalServer, conn: Any) -> None:
    def work(cur: Any) -> None:
        cur.execute("SET SESSION binlog_format = 'STATEMENT'")
        cur.execute(f"INSERT INTO {DB}.t VALUES (90, 'statement')")
        cur.execute("SET SESSION binlog_format = 'ROW'")

    with pytest.raises(UnsupportedEventError, match="statement-based INSERT"):
        _run(db, conn, work)
