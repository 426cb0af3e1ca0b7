"""A row event longer than one protocol packet (16 MiB) reaches the stream whole, through the
lean path's own packet reads, through the library's and through the reader process's pipe,
on a real server."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import pytest

from sync.dev.localdb import LocalServer, start_server
from sync.dev.localenv import reader_settings
from sync.model import SourceTransaction
from sync.source.binlog import open_binlog
from sync.source.position import current_position
from sync.source.split import ProcessReader

pytestmark = pytest.mark.integration

DB = "large_event_t"
MAX_PACKET = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def big_server() -> Iterator[LocalServer]:
    server = start_server("large-event", server_id=331,
                          options={"max_allowed_packet": "64M"})
    yield server
    server.stop()


@pytest.mark.parametrize("lean", [True, False, "process"],
                         ids=["lean", "library", "reader-process"])
def test_a_row_of_20_mib_streams_whole_between_two_small_ones(
        big_server: LocalServer, lean: bool | str) -> None:
    big_server.execute(f"DROP DATABASE IF EXISTS {DB}")
    big_server.execute(f"CREATE DATABASE {DB}")
    big_server.execute(f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, v LONGBLOB)")
    # Not a multiple of the packet size, so the event ends in a short continuation packet.
    large = bytes(range(256)) * (20 * 1024 * 1024 // 256) + b"tail"
    with contextlib.closing(big_server.connect(DB, max_allowed_packet=MAX_PACKET)) as conn, \
            conn.cursor() as cur:
        start = current_position(conn)
        cur.execute("INSERT INTO t VALUES (1, %s)", [b"before"])
        cur.execute("INSERT INTO t VALUES (2, %s)", [large])
        cur.execute("INSERT INTO t VALUES (3, %s)", [b"after"])
        conn.commit()
    settings = reader_settings(big_server, server_id=4_300_531)
    opened = (ProcessReader(settings, start, schemas={DB}, blocking=False)
              if lean == "process" else
              open_binlog(settings, start, schemas={DB}, blocking=False, lean=bool(lean)))
    with opened as reader:
        rows = [change.image for event in reader if isinstance(event, SourceTransaction)
                for change in event.changes]
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert rows[0]["v"] == b"before"
    assert len(rows[1]["v"]) == len(large)
    assert hashlib.sha256(rows[1]["v"]).digest() == hashlib.sha256(large).digest()
    assert rows[2]["v"] == b"after"
