"""Text the binlog reader cannot read exactly as SELECT does stops the stream with the table
and the position, never a different copy or a bare UnicodeDecodeError.

latin1, utf8mb4, utf16/utf32/ucs2 and ascii read exactly (test_binlog_golden); a byte above
0x7F in an ascii column, which the server shows as '?', does not decode; other single-byte
character sets convert some bytes differently from Python's codecs (greek 0xA1 is U+02BD
there, U+2018 in Python), so a column in one of them is refused.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from sync.dev.localdb import LocalServer
from sync.dev.localenv import reader_settings
from sync.errors import SourceError
from sync.source.binlog import open_binlog
from sync.source.position import current_position
from tests.bad_input import BadInputRecorder

pytestmark = pytest.mark.integration

DB = "charsets_t"


def _read(server: LocalServer, column: str, value: bytes, *, lean: bool) -> list[Any]:
    server.execute(f"DROP DATABASE IF EXISTS {DB}")
    server.execute(f"CREATE DATABASE {DB}")
    server.execute(f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, v {column})")
    with contextlib.closing(server.connect(DB)) as conn, conn.cursor() as cur:
        start = current_position(conn)
        cur.execute("SET SESSION sql_mode = ''")  # as a legacy application writes
        cur.execute("INSERT INTO t VALUES (1, %s)", [value])
    settings = reader_settings(server, server_id=4_300_511)
    with open_binlog(settings, start, schemas={DB}, blocking=False, lean=lean) as reader:
        return list(reader)


@pytest.mark.bad_input
@pytest.mark.parametrize("lean", [True, False], ids=["lean", "library"])
def test_a_byte_an_ascii_column_cannot_hold_halts_with_table_and_position(
        source_server: LocalServer, lean: bool, bad_input: BadInputRecorder) -> None:
    with pytest.raises(SourceError) as caught:
        _read(source_server, "VARCHAR(20) CHARACTER SET ascii", b"caf\xe9", lean=lean)
    error = caught.value
    assert error.table == f"{DB}.t" and error.position is not None
    assert "not valid ascii" in error.reason and "nothing of it was applied" in error.reason
    assert "caf" not in error.describe()  # no row values in messages
    assert error.fix and "aurora-sync bootstrap --force" in error.fix
    bad_input.record(category="invalid UTF-8", given="byte 0xE9 in an ascii column of aurora "
                     f"(`sql_mode=''`), read by the {'lean' if lean else 'library'} row path",
                     outcome=error.describe(), effect="the stream halts before the transaction")


@pytest.mark.bad_input
def test_a_column_in_a_charset_read_differently_is_refused(
        source_server: LocalServer, bad_input: BadInputRecorder) -> None:
    with pytest.raises(SourceError) as caught:
        _read(source_server, "VARCHAR(20) CHARACTER SET greek", b"\xa1\xe1", lean=True)
    error = caught.value
    assert error.table == f"{DB}.t" and error.position is not None
    assert "column v" in error.reason and "greek" in error.reason
    assert error.fix and "CONVERT TO CHARACTER SET utf8mb4" in error.fix
    bad_input.record(category="invalid UTF-8", given="a `greek` text column in aurora (its "
                     "server conversion differs from Python's codec)", outcome=error.describe(),
                     effect="the stream halts before the transaction")
