"""Golden values: every column type read from the binlog equals what SELECT returns (PITFALLS 9).

The snapshot reads rows with SELECT through PyMySQL and the stream reads them from the binlog;
the mapping must see identical values, whatever the type. Unsigned extremes check that
full row metadata is applied (PITFALLS 4), emoji that utf8mb4 is decoded (PITFALLS 10).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sync.dev.localdb import LocalServer
from sync.dev.localenv import reader_settings
from sync.model import Position, SourceTransaction
from sync.settings import Settings
from sync.source import binlog
from sync.source.binlog import BinlogReader, open_binlog
from sync.source.position import current_position
from sync.source.split import ProcessReader

pytestmark = pytest.mark.integration

DB = "golden_types"

COLUMNS = """
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec1 DECIMAL(10,2), dec2 DECIMAL(30,10) UNSIGNED, dec0 DECIMAL(5,0),
  f FLOAT, d DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64),
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
  tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6),
  y YEAR,
  c CHAR(10), vc VARCHAR(300), tx TEXT, lat VARCHAR(40) CHARACTER SET latin1,
  u16 VARCHAR(10) CHARACTER SET utf16, u32 VARCHAR(10) CHARACTER SET utf32,
  ucs VARCHAR(10) CHARACTER SET ucs2, u16le VARCHAR(10) CHARACTER SET utf16le,
  ascii_text VARCHAR(10) CHARACTER SET ascii,
  bl BLOB, vb VARBINARY(20), bn BINARY(4),
  e ENUM('a','b','ü'), s SET('x','y','z'),
  j JSON
"""

# fmt: off
ROWS: list[dict[str, Any]] = [
    {"id": 1, "ti": -128, "tiu": 255, "si": -32768, "siu": 65535, "mi": -8388608,
     "miu": 16777215, "i": -2147483648, "iu": 4294967295, "bi": -9223372036854775808,
     "biu": 18446744073709551615, "dec1": "-12345678.99", "dec2": "99999999999999999999.9999999999",
     "dec0": "-99999", "f": 3.14, "d": -1.7976931348623157e308,
     "b1": b"\x01", "b10": b"\x02\x01", "b64": b"\xff" * 8,
     "dt": "1000-01-01", "dtm0": "1000-01-01 00:00:00", "dtm3": "2024-02-29 23:59:59.999",
     "dtm6": "9999-12-31 23:59:59.999999", "ts0": "1970-01-01 00:00:01",
     "ts6": "2038-01-19 03:14:07.999999",
     "tm0": "-838:59:59", "tm1": "-00:00:01.2", "tm2": "-01:00:01.25", "tm3": "-838:59:58.999",
     "tm4": "-00:00:00.0001", "tm5": "-12:34:56.78901", "tm6": "-00:00:00.000001",
     "y": 1901, "c": "ab", "vc": "emoji 😀 and ü", "tx": "long ✓ text",
     "lat": "café", "bl": b"\xff\x00\xfe\x80", "vb": b"\x80\x81", "bn": b"\x00\x01",
     "e": "ü", "s": "x,z", "j": '{"a": [1, 2.5, "ü"], "b": null}'},
    {"id": 2, "ti": 127, "tiu": 0, "si": 32767, "siu": 0, "mi": 8388607, "miu": 0,
     "i": 2147483647, "iu": 0, "bi": 9223372036854775807, "biu": 0, "dec1": "0.00",
     "dec2": "0.0000000001", "dec0": "0", "f": 1.2345678, "d": 2.2250738585072014e-308,
     "b1": b"\x00", "b10": b"\x00\x00", "b64": b"\x80" + b"\x00" * 7,
     "dt": "9999-12-31", "dtm0": "2000-02-29 12:34:56", "dtm3": "2000-01-01 00:00:00.001",
     "dtm6": "2000-01-01 00:00:00.000001", "ts0": "2038-01-19 03:14:07",
     "ts6": "1970-01-01 00:00:01.000001",
     "tm0": "838:59:59", "tm1": "00:00:00.9", "tm2": "12:00:00.5", "tm3": "-00:00:00.5",
     "tm4": "00:00:00.0001", "tm5": "838:59:58.99999", "tm6": "-12:34:56.789012",
     "y": 2155, "c": "", "vc": "", "tx": "", "lat": "", "bl": b"", "vb": b"", "bn": b"",
     "e": "a", "s": "", "j": "[]"},
    {"id": 3, "f": 123456789.0, "d": 0.1, "tm0": "00:00:00", "y": 0, "e": "", "s": "x,y,z",
     "dt": "0000-00-00", "dtm0": "0000-00-00 00:00:00", "dtm3": "0000-00-00 00:00:00.000",
     "dtm6": "2020-00-15 01:02:03.000004", "ts0": "0000-00-00 00:00:00",
     "ts6": "0000-00-00 00:00:00.000000", "tm1": "-838:59:59.0", "j": '"ü"',
     "c": "trail  ", "vc": "trail  "},
    {"id": 4, "dt": "2020-00-15", "dtm0": "2020-02-00 01:02:03", "dtm3": "0000-01-01 00:00:00.5",
     "f": -0.0001234567, "y": 2000},
    {"id": 5},  # every column NULL
    # Every byte the server's latin1 has beyond ASCII, the five Python's cp1252 lacks included.
    {"id": 6, "lat": bytes(range(0x80, 0xA0)), "u16": "A😀ü", "u32": "A😀ü", "ucs": "Aü€",
     "u16le": "A😀ü", "ascii_text": "plain~\x7f"},
    {"id": 7, "lat": bytes(range(0xA0, 0x100))[:40], "u16": "", "u32": "", "ucs": "",
     "u16le": "", "ascii_text": ""},
]
# fmt: on


def _settings(server: LocalServer) -> Settings:
    return reader_settings(server, server_id=4_300_101)


@pytest.fixture(scope="module", params=[True, False, "process"],
                ids=["lean", "library", "reader-process"])
def golden(
    source_server: LocalServer, request: pytest.FixtureRequest
) -> Iterator[tuple[dict[int, Any], dict[int, Any]]]:
    """Rows as SELECT returns them and as the reader streams them: through its lean row
    readers (which must then read every row event), through the library's, or as bytes from
    the reader process decoded in this one (which must then decode every row event)."""
    start, end, selected = _write_rows(source_server)
    if request.param == "process":
        yield selected, _through_the_reader_process(source_server, start, end)
        return
    lean: bool = request.param
    streamed: dict[int, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        if lean:
            # Dispatch goes through the handler table, so the row handlers are replaced there.
            row_kinds = [k for k, h in binlog._HANDLERS.items() if h is BinlogReader._on_rows]
            assert row_kinds
            for kind in row_kinds:
                patch.setitem(binlog._HANDLERS, kind, _not_lean)
        with open_binlog(
            _settings(source_server), start, schemas={DB}, end=end, lean=lean
        ) as reader:
            for event in reader:
                assert isinstance(event, SourceTransaction)
                for change in event.changes:
                    streamed[change.image["id"]] = dict(change.image)
    yield selected, streamed


def _write_rows(server: LocalServer) -> tuple[Position, Position, dict[int, Any]]:
    """The rows written afresh: where their binlog starts and ends, and SELECT's values."""
    server.execute(f"DROP DATABASE IF EXISTS {DB}")
    server.execute(f"CREATE DATABASE {DB}")
    server.execute(f"CREATE TABLE {DB}.t ({COLUMNS})")
    with contextlib.closing(server.connect(DB)) as conn, conn.cursor() as cur:
        start = current_position(conn)
        # Zero and partial dates need a permissive sql_mode, as legacy applications have.
        cur.execute("SET SESSION sql_mode = ''")
        for row in ROWS:
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cur.execute(f"INSERT INTO t ({names}) VALUES ({marks})", list(row.values()))
        cur.execute("UPDATE t SET ti = ti WHERE id = 1")  # a no-op: no row event
        cur.execute("UPDATE t SET i = 7 WHERE id = 3")
        end = current_position(conn)
        cur.execute("SELECT * FROM t ORDER BY id")
        names = [d[0] for d in cur.description]
        selected = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    return start, end, selected


