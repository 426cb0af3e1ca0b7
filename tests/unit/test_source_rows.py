"""The lean row readers on hand-made row bytes: what they read, and what they leave to the
library (the golden integration test compares every type against SELECT)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from sync.source.rows import compile_table


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
