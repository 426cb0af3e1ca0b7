"""One text form per value, the same whether Python renders a mapped value or SQL a stored one.

Validation hashes the rows the target holds in SQL on the target server, and the rows the
mapping makes from aurora either in SQL on aurora's server (:mod:`sync.validation.pushdown`)
or, for a chunk read again, in Python (no row crosses the network for a clean chunk). Both
sides must spell a value identically, so every compared column gets a :class:`ColumnKind` from
the target's ``information_schema`` and :func:`render` writes a Python value the way
:func:`sql_text` makes the server write the stored one:

- integers (booleans too) in decimal; DECIMAL with the column's scale (half up, as the server
  rounds on store); FLOAT/DOUBLE through DECIMAL(65,6), so binary noise beyond 6 digits is
  ignored;
- DATETIME/TIMESTAMP/TIME with the column's fractional digits: MariaDB and MySQL truncate
  extra digits on store, TiDB rounds, so the flavour is part of the kind;
- binary columns as upper-case hex, everything else as its text.

Should the two spellings ever disagree on some type, the chunk's hash differs, the chunk is
read row by row and compared with :func:`render` on both sides, and no false difference is
reported: the hashes decide speed, not correctness.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from sync.apply.sql import quote

SEPARATOR: Final = "\x1f"
NULL: Final = "\x1e"
_INTEGER = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"})
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"})
_TEMPORAL = frozenset({"datetime", "timestamp"})
FLOAT_SCALE: Final = 6


@dataclass(frozen=True, slots=True)
class ColumnKind:
    """How a target column's values are spelled: its data type, scale or fractional digits."""

    name: str
    data_type: str
    scale: int = 0
    rounds: bool = False  # the server rounds extra fractional digits (TiDB) instead of truncating
    nullable: bool = True


def _integer(value: Any, kind: ColumnKind) -> str:
    return str(int(value))


def _binary(value: Any, kind: ColumnKind) -> str:
    raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
    return bytes(raw).hex().upper()


def _date(value: Any, kind: ColumnKind) -> str:
    return str((value.date() if isinstance(value, datetime) else value).isoformat())


def _text(value: Any, kind: ColumnKind) -> str:
    return value.isoformat() if isinstance(value, time) else str(value)


UUID5: Final = "uuid5"
"""The kind of a column holding a UUIDv5 the mapping derives (a files id and its links).

Spelled as its hex digits without the version digit and the one holding the variant: aurora's
server then computes the text from one SHA-1 per row instead of two, and with two string
operations (:func:`sync.validation.urlsql.uuid5_text`). Those two digits are fixed by the
UUIDv5 rules (and two bits of the name's hash)."""


def _uuid5(value: Any, kind: ColumnKind) -> str:
    digits = str(value).replace("-", "")
    return digits[:12] + digits[13:16] + digits[17:]


def _sql_uuid5(column: str) -> str:
    return f"INSERT(INSERT(REPLACE({column}, '-', ''), 17, 1, ''), 13, 1, '')"


def render(value: Any, kind: ColumnKind) -> str:
    """The text of ``value`` as the target would spell it in ``kind``'s column."""
    if value is None:
        return NULL
    return _RENDERERS.get(kind.data_type, _text)(value, kind)


def _decimal(value: Any, scale: int) -> str:
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return str(number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP))


