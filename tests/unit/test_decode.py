"""Pure decoding: temporal values from raw binlog bytes, normalisations, statement parsing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from sync.source import decode
from sync.source.decode import ColumnSpec, Kind, classify


def _time2_bytes(value: timedelta, fsp: int) -> bytes:
    """Encode TIME2 as MySQL's my_time_packed_to_binary does (the C code, line by line)."""
    negative = value < timedelta(0)
    total = abs(value)
    seconds = total.days * 86400 + total.seconds
    hms = ((seconds // 3600) << 12) | (((seconds // 60) % 60) << 6) | (seconds % 60)
    packed = (hms << 24) + total.microseconds
    packed = -packed if negative else packed
    intpart = packed >> 24  # arithmetic shift, as C on a signed longlong
    frac = int(abs(packed) % (1 << 24)) * (-1 if packed < 0 else 1)  # C's truncating %
    if fsp in (5, 6):
        return (packed + 0x800000000000).to_bytes(6, "big")
    head = (intpart + 0x800000).to_bytes(3, "big")
    size = decode.fsp_bytes(fsp)
    if size:
        scale = 10000 if size == 1 else 100
        stored = frac // scale if frac >= 0 else -(-frac // scale)  # C's truncating division
        return head + (stored & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    return head


TIMES = [
    ("00:00:00", 0),
    ("-00:00:01", 0),
    ("838:59:59", 0),
    ("-838:59:59", 0),
    ("-00:00:01.2", 1),
    ("-00:00:00.5", 1),
    ("12:00:00.5", 1),
    ("-01:00:01.25", 2),
    ("-838:59:58.999", 3),
    ("-00:00:00.0001", 4),
    ("-12:34:56.78901", 5),
    ("-00:00:00.000001", 6),
    ("-12:34:56.789012", 6),
    ("838:59:58.999999", 6),
]


def _td(text: str) -> timedelta:
    sign = -1 if text.startswith("-") else 1
    h, m, s = text.lstrip("-").split(":")
    return sign * timedelta(hours=int(h), minutes=int(m), seconds=float(s))


@pytest.mark.parametrize(("text", "fsp"), TIMES)
def test_time2_round_trips_negative_fractions(text: str, fsp: int) -> None:
    value = _td(text)
    raw = _time2_bytes(value, fsp)
    assert len(raw) == 3 + decode.fsp_bytes(fsp)
    assert decode.time2_value(raw, fsp) == value


def _datetime2_bytes(parts: tuple[int, ...], usec: int, fsp: int) -> bytes:
    year, month, day, hour, minute, second = parts
    ymd = ((year * 13 + month) << 5) | day
    intpart = (ymd << 17) | (hour << 12) | (minute << 6) | second
    raw = (intpart + 0x8000000000).to_bytes(5, "big")
    size = decode.fsp_bytes(fsp)
    scale = {0: 1, 1: 10000, 2: 100, 3: 1}[size]
    return raw + (usec // scale).to_bytes(size, "big") if size else raw


@pytest.mark.parametrize(
    ("parts", "usec", "fsp", "expected"),
    [
        ((2024, 2, 29, 23, 59, 59), 999000, 3, datetime(2024, 2, 29, 23, 59, 59, 999000)),
        ((9999, 12, 31, 23, 59, 59), 999999, 6, datetime(9999, 12, 31, 23, 59, 59, 999999)),
        ((0, 0, 0, 0, 0, 0), 0, 0, "0000-00-00 00:00:00"),
        ((0, 0, 0, 0, 0, 0), 0, 3, "0000-00-00 00:00:00.000"),
        ((2020, 0, 15, 1, 2, 3), 4, 6, "2020-00-15 01:02:03.000004"),
        ((2020, 2, 0, 1, 2, 3), 500000, 1, "2020-02-00 01:02:03.5"),
    ],
)
def test_datetime2_gives_datetimes_or_the_servers_text(
    parts: tuple[int, ...], usec: int, fsp: int, expected: object
) -> None:
    assert decode.datetime2_value(_datetime2_bytes(parts, usec, fsp), fsp) == expected


@pytest.mark.parametrize(
    ("ymd", "expected"),
    [((2024, 2, 29), date(2024, 2, 29)), ((0, 0, 0), "0000-00-00"), ((2020, 0, 15), "2020-00-15")],
)
def test_date_gives_dates_or_the_servers_text(ymd: tuple[int, int, int], expected: object) -> None:
    year, month, day = ymd
    raw = ((year << 9) | (month << 5) | day).to_bytes(3, "little")
    assert decode.date_value(raw) == expected


def test_old_datetime_format() -> None:
    assert decode.datetime_value((20240229235959).to_bytes(8, "little")) == datetime(
        2024, 2, 29, 23, 59, 59
    )
    assert decode.datetime_value(bytes(8)) == "0000-00-00 00:00:00"


def _fix(spec: ColumnSpec, value: object, source: str | None = None) -> object:
    fixers = decode.row_fixers((spec,))
    row = {spec.name: value}
    decode.fix_row(row, {spec.name: source} if source else {}, fixers)
    return row[spec.name]


def test_normalisations_match_what_select_returns() -> None:
    assert _fix(ColumnSpec("f", decode.T_FLOAT), 1.2345677614212036) == 1.23457
    assert _fix(ColumnSpec("f", decode.T_FLOAT), 123456792.0) == 123457000.0
    assert _fix(ColumnSpec("y", decode.T_YEAR), 1900) == 0
    assert _fix(ColumnSpec("y", decode.T_YEAR), 2155) == 2155
    ts = ColumnSpec("ts", decode.T_TIMESTAMP2, fsp=6)
    assert _fix(ts, decode.EPOCH) == "0000-00-00 00:00:00.000000"
    assert _fix(ts, datetime(1970, 1, 1, 0, 0, 1)) == datetime(1970, 1, 1, 0, 0, 1)
    st = ColumnSpec("s", decode.T_SET, set_values=("x", "y", "z"))
    assert _fix(st, {"z", "x"}) == "x,z"
    assert _fix(st, None, "empty set") == ""
    assert _fix(st, None, "null") is None
    assert _fix(ColumnSpec("b", decode.T_BLOB, binary=True), "") == b""
    assert _fix(ColumnSpec("b", decode.T_STRING, binary=True, length=4), b"\x01") == b"\x01\0\0\0"
    assert _fix(ColumnSpec("c", decode.T_STRING, length=4), "ab") == "ab"
    assert _fix(ColumnSpec("j", decode.T_JSON), {b"a": [1, b"x"]}) == '{"a": [1, "x"]}'
    assert decode.row_fixers((ColumnSpec("i", 3), ColumnSpec("v", decode.T_VARCHAR))) == ()


@pytest.mark.parametrize(
    ("query", "kind", "label", "tables"),
    [
        ("ALTER TABLE `a`.`t` ADD COLUMN z INT", Kind.DDL, "ALTER TABLE", [("a", "t")]),
        ("alter online table t add index (x)", Kind.DDL, "ALTER TABLE", [("cur", "t")]),
        ("ALTER TABLE t RENAME COLUMN a TO b", Kind.DDL, "ALTER TABLE", [("cur", "t")]),
        ("ALTER TABLE t RENAME TO x.u", Kind.DDL, "ALTER TABLE", [("cur", "t"), ("x", "u")]),
        (
            "CREATE TABLE IF NOT EXISTS t2 LIKE aurora.t",
            Kind.DDL,
            "CREATE TABLE",
            [("cur", "t2"), ("aurora", "t")],
        ),
        ("CREATE OR REPLACE TEMPORARY TABLE x.y (a int)", Kind.DDL, "CREATE TABLE", [("x", "y")]),
        (
            "DROP TABLE `t`,`x`.`y` /* generated by server */",
            Kind.DDL,
            "DROP TABLE",
            [("cur", "t"), ("x", "y")],
        ),
        (
            "RENAME TABLE a TO b, c.d TO e.f",
            Kind.DDL,
            "RENAME TABLE",
            [("cur", "a"), ("cur", "b"), ("c", "d"), ("e", "f")],
        ),
        ("TRUNCATE t", Kind.DDL, "TRUNCATE TABLE", [("cur", "t")]),
        ("TRUNCATE TABLE `we``ird`", Kind.DDL, "TRUNCATE TABLE", [("cur", "we`ird")]),
        ("CREATE UNIQUE INDEX i ON s.t (a)", Kind.DDL, "CREATE INDEX", [("s", "t")]),
        ("DROP INDEX i ON t", Kind.DDL, "DROP INDEX", [("cur", "t")]),
        (
            "/* note */ /*!40000 ALTER TABLE `t` DISABLE KEYS */",
            Kind.DDL,
            "ALTER TABLE",
            [("cur", "t")],
        ),
        ("-- c\nALTER TABLE t FORCE", Kind.DDL, "ALTER TABLE", [("cur", "t")]),
        ("INSERT INTO t VALUES (1)", Kind.DML, "INSERT", [("cur", "t")]),
        ("LOAD DATA INFILE 'x' INTO TABLE s.t", Kind.DML, "LOAD", [("s", "t")]),
        ("CREATE USER 'u'@'%' IDENTIFIED BY 'secret'", Kind.OTHER, "CREATE", []),
        ("GRANT ALL ON *.* TO x", Kind.OTHER, "GRANT", []),
        ("BEGIN", Kind.BEGIN, "BEGIN", []),
        ("COMMIT", Kind.COMMIT, "COMMIT", []),
        ("ROLLBACK", Kind.ROLLBACK, "ROLLBACK", []),
        ("ROLLBACK TO SAVEPOINT a", Kind.OTHER, "ROLLBACK", []),
        ("SAVEPOINT a", Kind.OTHER, "SAVEPOINT", []),
    ],
)
def test_classify(query: str, kind: Kind, label: str, tables: list[tuple[str, str]]) -> None:
    statement = classify(query, "cur")
    assert (statement.kind, statement.label, list(statement.tables)) == (kind, label, tables)


def test_classify_schemas_and_xa_ids() -> None:
    assert classify("DROP SCHEMA IF EXISTS `aurora`", "cur").schemas == ("aurora",)
    assert classify("CREATE DATABASE foo", "cur").schemas == ("foo",)
    commit = classify("XA COMMIT X'7831',X'',1", "")
    assert (commit.kind, commit.xid) == (Kind.XA_COMMIT, "7831,,1")
    assert commit.xid == decode.xid_key(1, b"x1", b"")
    assert classify("XA START 'x1'", "").xid == "7831,,1"
    assert classify("XA ROLLBACK X'7832',X'01',7", "").xid == "7832,01,7"
    assert classify("XA END X'7831',X'',1", "").kind is Kind.XA_END