def _through_the_reader_process(server: LocalServer, start: Position,
                                end: Position) -> dict[int, Any]:
    streamed: dict[int, Any] = {}
    with ProcessReader(_settings(server), start, schemas={DB}, end=end,
                       blocking=False) as reader:
        for event in reader:
            assert isinstance(event, SourceTransaction)
            for change in event.changes:
                streamed[change.image["id"]] = dict(change.image)
        # Every rows event was decoded here: none went through the library in the child.
        assert reader.expander.decoded == len(ROWS) + 1
    return streamed


def _not_lean(self: BinlogReader, event: Any) -> None:
    raise AssertionError("a row event went through the library's row parsing")


def test_every_row_arrives(golden: tuple[dict[int, Any], dict[int, Any]]) -> None:
    selected, streamed = golden
    assert sorted(streamed) == sorted(selected) == [r["id"] for r in ROWS]


@pytest.mark.parametrize("column", [c.split()[0] for c in COLUMNS.replace("\n", " ").split(", ")])
def test_binlog_value_equals_select(
    golden: tuple[dict[int, Any], dict[int, Any]], column: str
) -> None:
    selected, streamed = golden
    for row_id, row in selected.items():
        want, got = row[column], streamed[row_id][column]
        assert type(got) is type(want), (row_id, column, want, got)
        assert got == want, (row_id, column, want, got)
        if isinstance(want, float) and column == "f":
            # Compared as the server stores it: single precision.
            assert struct.pack("<f", got) == struct.pack("<f", want)


def test_edge_values_are_the_expected_python_values(
    golden: tuple[dict[int, Any], dict[int, Any]],
) -> None:
    _, streamed = golden
    assert streamed[1]["biu"] == 18446744073709551615  # unsigned never negative
    assert streamed[1]["tm1"] == -timedelta(seconds=1, microseconds=200000)
    assert streamed[1]["tm6"] == -timedelta(microseconds=1)
    assert streamed[3]["y"] == 0
    assert streamed[3]["dt"] == "0000-00-00"
    assert streamed[4]["dt"] == "2020-00-15"
    assert streamed[3]["ts6"] == "0000-00-00 00:00:00.000000"
    assert streamed[2]["s"] == ""
    assert streamed[1]["vc"] == "emoji 😀 and ü"
    assert streamed[1]["b10"] == b"\x02\x01"
    assert streamed[6]["lat"][:2] == "€\x81"  # as the server converts latin1 0x80 0x81
    assert streamed[6]["u16"] == streamed[6]["u32"] == "A😀ü"
    assert streamed[6]["ucs"] == "Aü€"