def _fraction(micro: int, kind: ColumnKind) -> tuple[int, int]:
    """(carry seconds, kept fraction digits as an int) at the column's precision."""
    unit = 10 ** (6 - kind.scale)
    if kind.rounds:
        micro = (micro + unit // 2) // unit * unit
    else:
        micro -= micro % unit
    return micro // 1_000_000, (micro % 1_000_000) // unit


def _datetime(value: Any, kind: ColumnKind) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    carry, digits = _fraction(value.microsecond, kind)
    whole = value.replace(microsecond=0) + timedelta(seconds=carry)
    text = whole.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{digits:0{kind.scale}d}" if kind.scale else text


def _time(value: timedelta, kind: ColumnKind) -> str:
    micros = abs(value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds)
    carry, digits = _fraction(micros % 1_000_000, kind)
    seconds = micros // 1_000_000 + carry
    sign = "-" if value < timedelta(0) else ""
    text = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{text}.{digits:0{kind.scale}d}" if kind.scale else text


def _renderers() -> dict[str, Callable[[Any, ColumnKind], str]]:
    table: dict[str, Callable[[Any, ColumnKind], str]] = {
        "decimal": lambda v, k: _decimal(v, k.scale),
        "date": _date,
        "time": lambda v, k: _time(v, k) if isinstance(v, timedelta) else _text(v, k),
    }
    table.update(dict.fromkeys(_INTEGER, _integer))
    table.update(dict.fromkeys(_BINARY, _binary))
    table.update(dict.fromkeys(_TEMPORAL, _datetime))
    table.update(dict.fromkeys(("float", "double", "real"),
                               lambda v, k: _decimal(v, FLOAT_SCALE)))
    table[UUID5] = _uuid5
    return table


_RENDERERS: Final = _renderers()


def renderer(kinds: Sequence[ColumnKind]) -> Callable[[Sequence[Any]], tuple[str, ...]]:
    """A function rendering whole rows of ``kinds``' columns (dispatch resolved once)."""
    plan = tuple((_RENDERERS.get(k.data_type, _text), k) for k in kinds)

    def render_row(values: Sequence[Any]) -> tuple[str, ...]:
        return tuple(NULL if v is None else f(v, k)
                     for v, (f, k) in zip(values, plan, strict=True))

    return render_row


def sql_text(kind: ColumnKind, expression: str | None = None) -> str:
    """The SQL expression that spells column ``kind.name`` (or ``expression`` holding a value
    of that kind) as :func:`render` does."""
    column = expression or quote(kind.name)
    if kind.data_type in ("float", "double", "real"):
        column = f"CAST({column} AS DECIMAL(65,{FLOAT_SCALE}))"
    elif kind.data_type in _BINARY:
        column = f"HEX({column})"
    elif kind.data_type == UUID5 and expression is None:
        column = _sql_uuid5(column)
    # A NOT NULL column needs no NULL mark: IFNULL costs a tenth of the hashing.
    return f"IFNULL({column}, CHAR(30))" if kind.nullable else column


def row_text(values: Iterable[str]) -> str:
    return SEPARATOR.join(values)


def row_hash(values: Sequence[str]) -> int:
    """The 32-bit hash of one rendered row: CRC-32 of the decimal CRC-32 of its UTF-8 text.

    One CRC-32 is linear: XOR-ing the CRCs of rows that swapped a value between them (two
    users' e-mails) gives the XOR of the originals, so a chunk's digest would not change.
    The second round over the decimal text breaks that, and costs a few bytes per row where
    MD5 cost a third of the target's whole hashing time. A chunk also compares its count.
    """
    text = row_text(values).encode("utf-8", "surrogatepass")
    return zlib.crc32(str(zlib.crc32(text)).encode())


def sql_hash(parts: Sequence[str]) -> str:
    """The SQL twin of :func:`row_hash` over rendered SQL text expressions ``parts``.

    The text is hashed in the columns' own character set: utf8mb4 on both sides, as the
    guide's schemas have it. A source table in another character set hashes differently,
    and its chunks are then compared row by row (slower, still right)."""
    return f"CRC32(CRC32(CONCAT_WS(CHAR(31), {', '.join(parts)})))"


def sql_row_hash(kinds: Sequence[ColumnKind]) -> str:
    """The SQL twin of :func:`row_hash` over ``kinds``' columns, as an unsigned integer."""
    return sql_hash([sql_text(k) for k in kinds])


__all__ = [
    "UUID5",
    "ColumnKind",
    "render",
    "renderer",
    "row_hash",
    "sql_hash",
    "sql_row_hash",
    "sql_text",
]
