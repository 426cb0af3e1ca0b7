"""The reader when the connection or the source fails (PITFALLS 1, 8, 12, and purged binlogs).

Each test gets its own throwaway server: they kill, stop and purge.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sync.dev.localdb import LocalServer, start_server
from sync.dev.localenv import reader_settings
from sync.errors import BinlogPurgedError, ServerIdConflictError, SourceConnectionLostError
from sync.model import SourceTransaction
from sync.settings import Settings
from sync.source.binlog import BinlogReader, open_binlog
from sync.source.events import Heartbeat
from sync.source.position import current_position
from sync.source.split import ProcessReader
from tests.bad_input import BadInputRecorder

pytestmark = [pytest.mark.integration, pytest.mark.failure]

DB = "fail_t"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = start_server("binlog-failure", server_id=311)
    srv.execute(f"CREATE DATABASE {DB}")
    srv.execute(f"CREATE TABLE {DB}.t (id INT PRIMARY KEY)")
    yield srv
    srv.stop()


def _settings(server: LocalServer, **overrides: Any) -> Settings:
    return reader_settings(server, server_id=4_300_301, **overrides)


class Consumer:
    """Reads a blocking reader on a thread; events and the final error land in a queue."""

    def __init__(self, reader: BinlogReader) -> None:
        self.reader = reader
        self.events: queue.Queue[object] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.reader:
                self.events.put(event)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            self.events.put(exc)

    def next_matching(self, kind: type, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            item = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, kind):
                return item
            if isinstance(item, BaseException):
                raise item

    def transactions(self, count: int, timeout: float = 10) -> list[SourceTransaction]:
        txs: list[SourceTransaction] = []
        while len(txs) < count:
            tx = self.next_matching(SourceTransaction, timeout)
            if tx.changes:
                txs.append(tx)
        return txs


def _insert(server: LocalServer, *ids: int) -> None:
    for i in ids:
        server.execute(f"INSERT INTO {DB}.t VALUES ({i})")


def _ids(txs: list[SourceTransaction]) -> list[int]:
    return [c.image["id"] for tx in txs for c in tx.changes]


def test_killed_dump_thread_raises_and_resume_has_no_gap_or_duplicate(
    server: LocalServer,
) -> None:
    with contextlib.closing(server.connect()) as conn:
        start = current_position(conn)
    reader = open_binlog(_settings(server, read_timeout=60), start, schemas={DB})
    consumer = Consumer(reader)
    _insert(server, 1, 2, 3)
    seen = consumer.transactions(3)
    dumps = [row for row in server.execute("SHOW PROCESSLIST") if row[4] == "Binlog Dump"]
    assert len(dumps) == 1
    killed_at = time.monotonic()
    server.execute(f"KILL {dumps[0][0]}")
    with pytest.raises(SourceConnectionLostError) as caught:
        consumer.next_matching(SourceTransaction, timeout=10)
    assert time.monotonic() - killed_at < 5  # promptly, not after read_timeout (60 s)
    assert caught.value.position == seen[-1].end
    consumer.thread.join(5)
    _insert(server, 4, 5, 6)
    # No silent reconnect: the killed reader saw nothing of 4..6.
    assert consumer.events.empty()
    with open_binlog(_settings(server), seen[-1].end, schemas={DB}, blocking=False) as again:
        resumed = [e for e in again if isinstance(e, SourceTransaction) and e.changes]
    assert _ids(seen) == [1, 2, 3]
    assert _ids(resumed) == [4, 5, 6]


def test_idle_stream_gets_heartbeats_and_a_silent_source_raises(server: LocalServer) -> None:
    # A heartbeat setting above read_timeout is clamped to half of it, so an idle stream
    # stays alive; a stopped (silent) source is noticed within read_timeout.
    settings = _settings(server, read_timeout=2.0, replication_heartbeat=10.0)
    with contextlib.closing(server.connect()) as conn:
        start = current_position(conn)
    consumer = Consumer(open_binlog(settings, start, schemas={DB}))
    first = consumer.next_matching(Heartbeat, timeout=3)
    second = consumer.next_matching(Heartbeat, timeout=3)  # idle for > read_timeout: alive
    assert first.position == second.position == start
    assert second.source_position.file == start.file
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        with pytest.raises(SourceConnectionLostError, match="lost or went silent"):
            consumer.next_matching(SourceTransaction, timeout=10)
        assert time.monotonic() - stopped_at < 6
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def test_a_hung_reader_process_is_noticed_while_an_idle_one_is_not(server: LocalServer) -> None:
    # The child forwards the source's heartbeats: silence longer than read_timeout plus
    # connect_timeout means it hangs (stopped here), and the stream gives it up.
    settings = _settings(server, read_timeout=2.0, connect_timeout=1.0,
                         replication_heartbeat=0.5)
    with contextlib.closing(server.connect()) as conn:
        start = current_position(conn)
    reader = ProcessReader(settings, start, schemas={DB})
    try:
        consumer = Consumer(reader)  # type: ignore[arg-type]
        consumer.next_matching(Heartbeat, timeout=5)
        time.sleep(4)  # idle, longer than the silence allowed: heartbeats keep it alive
        consumer.next_matching(Heartbeat, timeout=2)
        os.kill(reader.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        with pytest.raises(SourceConnectionLostError, match="sent nothing for 3 s"):
            consumer.next_matching(SourceTransaction, timeout=10)
        assert time.monotonic() - stopped_at < 6
    finally:
        reader.close()


@pytest.mark.bad_input
def test_purged_binlog_asks_for_a_new_bootstrap(server: LocalServer,
                                                bad_input: BadInputRecorder) -> None:
    with contextlib.closing(server.connect()) as conn:
        old = current_position(conn)
        _insert(server, 1)
        conn.cursor().execute("FLUSH BINARY LOGS")
        newest = current_position(conn).file
        # MariaDB keeps a file until its binlog checkpoint is written, and says nothing.
        deadline = time.monotonic() + 10
        while any(row[0] == old.file for row in server.execute("SHOW BINARY LOGS")):
            assert time.monotonic() < deadline, "the old binlog was never purged"
            conn.cursor().execute(f"PURGE BINARY LOGS TO '{newest}'")
            time.sleep(0.1)
    with (
        pytest.raises(BinlogPurgedError) as caught,
        open_binlog(_settings(server), old, schemas={DB}, blocking=False) as reader,
    ):
        list(reader)
    assert "aurora-sync bootstrap" in str(caught.value)
    assert caught.value.position == old
    bad_input.record(category="binlog settings", given="a start position whose binlog file "
                     "was purged", outcome=caught.value.describe())


@pytest.mark.bad_input
def test_two_readers_with_one_server_id_name_the_setting(server: LocalServer,
                                                         bad_input: BadInputRecorder) -> None:
    with contextlib.closing(server.connect()) as conn:
        start = current_position(conn)
    first = Consumer(open_binlog(_settings(server), start, schemas={DB}))
    _insert(server, 1)
    first.transactions(1)
    second = Consumer(open_binlog(_settings(server), start, schemas={DB}))
    second.transactions(1)
    with pytest.raises(ServerIdConflictError, match="AURORA_SYNC_SERVER_ID") as caught:
        first.next_matching(SourceTransaction, timeout=10)
    bad_input.record(category="binlog settings", given="a second reader with the same "
                     "`AURORA_SYNC_SERVER_ID`", outcome=caught.value.describe())
    second.reader.close()
