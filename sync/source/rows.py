"""Row images read straight from a rows event's bytes, with a decoder generated per table map.

The library decodes every value of every row through one long chain of type tests and
several small reads, then :mod:`sync.source.decode` normalises the result. For a table map
seen once, :func:`compile_table` builds instead one reader per column that reads the value
from the event's bytes and returns it already normalised. The values are exactly those of
the library plus ``decode``'s fixers (the golden test reads every type both ways).

Calling one reader per column still costs a call, a tuple and a loop step per value, which
is most of the time for the common narrow types. So :func:`compile_table` also writes the
source of one function for the table, as ``collections.namedtuple`` does, that reads all
its rows: the null bitmap tests, the reads and conversions of the common types (integers,
DOUBLE, text and binary strings, DATETIME2, TIMESTAMP2, DATE, ENUM, YEAR) inline, one dict
display per row. Rarer or intricate types (DECIMAL, TIME2, SET, BIT, FLOAT, latin1 and UTF-16
text, BINARY(n) padding...) call their reader from that function, and so do the inline
DATE and DATETIME2 for values that are no valid date. The source holds no column name or
other table map text, only fixed code and integers: names, readers and codecs reach it as
globals of the namespace it runs in. The unit tests compare it with the readers.

Anything unusual is left to the library, which reads it or raises the reader's error:

* a column type without a reader here (old TIME, GEOMETRY, MySQL binary JSON, MariaDB
  compressed columns...), ENUM or SET without their values, a character set Python cannot
  decode: :func:`compile_table` returns None for the table;
* an event whose column count differs from its table map, a partial row image, bytes that
  do not decode: :meth:`TableReader.rows` returns None for the event.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
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


def _reader(column: Any) -> Reader | None:
    unpack = _INTS.get((column.type, bool(column.unsigned)))
    if unpack is not None:
        return _fixed(unpack.size, unpack.unpack_from)
    make = _FACTORIES.get(column.type)
    return make(column) if make is not None else None


# --- the generated decoder -----------------------------------------------------------

RowsDecoder = Callable[[bytes, int, int], tuple[list[Image], int]]
"""Reads row images from an offset while it is before an end: ``(images, offset after the
last)``. Raises one of ``_DECODE_ERRORS`` where the readers would."""

_Inline = tuple[list[str], dict[str, Any]]
"""Lines that set ``v<i>`` to column i's value at ``pos`` and move ``pos`` past it, and the
globals they use. Per column globals end in ``_<i>``, the shared ones are capitalised or
``date`` and ``datetime``, and the lines' locals are other short words, so that none can
shadow another."""

_MAX_FSP: Final = 6
_DATETIME2_PARTS: Final = {  # by fraction bytes: struct format, its fields, microseconds
    0: (">IB", "hi, lo", "0"),
    1: (">IBb", "hi, lo, f", "f * 10000"),
    2: (">IBh", "hi, lo, f", "f * 100"),
    3: (">IBbH", "hi, lo, f, g", "f * 65536 + g"),
}
_TIMESTAMP2_PARTS: Final = {
    0: (">i", "s,"),
    1: (">ib", "s, f"),
    2: (">ih", "s, f"),
    3: (">ibH", "s, f, g"),
}


def _whole(value: Any, low: int, high: int) -> bool:
    """Whether a table map number is an int the inline code expects; the readers take any
    other (and it never reaches the generated source)."""
    return type(value) is int and low <= value <= high


def _uint(size: int, at: str) -> str:
    """An expression reading an unsigned little-endian integer of ``size`` bytes at ``at``."""
    if size == 1:
        return f"data[{at}]"
    if size in (2, 4):
        return f"U{8 * size}(data, {at})[0]"
    if size == 3:
        return f"(U16(data, {at})[0] | data[{at} + 2] << 16)"
    return f'int.from_bytes(data[{at}:{at} + {size}], "little")'


def _inline_int(column: Any, i: int) -> _Inline:
    unsigned = bool(column.unsigned)
    if column.type == _TINY and unsigned:
        return [f"v{i} = data[pos]", "pos += 1"], {}
    unpack = _INTS[(column.type, unsigned)]
    return [f"v{i} = u_{i}(data, pos)[0]", f"pos += {unpack.size}"], {f"u_{i}": unpack.unpack_from}


def _inline_int24(column: Any, i: int) -> _Inline:
    # The high byte signed or not, the low two unsigned: as int.from_bytes of all three.
    unpack = struct.Struct("<HB" if column.unsigned else "<Hb").unpack_from
    return [f"lo, hi = u_{i}(data, pos)", f"v{i} = hi << 16 | lo", "pos += 3"], {f"u_{i}": unpack}


def _inline_double(_column: Any, i: int) -> _Inline:
    return [f"v{i} = u_{i}(data, pos)[0]", "pos += 8"], {f"u_{i}": _FLOAT64.unpack_from}


def _inline_year(_column: Any, i: int) -> _Inline:
    return ["b = data[pos]", f"v{i} = b + 1900 if b else 0", "pos += 1"], {}


def _inline_date(_column: Any, i: int) -> _Inline:
    lines = [
        "x = U16(data, pos)[0] | data[pos + 2] << 16",
        "try:",
        f"    v{i} = date(x >> 9, x >> 5 & 15, x & 31)",
        "except ValueError:",  # a zero or partial date: the reader spells it out
        f"    v{i} = r_{i}(data, pos)[0]",
        "pos += 3",
    ]
    return lines, {}


def _inline_datetime2(column: Any, i: int) -> _Inline | None:
    fsp = _fsp(column)
    if not _whole(fsp, 0, _MAX_FSP):
        return None
    fraction = decode.fsp_bytes(fsp)
    fmt, fields, usec = _DATETIME2_PARTS[fraction]
    # decode.datetime2_value's fields (after the sign bit: year * 13 + month 17 bits, day 5,
    # hour 5, minute 6, second 6), read from the high four bytes and the low one apart so
    # that the arithmetic stays on small ints.
    lines = [
        f"{fields} = u_{i}(data, pos)",
        "h = hi - 0x80000000",
        "m = h >> 14",
        "try:",
        f"    v{i} = datetime(m // 13, m % 13, h >> 9 & 31, h >> 4 & 31,"
        f" (h & 15) << 2 | lo >> 6, lo & 63, {usec})",
        "except ValueError:",  # a zero or partial date: the reader spells it out
        f"    v{i} = r_{i}(data, pos)[0]",
        f"pos += {5 + fraction}",
    ]
    return lines, {f"u_{i}": struct.Struct(fmt).unpack_from}


def _inline_timestamp2(column: Any, i: int) -> _Inline | None:
    fsp = _fsp(column)
    if not _whole(fsp, 0, _MAX_FSP):
        return None
    fraction = decode.fsp_bytes(fsp)
    fmt, fields = _TIMESTAMP2_PARTS[fraction]
    names = {f"u_{i}": struct.Struct(fmt).unpack_from, f"z_{i}": _zero_timestamp(fsp)}
    if not fraction:
        lines = [
            f"s = u_{i}(data, pos)[0]",
            f"v{i} = EPOCH + SECOND * s if s else z_{i}",
            "pos += 4",
        ]
        return lines, names
    lines = [f"{fields} = u_{i}(data, pos)"]
    if fraction == 3:
        lines.append("f = f * 65536 + g")
    if fsp % 2:
        lines.append("f = int(f / 10)")  # as _fraction, to the same rounding
    lines += [
        f"u = f * {10 ** (6 - fsp)}",
        # The reader's datetime.replace(microsecond=u) on a whole second, which refuses the
        # same values; the epoch itself means the zero TIMESTAMP.
        "if u > 0:",
        "    if u > 999999:",
        '        raise ValueError("microsecond must be in 0..999999")',
        f"    v{i} = EPOCH + MICROSECOND * (s * 1000000 + u)",
        "elif s:",
        f"    v{i} = EPOCH + SECOND * s",
        "else:",
        f"    v{i} = z_{i}",
        f"pos += {4 + fraction}",
    ]
    return lines, names


def _inline_string(length_bytes: int, column: Any, i: int, *, pad: bool = False) -> _Inline | None:
    """As :func:`_string`, for the character sets that are one ``bytes.decode``."""
    charset = column.character_set_name
    names: dict[str, Any] = {}
    if charset == "binary":
        if pad:
            return None
        value = f"data[pos + {length_bytes}:e]"
    else:
        encoding = None if decode.server_text(charset) else _encoding(column)
        if encoding is None:
            return None
        names[f"k_{i}"] = encoding
        value = f"data[pos + {length_bytes}:e].decode(k_{i})"
    lines = [
        f"e = pos + {length_bytes} + {_uint(length_bytes, 'pos')}",
        "if e > stop:",  # a slice would silently stop at the event's end
        '    raise IndexError("string past the event\'s end")',
        f"v{i} = {value}",
        "pos = e",
    ]
    return lines, names


def _inline_enum(column: Any, i: int) -> _Inline | None:
    size = column.size
    if not _whole(size, 1, 2):
        return None
    return [f"v{i} = values_{i}[{_uint(size, 'pos')}]", f"pos += {size}"], {
        f"values_{i}": column.enum_values
    }


_INLINE: Final[dict[int, Callable[[Any, int], _Inline | None]]] = {
    **dict.fromkeys((_TINY, _SHORT, _LONG, _LONGLONG), _inline_int),
    _INT24: _inline_int24,
    _DOUBLE: _inline_double,
    _YEAR: _inline_year,
    _DATE: _inline_date,
    _DATETIME2: _inline_datetime2,
    _TIMESTAMP2: _inline_timestamp2,
    _VARCHAR: lambda c, i: _inline_string(_length_bytes(c), c, i),
    _STRING: lambda c, i: _inline_string(
        _length_bytes(c), c, i, pad=c.character_set_name == "binary" and bool(c.max_length)
    ),
    _BLOB: lambda c, i: (
        _inline_string(c.length_size, c, i) if _whole(c.length_size, 1, 4) else None
    ),
    _ENUM: _inline_enum,
}


def _column_lines(column: Any, i: int, namespace: dict[str, Any]) -> list[str]:
    inline = _INLINE.get(column.type)
    found = inline(column, i) if inline is not None else None
    if found is None:
        lines = [f"v{i}, pos = r_{i}(data, pos)"]
    else:
        lines, names = found
        namespace.update(names)
    return [f"if nulls & {1 << i:#x}:", f"    v{i} = None", "else:", *(f"    {x}" for x in lines)]


def _generate(columns: Sequence[Any], compiled: Sequence[tuple[str, Reader]]) -> RowsDecoder:
    """The decoder of a table's rows: see the module's docstring."""
    namespace: dict[str, Any] = {
        "U16": _UINT16.unpack_from,
        "U32": _UINT32.unpack_from,
        "EPOCH": decode.EPOCH,
        # A timedelta times an int is exact, and quicker than building one from seconds.
        "SECOND": timedelta(seconds=1),
        "MICROSECOND": timedelta(microseconds=1),
        "date": date,
        "datetime": datetime,
    }
    body: list[str] = []
    for i, (column, (name, read)) in enumerate(zip(columns, compiled, strict=True)):
        namespace[f"n_{i}"], namespace[f"r_{i}"] = name, read
        body += _column_lines(column, i, namespace)
    width = (len(compiled) + 7) // 8
    nulls = "data[pos]" if width == 1 else f'int.from_bytes(data[pos:pos + {width}], "little")'
    image = ", ".join(f"n_{i}: v{i}" for i in range(len(compiled)))
    source = "\n".join(
        [
            "def decode_rows(data, pos, end):",
            "    images = []",
            "    append = images.append",
            "    stop = len(data)",
            "    while pos < end:",
            f"        nulls = {nulls}",
            f"        pos += {width}",
            *(f"        {line}" for line in body),
            f"        append({{{image}}})",
            "    return images, pos",
        ]
    )
    # The source is fixed text and integers only (names, codecs and readers are globals),
    # so no table map can inject code into it.
    exec(compile(source, f"<rows of {len(compiled)} columns>", "exec"), namespace)  # noqa: S102
    decoder: RowsDecoder = namespace["decode_rows"]
    return decoder


@dataclass(frozen=True, slots=True)
class TableReader:
    """The compiled readers of one table map."""

    columns: tuple[tuple[str, Reader], ...]
    present: bytes
    """The columns-present bitmap of a full row image."""
    decoder: RowsDecoder = field(compare=False, repr=False)
    """All rows at once, generated from the columns' types and readers."""

    def rows(self, data: bytes, pos: int, end: int, update: bool) -> list[Image] | None:
        """The row images of a rows event body (``update``: before and after alternate),
        or None where the library must read it."""
        width = len(self.present)
        # Within the packet, the decoder reads the null bitmap's byte without a bounds test.
        if end > len(data) or data[pos : pos + width] != self.present:
            return None
        pos += width
        if update:
            if data[pos : pos + width] != self.present:
                return None
            pos += width
        try:
            images, pos = self.decoder(data, pos, end)
        except _DECODE_ERRORS:
            return None
        if pos != end or (update and len(images) % 2):
            return None
        return images

    def _rows_by_columns(self, data: bytes, pos: int, end: int, update: bool) -> list[Image] | None:
        """:meth:`rows` with each column's reader in turn: the decoder's reference in tests."""
        return replace(self, decoder=self._decode_by_columns).rows(data, pos, end, update)

    def _decode_by_columns(self, data: bytes, pos: int, end: int) -> tuple[list[Image], int]:
        images: list[Image] = []
        while pos < end:
            image, pos = self._image_by_columns(data, pos)
            images.append(image)
        return images, pos

    def _image_by_columns(self, data: bytes, pos: int) -> tuple[Image, int]:
        width = len(self.present)
        nulls = int.from_bytes(data[pos : pos + width], "little")
        pos += width
        image: Image = {}
        bit = 1
        for name, read in self.columns:
            if nulls & bit:
                image[name] = None
            else:
                image[name], pos = read(data, pos)
            bit <<= 1
        return image, pos


def compile_table(columns: Sequence[Any]) -> TableReader | None:
    """Readers for a table map's columns (the library's Column objects), or None when a
    column needs the library."""
    compiled: list[tuple[str, Reader]] = []
    for column in columns:
        read = _reader(column)
        if read is None or column.name is None:
            return None
        compiled.append((column.name, read))
    count = len(compiled)
    if not count:
        return None  # no table has none; a row of nothing would never move past its bytes
    present = ((1 << count) - 1).to_bytes((count + 7) // 8, "little")
    return TableReader(tuple(compiled), present, _generate(columns, compiled))


__all__ = ["Image", "Reader", "RowsDecoder", "TableReader", "compile_table"]
