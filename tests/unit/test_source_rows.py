"""The lean row readers on hand-made row bytes: what they read, and what they leave to the
library (the golden integration test compares every type against SELECT)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sync.model import Op
from sync.source.rows import Image, TableReader, compile_table


def column(name: str, type_code: int, **attrs: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"unsigned": False, "character_set_name": None}
    return SimpleNamespace(name=name, type=type_code, **{**base, **attrs})


ID = column("id", 3)  # INT
PRICE = column("price", 246, precision=5, decimals=2)  # DECIMAL(5,2)
NAME = column("name", 15, max_length=80, character_set_name="utf8mb4")  # VARCHAR(20)


def row(nulls: int, *values: bytes) -> bytes:
    return bytes([nulls]) + b"".join(values)


def test_a_row_is_read_by_name_with_nulls_and_decimals() -> None:
    reader = compile_table([ID, PRICE, NAME])
    assert reader is not None
    body = reader.present + row(0, (7).to_bytes(4, "little"), b"\x80\x7b\x2d", b"\x02\xc3\xbc")
    body += row(0b100, (-1).to_bytes(4, "little", signed=True), b"\x7f\x84\xd2")
    assert reader.rows(body, 0, len(body), update=False) == [
        {"id": 7, "price": Decimal("123.45"), "name": "ü"},
        {"id": -1, "price": Decimal("-123.45"), "name": None},
    ]


def test_an_update_has_both_bitmaps_and_images_in_pairs() -> None:
    reader = compile_table([ID])
    assert reader is not None
    one, two = (1).to_bytes(4, "little"), (2).to_bytes(4, "little")
    body = reader.present * 2 + row(0, one) + row(0, two)
    assert reader.rows(body, 0, len(body), update=True) == [{"id": 1}, {"id": 2}]
    assert reader.rows(body[: len(body) - 4 - 1], 0, len(body) - 5, update=True) is None


def test_partial_images_and_short_bodies_are_left_to_the_library() -> None:
    reader = compile_table([ID, NAME])
    assert reader is not None
    partial = b"\x01" + row(0, (1).to_bytes(4, "little"))
    assert reader.rows(partial, 0, len(partial), update=False) is None
    cut = reader.present + row(0, (1).to_bytes(4, "little"), b"\x05ab")
    assert reader.rows(cut, 0, len(cut), update=False) is None


def test_types_without_a_lean_reader_leave_the_table_to_the_library() -> None:
    old_time = column("t", 11)
    geometry = column("g", 255, length_size=4)
    enum_without_values = column("e", 247, enum_values=None, size=1)
    swe7 = column("u", 15, max_length=40, character_set_name="swe7")  # no Python codec
    for odd in (old_time, geometry, enum_without_values, swe7):
        assert compile_table([ID, odd]) is None
    assert compile_table([column(None, 3)]) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("charset", "raw", "text"), [
    ("cp1252", b"\x80\x81\x8d\x8f\x90\x9d\xe9", "€\x81\x8d\x8f\x90\x9dé"),  # latin1
    ("latin1", b"\x9d", "\x9d"),
    ("utf16", "A😀".encode("utf-16-be"), "A😀"),
    ("utf32", "A😀".encode("utf-32-be"), "A😀"),
    ("ucs2", "Aü".encode("utf-16-be"), "Aü"),
    ("utf16le", "A😀".encode("utf-16-le"), "A😀"),
])
def test_text_is_decoded_as_the_server_converts_it(charset: str, raw: bytes, text: str) -> None:
    reader = compile_table([ID, column("v", 15, max_length=40, character_set_name=charset)])
    assert reader is not None
    body = reader.present + row(0, (1).to_bytes(4, "little"), bytes([len(raw)]) + raw)
    assert reader.rows(body, 0, len(body), update=False) == [{"id": 1, "v": text}]


# --- the generated decoder against the column readers ------------------------------------
#
# TableReader.rows runs a decoder generated per table map; rows_by_columns runs each column's
# reader in turn, as rows did before. Both must give the same values, the same None and the
# same errors for any bytes.

TINY, SHORT, LONG, FLOAT, DOUBLE, TIMESTAMP, LONGLONG, INT24 = 1, 2, 3, 4, 5, 7, 8, 9
DATE, DATETIME, YEAR, VARCHAR, BIT = 10, 12, 13, 15, 16
TIMESTAMP2, DATETIME2, TIME2 = 17, 18, 19
NEWDECIMAL, ENUM, SET, BLOB, STRING = 246, 247, 248, 252, 254
CHARSETS = ("utf8mb4", "utf8mb3", "utf8", "latin1", "cp1252", "ascii", "utf16", "utf16le",
            "utf32", "ucs2", "binary", None)
CODECS = {"latin1": "cp1252", "cp1252": "cp1252", "ascii": "ascii", "utf16": "utf-16-be",
          "ucs2": "utf-16-be", "utf32": "utf-32-be", "utf16le": "utf-16-le"}


def rows_by_columns(reader: TableReader, data: bytes, pos: int, end: int,
                    update: bool) -> list[Image] | None:
    """``reader.rows`` with each column's reader in turn: the generated decoder's reference."""

    def decode(data: bytes, pos: int, end: int) -> tuple[list[Image], int]:
        width = len(reader.present)
        images: list[Image] = []
        while pos < end:
            nulls = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            image: Image = {}
            for index, (name, read) in enumerate(reader.columns):
                if nulls >> index & 1:
                    image[name] = None
                else:
                    image[name], pos = read(data, pos)
            images.append(image)
        return images, pos

    return replace(reader, decoder=decode).rows(data, pos, end, update)


def outcome(read: Callable[[bytes, int, int, bool], Any], body: bytes, end: int,
            update: bool) -> str:
    """What a rows call gives, as text that tells types apart (b'' from '', date from
    datetime, Decimal('1.0') from Decimal('1.00')) and equals for NaN."""
    try:
        return repr(read(body, 0, end, update))
    except Exception as error:  # noqa: BLE001 - whatever one path raises, the other must
        return f"raised {type(error).__name__}: {error}"


def assert_same(reader: TableReader, body: bytes, end: int | None = None,
                update: bool = False) -> str:
    end = len(body) if end is None else end
    generated = outcome(reader.rows, body, end, update)
    assert generated == outcome(
        lambda *args: rows_by_columns(reader, *args), body, end, update)
    return generated


def date_bytes(year: int, month: int, day: int) -> bytes:
    return (year << 9 | month << 5 | day).to_bytes(3, "little")


def datetime2_bytes(year: int, month: int, day: int, hour: int, minute: int, second: int,
                    fraction: bytes = b"") -> bytes:
    packed = ((year * 13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second
    return (packed + 0x8000000000).to_bytes(5, "big") + fraction


def text(raw: bytes, length_bytes: int = 1) -> bytes:
    return len(raw).to_bytes(length_bytes, "little") + raw


EVERY_TYPE = [
    column("ti", TINY), column("tiu", TINY, unsigned=True),
    column("si", SHORT), column("siu", SHORT, unsigned=True),
    column("mi", INT24), column("miu", INT24, unsigned=True),
    column("i", LONG), column("iu", LONG, unsigned=True),
    column("bi", LONGLONG), column("biu", LONGLONG, unsigned=True),
    column("f", FLOAT), column("d", DOUBLE),
    column("y", YEAR), column("dt", DATE), column("dtm", DATETIME), column("ts", TIMESTAMP),
    column("dtm0", DATETIME2, fsp=0), column("dtm3", DATETIME2, fsp=3),
    column("dtm6", DATETIME2, fsp=6),
    column("ts0", TIMESTAMP2, fsp=0), column("ts1", TIMESTAMP2, fsp=1),
    column("ts6", TIMESTAMP2, fsp=6),
    column("tm0", TIME2, fsp=0), column("tm2", TIME2, fsp=2), column("tm5", TIME2, fsp=5),
    column("dec", NEWDECIMAL, precision=30, decimals=10),
    column("vc", VARCHAR, max_length=1200, character_set_name="utf8mb4"),
    column("lat", VARCHAR, max_length=40, character_set_name="latin1"),
    column("u16", VARCHAR, max_length=40, character_set_name="utf16"),
    column("vb", VARCHAR, max_length=20, character_set_name="binary"),
    column("c", STRING, max_length=40, character_set_name="utf8mb4"),
    column("bn", STRING, max_length=4, character_set_name="binary"),
    column("tx", BLOB, length_size=2, character_set_name="utf8mb4"),
    column("mt", BLOB, length_size=3, character_set_name="utf8mb4"),
    column("bl", BLOB, length_size=4, character_set_name="binary"),
    column("e", ENUM, enum_values=["", "a", "ü"], size=1),
    column("e2", ENUM, enum_values=[str(n) for n in range(300)], size=2),
    column("s", SET, set_values=["x", "y", "z"], size=1),
    column("b", BIT, bytes=2),
]


def every_type_row(nulls: int, *, zero: bool) -> bytes:
    """One row of EVERY_TYPE: ordinary values, or zero and odd ones (``zero``)."""
    values = [
        b"\x80", b"\xff", (-2).to_bytes(2, "little", signed=True), b"\xff\xff",
        (-8388608).to_bytes(3, "little", signed=True), b"\xff\xff\xff",
        (-7).to_bytes(4, "little", signed=True), b"\xff" * 4,
        (-(2**63)).to_bytes(8, "little", signed=True), b"\xff" * 8,
        struct.pack("<f", 3.14), struct.pack("<d", -0.0),
        b"\x00" if zero else b"\x7c",
        date_bytes(0, 0, 0) if zero else date_bytes(2024, 2, 29),
        (0 if zero else 20240229123456).to_bytes(8, "little"),
        (0 if zero else 1700000000).to_bytes(4, "little"),
        datetime2_bytes(0, 0, 0, 0, 0, 0) if zero else datetime2_bytes(9999, 12, 31, 23, 59, 59),
        datetime2_bytes(2020, 0, 15, 1, 2, 3, (9990).to_bytes(2, "big"))
        if zero else datetime2_bytes(1000, 1, 1, 0, 0, 0, (10).to_bytes(2, "big")),
        datetime2_bytes(2024, 2, 30, 0, 0, 0, (4).to_bytes(3, "big"))
        if zero else datetime2_bytes(2000, 1, 1, 0, 0, 0, (999999).to_bytes(3, "big")),
        (0).to_bytes(4, "big") if zero else (2**31 - 1).to_bytes(4, "big"),
        (0).to_bytes(5, "big") if zero else (1).to_bytes(4, "big") + b"\x5a",
        (0).to_bytes(7, "big") if zero else (1).to_bytes(4, "big") + (1).to_bytes(3, "big"),
        (0x800000 - 1).to_bytes(3, "big"),  # -00:00:01
        (0x800000 - 1).to_bytes(3, "big") + b"\xff",  # -00:00:00.01 (negative, fractional)
        (0x800000 - 1).to_bytes(3, "big") + (0x1000000 - 12345).to_bytes(3, "big"),
        b"\x80" + b"\x00" * 13 if zero else bytes([0x7F] + [0xFF] * 13),  # 0, -99...99
        text("emoji 😀 and ü".encode(), 2),
        text(b"caf\xe9 \x81\x9d"),
        text("A😀".encode("utf-16-be")),
        text(b"\x00\xff"),
        text(b"" if zero else b"ab  "),
        text(b"" if zero else b"\x01"),  # BINARY(4): padded back to 4 bytes
        text("long ✓ text".encode(), 2),
        text(b"", 3) if zero else text(b"medium", 3),
        text(b"\xff\x00", 4),
        b"\x00" if zero else b"\x02",
        (0 if zero else 299).to_bytes(2, "little"),
        b"\x00" if zero else b"\x05",
        b"\x03\xff",
    ]
    assert len(values) == len(EVERY_TYPE)
    return (nulls.to_bytes((len(EVERY_TYPE) + 7) // 8, "little")
            + b"".join(v for i, v in enumerate(values) if not nulls >> i & 1))


def test_every_type_reads_the_same_through_the_generated_decoder() -> None:
    reader = compile_table(EVERY_TYPE)
    assert reader is not None
    every_other = sum(1 << i for i in range(0, len(EVERY_TYPE), 2))
    rows = [every_type_row(0, zero=False), every_type_row(0, zero=True),
            every_type_row(every_other, zero=False), every_type_row(every_other >> 1, zero=True),
            every_type_row((1 << len(EVERY_TYPE)) - 1, zero=False)]
    body = reader.present + b"".join(rows)
    got = reader.rows(body, 0, len(body), update=False)
    assert got is not None and repr(got) == assert_same(reader, body)
    ordinary, zero, _, _, nulls = got
    assert nulls == dict.fromkeys(nulls)
    assert {k: ordinary[k] for k in ("mi", "miu", "dt", "dtm3", "dtm6", "ts1", "ts6")} == {
        "mi": -8388608, "miu": 16777215, "dt": date(2024, 2, 29),
        "dtm3": datetime(1000, 1, 1, 0, 0, 0, 1000), "dtm6": datetime(2000, 1, 1, 0, 0, 0, 999999),
        "ts1": datetime(1970, 1, 1, 0, 0, 1, 900000), "ts6": datetime(1970, 1, 1, 0, 0, 1, 1)}
    assert (ordinary["y"], ordinary["vc"], ordinary["lat"], ordinary["bn"], ordinary["e2"]) == (
        2024, "emoji 😀 and ü", "café \x81\x9d", b"\x01\x00\x00\x00", "299")
    assert {k: zero[k] for k in ("y", "dt", "dtm0", "dtm3", "dtm6", "ts0", "ts1", "ts6", "bn")} == {
        "y": 0, "dt": "0000-00-00", "dtm0": "0000-00-00 00:00:00",
        "dtm3": "2020-00-15 01:02:03.999", "dtm6": "2024-02-30 00:00:00.000004",
        "ts0": "0000-00-00 00:00:00", "ts1": "0000-00-00 00:00:00.0",
        "ts6": "0000-00-00 00:00:00.000000", "bn": b"\x00\x00\x00\x00"}
    assert (zero["tm2"], zero["dec"], zero["s"], zero["b"]) == (
        -timedelta(microseconds=10000), Decimal("0E-10"), "", b"\x03\xff")
    boundaries = {len(reader.present) + sum(map(len, rows[:n])) for n in range(len(rows))}
    for cut in range(len(reader.present), len(body)):  # short bodies: None both ways
        cut_short = assert_same(reader, body[:cut])
        assert assert_same(reader, body, cut) == cut_short
        assert (cut_short == "None") is (cut not in boundaries)


def test_odd_values_fail_alike_both_ways() -> None:
    reader = compile_table([column("e", ENUM, enum_values=["a"], size=1),
                            column("ts", TIMESTAMP2, fsp=6),
                            column("v", VARCHAR, max_length=40, character_set_name="utf8mb4")])
    assert reader is not None
    for value in (
        b"\x05" + bytes(7) + b"\x00",  # an ENUM index past its values
        b"\x00" + bytes(4) + (2**23 - 1).to_bytes(3, "big") + b"\x00",  # 8.3 seconds
        b"\x00" + bytes(7) + b"\x02\xc3\x28",  # not UTF-8
    ):
        body = reader.present + b"\x00" + value
        assert assert_same(reader, body) == "None"
    body = reader.present + b"\x00\x00" + bytes(7) + b"\x00"
    assert assert_same(reader, body) == "[{'e': 'a', 'ts': '0000-00-00 00:00:00.000000', 'v': ''}]"
    assert reader.rows(body, 0, len(body) + 1, update=False) is None  # an end past the bytes


@pytest.mark.parametrize("name", [
    "it's", 'say "hi"', "back\\slash", "new\nline", "\r\x00\t", "'''", '"""', "\\",
    "x'}); import os; os._exit(1) #", "v0", "n_0", "data", "pos", "ü😀", "\ud800",
])
def test_column_names_are_never_source(name: str) -> None:
    columns = [column(name, LONG), column(name + "2", VARCHAR, max_length=40,
                                          character_set_name="utf8mb4")]
    reader = compile_table(columns)
    assert reader is not None
    body = reader.present + row(0b10, (5).to_bytes(4, "little"))
    assert reader.rows(body, 0, len(body), update=False) == [{name: 5, name + "2": None}]


