"""One reader per column type of a binlog table map, each returning the value normalised.

The library decodes every value through one long chain of type tests and several small
reads, then :mod:`sync.source.decode` normalises the result. :func:`column_reader` builds, for
one column of a table map, a reader that reads its value from a rows event's bytes and
returns it already as PyMySQL's ``SELECT`` would (the golden test reads every type both
ways). :mod:`sync.source.rowgen` inlines the common types and calls these for the rest;
:mod:`sync.source.rows` puts them together per table.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from pymysql.charset import charset_by_name

from sync.source import decode

Reader = Callable[[bytes, int], tuple[Any, int]]
"""Reads one non-NULL value at an offset: ``(value, offset after it)``."""

Image = dict[str, Any]

# Column type codes of the binlog table map (MySQL's enum_field_types).
_TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _TIMESTAMP, _LONGLONG, _INT24 = 1, 2, 3, 4, 5, 7, 8, 9
_DATE, _DATETIME, _YEAR, _VARCHAR, _BIT = 10, 12, 13, 15, 16
_TIMESTAMP2, _DATETIME2, _TIME2 = 17, 18, 19
_NEWDECIMAL, _ENUM, _SET, _BLOB, _STRING = 246, 247, 248, 252, 254

_DECIMAL_DIGITS: Final = 9
_COMPRESSED_BYTES: Final = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_INTS: Final = {
    (_TINY, False): struct.Struct("<b"),
    (_TINY, True): struct.Struct("<B"),
    (_SHORT, False): struct.Struct("<h"),
    (_SHORT, True): struct.Struct("<H"),
    (_LONG, False): struct.Struct("<i"),
    (_LONG, True): struct.Struct("<I"),
    (_LONGLONG, False): struct.Struct("<q"),
    (_LONGLONG, True): struct.Struct("<Q"),
}
_FLOAT32: Final = struct.Struct("<f")
_FLOAT64: Final = struct.Struct("<d")
_UINT16: Final = struct.Struct("<H")
_UINT32: Final = struct.Struct("<I")
_DECODE_ERRORS: Final = (ValueError, IndexError, struct.error)


def _fixed(size: int, unpack: Callable[[bytes, int], tuple[Any, ...]]) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size

    return read


def _int24(unsigned: bool) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return int.from_bytes(data[pos : pos + 3], "little", signed=not unsigned), pos + 3

    return read


def _float(data: bytes, pos: int) -> tuple[Any, int]:
    # As decode's FLOAT fixer: the server prints FLT_DIG (6) significant digits.
    return float(f"{_FLOAT32.unpack_from(data, pos)[0]:.6g}"), pos + 4


def _year(data: bytes, pos: int) -> tuple[Any, int]:
    stored = data[pos]
    return (stored + 1900 if stored else 0), pos + 1


def _date(data: bytes, pos: int) -> tuple[Any, int]:
    return decode.date_value(data[pos : pos + 3]), pos + 3


def _datetime(data: bytes, pos: int) -> tuple[Any, int]:
    return decode.datetime_value(data[pos : pos + 8]), pos + 8


def _sized(size: int, convert: Callable[[bytes, int], Any], fsp: int) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        end = pos + size
        return convert(data[pos:end], fsp), end

    return read


def _fraction(raw: bytes, fsp: int) -> int:
    """Microseconds of a TIMESTAMP2's fraction, as the library's ``__read_fsp``."""
    if not raw:
        return 0
    value = int.from_bytes(raw, "big", signed=True)
    if fsp % 2:
        value = int(value / 10)
    return int(value * 10 ** (6 - fsp))


def _timestamp(data: bytes, pos: int) -> tuple[Any, int]:
    seconds = int.from_bytes(data[pos : pos + 4], "little")
    value = decode.EPOCH + timedelta(seconds=seconds)
    # TIMESTAMP's range starts one second after the epoch: the epoch itself means zero.
    return ("0000-00-00 00:00:00" if value == decode.EPOCH else value), pos + 4


def _zero_timestamp(fsp: int) -> str:
    return "0000-00-00 00:00:00" + (f".{0:06d}"[: fsp + 1] if fsp else "")


def _timestamp2(fsp: int) -> Reader:
    size = decode.fsp_bytes(fsp)
    zero = _zero_timestamp(fsp)

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        seconds = int.from_bytes(data[pos : pos + 4], "big", signed=True)
        micro = _fraction(data[pos + 4 : pos + 4 + size], fsp)
        value: datetime = decode.EPOCH + timedelta(seconds=seconds)
        if micro > 0:
            value = value.replace(microsecond=micro)
        return (zero if value == decode.EPOCH else value), pos + 4 + size

    return read


def _newdecimal(precision: int, decimals: int) -> Reader:
    """DECIMAL as the library builds it: the digits as text, then ``Decimal(text)``."""
    integral = precision - decimals
    whole_int, whole_frac = integral // _DECIMAL_DIGITS, decimals // _DECIMAL_DIGITS
    rest_int = integral - whole_int * _DECIMAL_DIGITS
    rest_frac = decimals - whole_frac * _DECIMAL_DIGITS
    head, tail = _COMPRESSED_BYTES[rest_int], _COMPRESSED_BYTES[rest_frac]
    size = head + 4 * (whole_int + whole_frac) + tail

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        raw = bytearray(data[pos : pos + size])
        if len(raw) != size:
            raise IndexError("decimal past the event's end")
        negative = not raw[0] & 0x80
        raw[0] ^= 0x80
        if negative:  # stored as the complement of every byte
            raw = bytearray(b ^ 0xFF for b in raw)
        parts = ["-"] if negative else []
        at = 0
        if head:
            parts.append(str(int.from_bytes(raw[:head], "big")))
            at = head
        for _ in range(whole_int):
            parts.append(f"{int.from_bytes(raw[at : at + 4], 'big'):09d}")
            at += 4
        parts.append(".")
        for _ in range(whole_frac):
            parts.append(f"{int.from_bytes(raw[at : at + 4], 'big'):09d}")
            at += 4
        if tail:
            parts.append(f"{int.from_bytes(raw[at : at + tail], 'big'):0{rest_frac}d}")
        return Decimal("".join(parts)), pos + size

    return read


def _encoding(column: Any) -> str | None:
    """The Python codec of a text column, or None when the library keeps its bytes."""
    name = column.character_set_name
    if name is None:
        return "utf-8"
    charset = charset_by_name(name)
    encoding = str(charset.encoding) if charset else str(name)
    try:
        codecs.lookup(encoding)
    except LookupError:
        return None
    return encoding


def _string(length_bytes: int, column: Any, *, pad_to: int = 0) -> Reader | None:
    binary = column.character_set_name == "binary"
    # A character set the server converts unlike Python's codec gets its own decoder; the
    # common ones decode inline (this runs for every string value of the stream).
    special = None if binary else decode.server_text(column.character_set_name)
    encoding = None if binary or special is not None else _encoding(column)
    if encoding is None and special is None and not binary:
        return None  # the library keeps bytes but turns b'' into '': not worth copying
    little = length_bytes == 1

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        if little:
            length = data[pos]
            pos += 1
        else:
            length = int.from_bytes(data[pos : pos + length_bytes], "little")
            pos += length_bytes
        end = pos + length
        if end > len(data):
            raise IndexError("string past the event's end")
        raw = data[pos:end]
        if encoding is not None:
            return raw.decode(encoding), end
        if special is not None:
            return special(raw), end
        # BINARY(n) is binlogged without its trailing zero bytes; SELECT returns all n.
        return (raw.ljust(pad_to, b"\0") if pad_to else raw), end

    return read


def _enum(column: Any) -> Reader | None:
    values = column.enum_values
    if not values:
        return None
    size = column.size

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return values[int.from_bytes(data[pos : pos + size], "little")], pos + size

    return read


def _set(column: Any) -> Reader | None:
    values = tuple(column.set_values or ())
    if not values:
        return None
    size = column.size

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        mask = int.from_bytes(data[pos : pos + size], "little")
        return ",".join(v for i, v in enumerate(values) if mask >> i & 1), pos + size

    return read


def _bit(column: Any) -> Reader:
    size = column.bytes

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return decode.bit_value(data[pos : pos + size]), pos + size

    return read


def _fsp(column: Any) -> int:
    return getattr(column, "fsp", 0) or 0


def _length_bytes(column: Any) -> int:
    return 2 if column.max_length > 255 else 1


def _char(column: Any) -> Reader | None:
    pad = column.max_length if column.character_set_name == "binary" else 0
    return _string(_length_bytes(column), column, pad_to=pad)


_FACTORIES: Final[dict[int, Callable[[Any], Reader | None]]] = {
    _INT24: lambda c: _int24(bool(c.unsigned)),
    _FLOAT: lambda _c: _float,
    _DOUBLE: lambda _c: _fixed(8, _FLOAT64.unpack_from),
    _YEAR: lambda _c: _year,
    _DATE: lambda _c: _date,
    _DATETIME: lambda _c: _datetime,
    _TIMESTAMP: lambda _c: _timestamp,
    _DATETIME2: lambda c: _sized(5 + decode.fsp_bytes(_fsp(c)), decode.datetime2_value, _fsp(c)),
    _TIME2: lambda c: _sized(3 + decode.fsp_bytes(_fsp(c)), decode.time2_value, _fsp(c)),
    _TIMESTAMP2: lambda c: _timestamp2(_fsp(c)),
    _NEWDECIMAL: lambda c: _newdecimal(c.precision, c.decimals),
    _VARCHAR: lambda c: _string(_length_bytes(c), c),
    _STRING: _char,
    _BLOB: lambda c: _string(c.length_size, c),
    _ENUM: _enum,
    _SET: _set,
    _BIT: _bit,
}


def column_reader(column: Any) -> Reader | None:
    unpack = _INTS.get((column.type, bool(column.unsigned)))
    if unpack is not None:
        return _fixed(unpack.size, unpack.unpack_from)
    make = _FACTORIES.get(column.type)
    return make(column) if make is not None else None
