"""The reader's connections and the source settings it depends on (PITFALLS 4, 6, 14, 15)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.dev.localdb import LocalServer, make_tls_files, start_server
from sync.dev.localenv import reader_settings
from sync.errors import ConnectError, SourceError, UnsupportedEventError
from sync.model import Position, SourceTransaction
from sync.settings import Settings
from sync.source.binlog import open_binlog
from sync.source.position import current_position
from sync.source.split import ProcessReader
from tests.bad_input import BadInputRecorder

pytestmark = pytest.mark.integration

DB = "config_t"


def _settings(server: LocalServer, **overrides: Any) -> Settings:
    return reader_settings(server, **{"server_id": 4_300_401, **overrides})


def _write_and_read(server: LocalServer, settings: Settings, sql: str) -> list[Any]:
    with contextlib.closing(server.connect()) as conn:
        start = current_position(conn)
        conn.cursor().execute(sql)
    with open_binlog(settings, start, schemas={DB}, blocking=False, progress_every=1e9) as r:
        return list(r)


def _prepare(server: LocalServer) -> None:
    server.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    server.execute(f"CREATE TABLE IF NOT EXISTS {DB}.t (id INT PRIMARY KEY, v VARCHAR(200))")


def test_passwords_reach_no_log_record(
    source_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    _prepare(source_server)
    password = f"pw-{uuid.uuid4().hex}"
    user = f"reader_{uuid.uuid4().hex[:8]}"
    source_server.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    source_server.execute(f"GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'")
    statement_secret = f"stmt-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pymysqlreplication")
    settings = _settings(source_server, source_user=user, source_password=password)
    events = _write_and_read(
        source_server,
        settings,
        f"CREATE USER 'victim_{uuid.uuid4().hex[:8]}'@'%' IDENTIFIED BY '{statement_secret}'",
    )
    events += _write_and_read(source_server, settings, f"INSERT INTO {DB}.t VALUES (1, 'x')")
    assert [len(e.changes) for e in events if isinstance(e, SourceTransaction)] == [1]
    texts = [r.getMessage() + repr(r.args) for r in caplog.records]
    assert not [t for t in texts if password in t or statement_secret in t]
    assert not [e for e in events if statement_secret in repr(e)]


@pytest.fixture(scope="module")
def tls_server() -> Iterator[LocalServer]:
    server = start_server("binlog-tls", server_id=321, tls=True)
    _prepare(server)
    # Both of the reader's connections must use TLS, or this account is refused.
    server.execute("CREATE USER 'tls_reader'@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL")
    server.execute("GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'tls_reader'@'%'")
    yield server
    server.stop()


def test_tls_reader_verifies_and_uses_tls_on_both_connections(tls_server: LocalServer) -> None:
    assert tls_server.tls is not None
    settings = _settings(
        tls_server,
        source_host="localhost",
        source_user="tls_reader",
        source_password="tls-pw",
        source_ssl_ca=tls_server.tls.ca_cert,
    )
    events = _write_and_read(tls_server, settings, f"INSERT INTO {DB}.t VALUES (2, 'tls')")
    txs = [e for e in events if isinstance(e, SourceTransaction)]
    assert [c.image["id"] for tx in txs for c in tx.changes] == [2]


def test_the_reader_process_uses_tls_and_keeps_the_password_off_its_command_line(
        tls_server: LocalServer) -> None:
    assert tls_server.tls is not None
    settings = _settings(tls_server, source_host="localhost", source_user="tls_reader",
                         source_password="tls-pw", source_ssl_ca=tls_server.tls.ca_cert)
    with contextlib.closing(tls_server.connect()) as conn:
        start = current_position(conn)
        conn.cursor().execute(f"INSERT INTO {DB}.t VALUES (4, 'tls through the pipe')")
    with ProcessReader(settings, start, schemas={DB}, blocking=True) as reader:
        # The settings reached it through its stdin: nothing in its argv or environment.
        proc = Path(f"/proc/{reader.pid}")
        assert b"tls-pw" not in (proc / "cmdline").read_bytes()
        assert b"tls-pw" not in (proc / "environ").read_bytes()
        first = next(e for e in reader if isinstance(e, SourceTransaction) and e.changes)
    assert [c.image["id"] for c in first.changes] == [4]


def test_the_reader_process_refuses_a_certificate_from_another_ca(
        tls_server: LocalServer, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other", hostnames=("localhost",))
    settings = _settings(tls_server, source_host="localhost", source_user="tls_reader",
                         source_password="tls-pw", source_ssl_ca=other.ca_cert)
    with pytest.raises(ConnectError, match="TLS verification failed") as caught, \
            ProcessReader(settings, Position("binlog.000001", 4), schemas={DB}) as reader:
        list(reader)
    assert "tls-pw" not in caught.value.describe()
    assert caught.value.fix


@pytest.mark.bad_input
def test_tls_reader_refuses_a_certificate_from_another_ca(
    tls_server: LocalServer, tmp_path: Path, bad_input: BadInputRecorder
) -> None:
    other = make_tls_files(tmp_path / "other", hostnames=("localhost",))
    settings = _settings(
        tls_server,
        source_host="localhost",
        source_user="tls_reader",
        source_password="tls-pw",
        source_ssl_ca=other.ca_cert,
    )
    with pytest.raises(ConnectError, match="TLS verification failed") as caught:
        open_binlog(settings, Position("binlog.000001", 4), schemas={DB})
    bad_input.record(category="TLS", given="the binlog reader with a `SOURCE_DB_SSL_CA` of "
                     "another CA", outcome=caught.value.describe(), secrets=["tls-pw"])


@pytest.mark.bad_input
def test_rows_without_full_metadata_are_refused(bad_input: BadInputRecorder) -> None:
    server = start_server(
        "binlog-nometa", server_id=331, options={"binlog_row_metadata": "MINIMAL"}
    )
    try:
        _prepare(server)
        with pytest.raises(SourceError, match="binlog_row_metadata is not FULL") as caught:
            _write_and_read(server, _settings(server), f"INSERT INTO {DB}.t VALUES (3, 'x')")
        assert caught.value.table == f"{DB}.t"
        bad_input.record(category="binlog settings", given="`binlog_row_metadata=MINIMAL` "
                         "while streaming", outcome=caught.value.describe())
    finally:
        server.stop()


@pytest.mark.bad_input
def test_compressed_events_halt(bad_input: BadInputRecorder) -> None:
    options = {"log_bin_compress": "ON", "log_bin_compress_min_len": "10"}
    server = start_server("binlog-compress", server_id=341, options=options)
    try:
        _prepare(server)
        with pytest.raises(UnsupportedEventError, match="compressed") as caught:
            _write_and_read(
                server, _settings(server), f"INSERT INTO {DB}.t VALUES (4, '{'z' * 150}')"
            )
        bad_input.record(category="binlog settings", given="`log_bin_compress=ON` (compressed "
                         "row events)", outcome=caught.value.describe())
    finally:
        server.stop()