def test_many_columns_have_a_wide_null_bitmap() -> None:
    columns = [column(f"c{i}", TINY, unsigned=True) for i in range(70)]
    reader = compile_table(columns)
    assert reader is not None
    nulls = sum(1 << i for i in range(0, 70, 3))
    values = bytes(i for i in range(70) if not nulls >> i & 1)
    body = reader.present + nulls.to_bytes(9, "little") + values
    got = reader.rows(body, 0, len(body), update=False)
    assert got == [{f"c{i}": None if i % 3 == 0 else i for i in range(70)}]
    assert_same(reader, body)


def test_a_table_without_columns_is_left_to_the_library() -> None:
    assert compile_table([]) is None


# Random tables and rows: every column type with random attributes, values both valid and
# random bytes, NULLs, several rows, updates, short bodies and trailing bytes.

Value = st.SearchStrategy[bytes]


def _fixed(size: int) -> Value:
    return st.binary(min_size=size, max_size=size)


def _fraction(fsp: int) -> Value:
    return _fixed((fsp + 1) // 2)


def _datetime2(fsp: int) -> Value:
    valid = st.builds(datetime2_bytes, st.integers(0, 9999), st.integers(0, 13),
                      st.integers(0, 31), st.integers(0, 24), st.integers(0, 59),
                      st.integers(0, 59), _fraction(fsp))
    return st.one_of(valid, _fixed(5 + (fsp + 1) // 2))


def _date() -> Value:
    valid = st.builds(date_bytes, st.integers(0, 9999), st.integers(0, 13), st.integers(0, 31))
    return st.one_of(valid, _fixed(3))


def _timestamp2(fsp: int) -> Value:
    seconds = st.one_of(st.just(0), st.integers(-(2**31), 2**31 - 1)).map(
        lambda s: s.to_bytes(4, "big", signed=True))
    return st.builds(bytes.__add__, seconds, _fraction(fsp))


def _text(charset: str | None, length_bytes: int) -> Value:
    codec = CODECS.get(charset or "", "utf-8")
    encoded = st.text(max_size=20).map(
        lambda t: t.encode(codec, "ignore") if charset != "binary" else t.encode())
    if codec == "ascii":
        encoded = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=20).map(str.encode)
    raw = st.one_of(encoded, st.binary(max_size=20))
    return raw.map(lambda r: text(r, length_bytes))


@st.composite
def typed_column(draw: st.DrawFn, name: str) -> tuple[SimpleNamespace, Value]:
    kind = draw(st.sampled_from(["int", "float", "double", "year", "date", "datetime", "timestamp",
                                 "datetime2", "timestamp2", "time2", "decimal", "varchar",
                                 "char", "blob", "enum", "set", "bit"]))
    fsp = draw(st.integers(0, 6))
    charset = draw(st.sampled_from(CHARSETS))
    if kind == "int":
        code, size = draw(st.sampled_from([(TINY, 1), (SHORT, 2), (INT24, 3), (LONG, 4),
                                           (LONGLONG, 8)]))
        return column(name, code, unsigned=draw(st.booleans())), _fixed(size)
    simple = {"float": (FLOAT, 4), "double": (DOUBLE, 8), "year": (YEAR, 1),
              "datetime": (DATETIME, 8), "timestamp": (TIMESTAMP, 4)}
    if kind in simple:
        code, size = simple[kind]
        return column(name, code), _fixed(size)
    if kind == "date":
        return column(name, DATE), _date()
    if kind == "datetime2":
        return column(name, DATETIME2, fsp=fsp), _datetime2(fsp)
    if kind == "timestamp2":
        return column(name, TIMESTAMP2, fsp=fsp), _timestamp2(fsp)
    if kind == "time2":
        return column(name, TIME2, fsp=fsp), _fixed(3 + (fsp + 1) // 2)
    if kind == "decimal":
        precision = draw(st.integers(1, 65))
        decimals = draw(st.integers(0, min(30, precision)))
        reader = compile_table([column(name, NEWDECIMAL, precision=precision, decimals=decimals)])
        assert reader is not None
        size = reader.columns[0][1](bytes(64), 0)[1]
        return column(name, NEWDECIMAL, precision=precision, decimals=decimals), _fixed(size)
    if kind in ("varchar", "char"):
        max_length = draw(st.sampled_from([0, 4, 40, 255, 256, 1020]))
        length_bytes = 2 if max_length > 255 else 1
        code = VARCHAR if kind == "varchar" else STRING
        return (column(name, code, max_length=max_length, character_set_name=charset),
                _text(charset, length_bytes))
    if kind == "blob":
        length_size = draw(st.integers(1, 4))
        return (column(name, BLOB, length_size=length_size, character_set_name=charset),
                _text(charset, length_size))
    size = draw(st.integers(1, 2)) if kind == "enum" else draw(st.integers(1, 8))
    if kind == "bit":
        return column(name, BIT, bytes=size), _fixed(size)
    values = draw(st.lists(st.text(max_size=3), min_size=1, max_size=10))
    index = st.integers(0, len(values) + 1 if kind == "enum" else 2 ** (8 * size) - 1)
    value = index.map(lambda n: n.to_bytes(size, "little"))
    if kind == "enum":
        return column(name, ENUM, enum_values=values, size=size), value
    return column(name, SET, set_values=values, size=size), value


@st.composite
def columns_and_body(draw: st.DrawFn) -> tuple[list[SimpleNamespace], bytes, bool]:
    count = draw(st.integers(1, 12))
    typed = [draw(typed_column(f"c{i}")) for i in range(count)]
    columns = [c for c, _ in typed]
    reader = compile_table(columns)
    assume(reader is not None)
    assert reader is not None
    update = draw(st.booleans())
    images = []
    for _ in range(draw(st.integers(1, 4))):
        nulls = draw(st.integers(0, (1 << count) - 1))
        values = [draw(v) for i, (_, v) in enumerate(typed) if not nulls >> i & 1]
        images.append(nulls.to_bytes(len(reader.present), "little") + b"".join(values))
    return columns, reader.present * (2 if update else 1) + b"".join(images), update


@st.composite
def table_and_body(draw: st.DrawFn) -> tuple[TableReader, bytes, bool]:
    columns, body, update = draw(columns_and_body())
    reader = compile_table(columns)
    assert reader is not None
    return reader, body, update


@settings(max_examples=400, deadline=None)
@given(table_and_body(), st.integers(0, 4), st.integers(0, 3))
def test_random_rows_read_the_same_both_ways(case: tuple[TableReader, bytes, bool],
                                             cut: int, checksum: int) -> None:
    reader, body, update = case
    padded = body + b"\xa5" * checksum  # bytes past the end that a reader must not use
    assert_same(reader, padded, len(body), update)
    assert_same(reader, padded, max(0, len(body) - cut), update)


@settings(max_examples=200, deadline=None)
@given(table_and_body(), st.binary(max_size=120))
def test_random_bytes_read_the_same_both_ways(case: tuple[TableReader, bytes, bool],
                                              noise: bytes) -> None:
    reader, _, update = case
    body = reader.present * (2 if update else 1) + noise
    assert_same(reader, body, update=update)


def test_long_values_use_every_byte_of_their_length() -> None:
    reader = compile_table([
        column("tx", BLOB, length_size=2, character_set_name="utf8mb4"),
        column("mt", BLOB, length_size=3, character_set_name="utf8mb4"),
        column("lb", BLOB, length_size=4, character_set_name="binary"),
        column("vc", VARCHAR, max_length=1200, character_set_name="utf8mb4"),
    ])
    assert reader is not None
    values = ["ü" * 32767, "✓" * 70000, b"\x01" * 70001, "x" * 300]
    raw = [text(values[0].encode(), 2), text(values[1].encode(), 3), text(values[2], 4),
           text(values[3].encode(), 2)]
    body = reader.present + row(0, *raw)
    assert reader.rows(body, 0, len(body), update=False) == [dict(zip(("tx", "mt", "lb", "vc"),
                                                                      values, strict=True))]
    assert_same(reader, body)


# Before images of the kept columns only (TableReader.changes): the other columns are stepped
# over, so the images must equal the whole ones cut down, and the after images stay whole.


def cut_down(images: list[Image], kept: set[str], op: Op) -> list[Image]:
    """Whole images as ``changes`` gives them: before images of an update or a delete
    hold the kept columns only."""
    if op is Op.INSERT:
        return images
    before = range(0, len(images), 2) if op is Op.UPDATE else range(len(images))
    return [{c: v for c, v in image.items() if c in kept} if i in before else image
            for i, image in enumerate(images)]


@pytest.mark.parametrize("op", list(Op))
def test_before_images_keep_the_named_columns_of_every_type(op: Op) -> None:
    kept = {"i", "dtm3", "vc"}
    reader = compile_table(EVERY_TYPE, before=kept)
    assert reader is not None and reader.pairs is not None
    update = op is Op.UPDATE
    every_other = sum(1 << i for i in range(0, len(EVERY_TYPE), 2))
    rows = [every_type_row(0, zero=False), every_type_row(every_other, zero=True),
            every_type_row(every_other >> 1, zero=False), every_type_row(0, zero=True)]
    body = reader.present * (2 if update else 1) + b"".join(rows)
    whole = reader.rows(body, 0, len(body), update)
    assert whole is not None
    got = reader.changes(body, 0, len(body), op)
    assert got == cut_down(whole, kept, op)
    if op is not Op.INSERT:
        assert set(got[0]) == kept
    for cut in range(len(body)):  # a short body: refused where the whole images are
        short = reader.rows(body[:cut], 0, cut, update)
        expected = None if short is None else cut_down(short, kept, op)
        assert reader.changes(body[:cut], 0, cut, op) == expected


def test_before_columns_the_table_lacks_keep_the_images_whole() -> None:
    reader = compile_table([ID, NAME], before={"id", "gone"})
    assert reader is not None and reader.kept is None
    body = reader.present * 2 + row(0, (1).to_bytes(4, "little"), text(b"a")) * 2
    assert reader.changes(body, 0, len(body), Op.UPDATE) == [{"id": 1, "name": "a"}] * 2


def test_a_skipped_text_that_does_not_decode_is_not_read() -> None:
    """Only what is kept is decoded: a before image's undecodable text in a column the
    mapping never reads does not send the event to the library."""
    reader = compile_table([ID, NAME], before={"id"})
    assert reader is not None
    good, bad = text("ü".encode()), text(b"\xc3\x28")
    body = reader.present * 2 + row(0, (1).to_bytes(4, "little"), bad) + row(
        0, (1).to_bytes(4, "little"), good)
    assert reader.rows(body, 0, len(body), update=True) is None
    assert reader.changes(body, 0, len(body), Op.UPDATE) == [{"id": 1}, {"id": 1, "name": "ü"}]
    past = reader.present + row(0, (1).to_bytes(4, "little"), b"\x05ab")  # text past the end
    assert reader.changes(past, 0, len(past), Op.DELETE) is None


@settings(max_examples=300, deadline=None)
@given(columns_and_body(), st.data())
def test_random_before_images_keep_what_is_named(
    case: tuple[list[SimpleNamespace], bytes, bool], data: st.DataObject
) -> None:
    columns, body, update = case
    whole_reader = compile_table(columns)
    kept = set(data.draw(st.lists(st.sampled_from([c.name for c in columns]), min_size=1,
                                  unique=True)))
    reader = compile_table(columns, before=kept)
    assert whole_reader is not None and reader is not None
    assert (reader.pairs is None) is (len(kept) == len(columns))
    cut = data.draw(st.integers(0, len(body)))
    for op in [Op.UPDATE] if update else [Op.INSERT, Op.DELETE]:
        for end in (len(body), cut):
            whole = whole_reader.rows(body, 0, end, update)
            if whole is not None:
                # Never refuses what the whole images read, and reads the same.
                assert reader.changes(body, 0, end, op) == cut_down(whole, kept, op)
