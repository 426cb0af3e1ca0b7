"""The decoder of a table's rows, generated once per table map.

Calling one reader per column (:mod:`sync.source.columns`) costs a call, a tuple and a loop
step per value, which is most of the time for the common narrow types. :func:`generate`
writes the source of one function for the table, as ``collections.namedtuple`` does, that
reads all its rows: the null bitmap tests, the reads and conversions of the common types
(integers, DOUBLE, text and binary strings, DATETIME2, TIMESTAMP2, DATE, ENUM, YEAR) inline,
one dict display per row. Rarer or intricate types (DECIMAL, TIME2, SET, BIT, FLOAT, latin1
and UTF-16 text, BINARY(n) padding...) call their reader from that function, and so do the
inline DATE and DATETIME2 for values that are no valid date. The source holds no column name
or other table map text, only fixed code and integers: names, readers and codecs reach it as
globals of the namespace it runs in. The unit tests compare it with the readers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sync.source import decode
from sync.source.columns import (
    _BLOB,
    _DATE,
    _DATETIME2,
    _DOUBLE,
    _ENUM,
    _FLOAT64,
    _INT24,
    _INTS,
    _LONG,
    _LONGLONG,
    _SHORT,
    _STRING,
    _TIMESTAMP2,
    _TINY,
    _UINT16,
    _UINT32,
    _VARCHAR,
    _YEAR,
    Image,
    Reader,
    _encoding,
    _fsp,
    _length_bytes,
    _zero_timestamp,
)

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


_SKIPPED_SIZES: Final = {_INT24: 3, _DOUBLE: 8, _YEAR: 1, _DATE: 3}


def _skip_lines(column: Any, i: int, namespace: dict[str, Any]) -> list[str]:
    """Lines that move ``pos`` past column i's value without reading it, where the inline
    code would read it (the same width); else its reading lines."""
    inline = _INLINE.get(column.type)
    found = inline(column, i) if inline is not None else None
    if found is None:
        return _column_lines(column, i, namespace)
    kind = column.type
    ints = _INTS.get((kind, bool(column.unsigned)))
    if ints is not None:
        skip = [f"pos += {ints.size}"]
    elif kind in _SKIPPED_SIZES:
        skip = [f"pos += {_SKIPPED_SIZES[kind]}"]
    elif kind in (_DATETIME2, _TIMESTAMP2):
        width = 5 if kind == _DATETIME2 else 4
        skip = [f"pos += {width + decode.fsp_bytes(_fsp(column))}"]
    elif kind == _ENUM:
        skip = [f"pos += {column.size}"]
    else:
        # A string: its length. One past the event leaves ``pos`` past its end for good,
        # which TableReader refuses (``pos != end``).
        skip = [found[0][0], "pos = e"]
    return [f"if not nulls & {1 << i:#x}:", *(f"    {x}" for x in skip)]


def _row_lines(
    compiled: Sequence[tuple[str, Reader]], columns: Sequence[Any], namespace: dict[str, Any],
    kept: Collection[int] | None,
) -> list[str]:
    """One row image read and appended: its null bitmap, its columns, its dict."""
    width = (len(compiled) + 7) // 8
    nulls = "data[pos]" if width == 1 else f'int.from_bytes(data[pos:pos + {width}], "little")'
    lines = [f"nulls = {nulls}", f"pos += {width}"]
    for i, column in enumerate(columns):
        read = kept is None or i in kept
        lines += (_column_lines if read else _skip_lines)(column, i, namespace)
    image = ", ".join(f"n_{i}: v{i}" for i in range(len(compiled)) if kept is None or i in kept)
    return [*lines, f"append({{{image}}})"]


def generate(
    columns: Sequence[Any], compiled: Sequence[tuple[str, Reader]], *,
    kept: Collection[int] | None = None, pairs: bool = False,
) -> RowsDecoder:
    """The decoder of a table's rows: see the module's docstring.

    ``kept``: the indexes of the columns its images hold (None: all); the others are
    stepped over, unread. With ``pairs``, rows alternate an image of the kept columns and a
    whole one: an update's before and after images, where only the after image is written.
    """
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
    for i, (name, read) in enumerate(compiled):
        namespace[f"n_{i}"], namespace[f"r_{i}"] = name, read
    body = _row_lines(compiled, columns, namespace, kept)
    if pairs:
        # A pair's second image follows in the same pass, so the loop's test sees whole pairs.
        body += _row_lines(compiled, columns, namespace, None)
    kind = "rows" if kept is None else "pairs" if pairs else "kept columns"
    source = "\n".join(
        [
            "def decode_rows(data, pos, end):",
            "    images = []",
            "    append = images.append",
            "    stop = len(data)",
            "    while pos < end:",
            *(f"        {line}" for line in body),
            "    return images, pos",
        ]
    )
    # The source is fixed text and integers only (names, codecs and readers are globals),
    # so no table map can inject code into it.
    exec(compile(source, f"<{kind} of {len(compiled)} columns>", "exec"), namespace)  # noqa: S102
    decoder: RowsDecoder = namespace["decode_rows"]
    return decoder
