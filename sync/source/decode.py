"""Pure decoding for the binlog reader: column values and query statements.

Values
    The snapshot reads rows with ``SELECT`` through PyMySQL; the stream reads the same rows
    from the binlog. The mapping must see identical values from both, so every value that
    the binlog library decodes differently from PyMySQL is either read from its raw bytes
    here or normalised afterwards. Each difference, as measured against MariaDB 10.11:

    ==================  =============================  ==================================
    type                library gives                  PyMySQL gives (and so do we)
    ==================  =============================  ==================================
    DATE, DATETIME(n)   None for zero / partial dates  ``'0000-00-00'``, ``'2020-00-15'``
    TIME(n) negative    wrong when fractional          the exact negative timedelta
    TIMESTAMP(n) zero   1970-01-01 00:00:00            ``'0000-00-00 00:00:00[.000]'``
    YEAR 0000           1900                           0
    BIT(n)              ``'0101'`` text                big-endian bytes
    FLOAT               the float32 widened            6 significant digits (FLT_DIG)
    SET                 a Python set, None if empty    ``'a,b'``, ``''`` when empty
    binary '' (BLOB..)  ``''`` (str)                   ``b''``
    BINARY(n)           without trailing zero bytes    padded with zero bytes to n
    JSON (MySQL only)   parsed object                  JSON text (not run: no MySQL here)
    latin1 0x81 0x8D    UnicodeDecodeError (Python's   U+0081 U+008D U+008F U+0090 U+009D
    0x8F 0x90 0x9D      cp1252 leaves them undefined)  (the server's latin1 is cp1252 plus
                                                       these five C1 controls)
    utf16, utf32, ucs2  little-endian text, or bytes   the big-endian text
    ==================  =============================  ==================================

Statements
    ``classify`` reads a QueryEvent's text: transaction control (BEGIN, COMMIT, XA ...),
    DDL with the ``(schema, table)`` pairs it names, statement-based DML. The text itself may
    carry secrets and is never logged; only the kind (``"ALTER TABLE"``) is.
"""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

# MySQL protocol column type codes (the binlog table map uses them).
T_FLOAT, T_TIMESTAMP, T_YEAR, T_TIMESTAMP2 = 4, 7, 13, 17
T_JSON, T_SET, T_BLOB, T_VAR_STRING, T_STRING, T_VARCHAR = 245, 248, 252, 253, 254, 15

EPOCH = datetime(1970, 1, 1)  # naive UTC, as every value in aurora-sync
_DATETIMEF_INT_OFS = 0x8000000000
_TIMEF_INT_OFS = 0x800000
_TIMEF_OFS = 0x800000000000
_EMPTY_SET = "empty set"  # the library's none-source marker for an empty SET


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """What decoding needs to know of one column, copied from the binlog table map."""

    name: str
    type_code: int
    fsp: int = 0
    set_values: tuple[str, ...] = ()
    binary: bool = False
    length: int = 0


def _server_latin1() -> str:
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))  # the five bytes cp1252 leaves undefined
    return "".join(chars)


_LATIN1_TABLE = _server_latin1()


def latin1_text(raw: bytes) -> str:
    """A MySQL/MariaDB latin1 value as the server converts it to utf8mb4: Windows-1252,
    with the five bytes that code page leaves undefined read as the C1 controls of the same
    number. Every byte is a character, so this never fails."""
    return codecs.charmap_decode(raw, "strict", _LATIN1_TABLE)[0]


_SERVER_TEXT: Mapping[str, Callable[[bytes], str]] = {
    "latin1": latin1_text,
    "cp1252": latin1_text,  # the library's table map names latin1 by PyMySQL's codec
    # The server's UTF-16, UTF-32 and UCS-2 are big-endian without a BOM; PyMySQL's codec
    # names for them ("utf16", "utf32") read a BOM or assume little-endian, and Python has
    # no "ucs2" at all.
    "utf16": lambda raw: raw.decode("utf-16-be"),
    "ucs2": lambda raw: raw.decode("utf-16-be"),
    "utf32": lambda raw: raw.decode("utf-32-be"),
    "utf16le": lambda raw: raw.decode("utf-16-le"),
}


# Character sets whose text reads from the binlog exactly as SELECT returns it (the golden
# test runs each), by the codec names the library's table map gives them. ascii is exact
# for every byte it defines; a byte above 0x7F does not decode and halts the stream.
EXACT_CHARSETS = frozenset({"utf8", "utf8mb3", "utf8mb4", "latin1", "cp1252", "ascii",
                            "utf16", "utf16le", "utf32", "ucs2", "binary"})
TEXT_TYPES = frozenset({T_VARCHAR, T_VAR_STRING, T_STRING, T_BLOB})


def server_text(charset: str | None) -> Callable[[bytes], str] | None:
    """The decoder of a character set whose Python codec (PyMySQL's name for it) would read
    the binlog's bytes differently from the server's conversion for SELECT, or None."""
    return _SERVER_TEXT.get(charset or "")


def fsp_bytes(fsp: int) -> int:
    """Bytes of the fractional part of TIME2/DATETIME2/TIMESTAMP2 with ``fsp`` digits."""
    return (fsp + 1) // 2


def _fraction(usec: int, fsp: int) -> str:
    return f".{usec:06d}"[: fsp + 1] if fsp else ""


def date_value(raw: bytes) -> date | str:
    """DATE (3 bytes little-endian): a date, or the server's text for a zero/partial date."""
    packed = int.from_bytes(raw, "little")
    year, month, day = packed >> 9, (packed >> 5) & 0xF, packed & 0x1F
    try:
        return date(year, month, day)
    except ValueError:
        return f"{year:04d}-{month:02d}-{day:02d}"


def _datetime_or_text(
    parts: tuple[int, int, int, int, int, int], usec: int, fsp: int
) -> datetime | str:
    year, month, day, hour, minute, second = parts
    try:
        return datetime(year, month, day, hour, minute, second, usec)
    except ValueError:
        return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}" + _fraction(
            usec, fsp
        )


def datetime2_value(raw: bytes, fsp: int) -> datetime | str:
    """DATETIME2 (5 bytes big-endian + fraction), as MySQL's my_datetime_packed_from_binary."""
    intpart = int.from_bytes(raw[:5], "big") - _DATETIMEF_INT_OFS
    frac = raw[5:]
    usec = int.from_bytes(frac, "big", signed=True) if frac else 0
    usec *= {0: 0, 1: 10000, 2: 100, 3: 1}[len(frac)]
    ymd = intpart >> 17
    hms = intpart & 0x1FFFF
    year_month = ymd >> 5
    parts = (
        year_month // 13,
        year_month % 13,
        ymd & 0x1F,
        hms >> 12,
        (hms >> 6) & 0x3F,
        hms & 0x3F,
    )
    return _datetime_or_text(parts, usec, fsp)


def datetime_value(raw: bytes) -> datetime | str:
    """Old DATETIME (8 bytes, the decimal number YYYYMMDDhhmmss)."""
    value = int.from_bytes(raw, "little")
    ymd, hms = divmod(value, 1_000_000)
    parts = (ymd // 10000, ymd // 100 % 100, ymd % 100, hms // 10000, hms // 100 % 100, hms % 100)
    return _datetime_or_text(parts, 0, 0)


def time2_value(raw: bytes, fsp: int) -> timedelta:
    """TIME2 (3 bytes + fraction), as MySQL's my_time_packed_from_binary.

    Negative values with a fraction are stored with the integer part rounded away from zero
    and the fraction complemented, so that they sort as bytes; undo both.
    """
    if len(raw) == 6:
        packed = int.from_bytes(raw, "big") - _TIMEF_OFS
    else:
        intpart = int.from_bytes(raw[:3], "big") - _TIMEF_INT_OFS
        frac_raw = raw[3:]
        frac = int.from_bytes(frac_raw, "big") if frac_raw else 0
        if intpart < 0 and frac:
            intpart += 1
            frac -= 1 << (8 * len(frac_raw))
        packed = (intpart << 24) + frac * (10000 if len(frac_raw) == 1 else 100)
    negative = packed < 0
    packed = abs(packed)
    hms, usec = packed >> 24, packed & 0xFFFFFF
    value = timedelta(
        hours=(hms >> 12) & 0x3FF, minutes=(hms >> 6) & 0x3F, seconds=hms & 0x3F, microseconds=usec
    )
    return -value if negative else value


def bit_value(raw: bytes) -> bytes:
    """BIT(n): the bytes as stored (big-endian), which is what PyMySQL returns."""
    return bytes(raw)


# Normalisations applied after the library decoded a row: (value, none_source) -> value.
Fixer = Callable[[Any, str | None], Any]


def _fix_float(value: Any, _source: str | None) -> Any:
    # The server prints FLOAT with FLT_DIG (6) significant digits; PyMySQL parses that text.
    return None if value is None else float(f"{value:.6g}")


def _fix_year(value: Any, _source: str | None) -> Any:
    # YEAR stores 1901..2155 as value-1900 and 0000 as 0, which the library turns into 1900.
    return 0 if value == 1900 else value


def _fix_timestamp(fsp: int) -> Fixer:
    zero = "0000-00-00 00:00:00" + _fraction(0, fsp)

    def fix(value: Any, _source: str | None) -> Any:
        # TIMESTAMP's range starts at 1970-01-01 00:00:01 UTC: the epoch itself means zero.
        return zero if value == EPOCH else value

    return fix


def _fix_set(values: tuple[str, ...]) -> Fixer:
    def fix(value: Any, source: str | None) -> Any:
        if value is None:
            return "" if source == _EMPTY_SET else None
        return ",".join(v for v in values if v in value)

    return fix


def _fix_binary(value: Any, _source: str | None) -> Any:
    # An empty binary string decodes as '' (Python decodes b'' without looking up the codec).
    return value.encode() if isinstance(value, str) else value


def _fix_binary_char(length: int) -> Fixer:
    def fix(value: Any, _source: str | None) -> Any:
        # BINARY(n) is binlogged without its trailing zero bytes; SELECT returns all n.
        value = _fix_binary(value, _source)
        return value.ljust(length, b"\0") if isinstance(value, bytes) else value

    return fix


def _fix_json(value: Any, _source: str | None) -> Any:
    # MySQL binary JSON: the library parses it; PyMySQL returns the server's text, which uses
    # json.dumps's default separators. Not run here (MariaDB's JSON is LONGTEXT).
    return None if value is None else json.dumps(_text_keys(value), ensure_ascii=False)


def _text_keys(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_text_keys(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


_FIXERS_BY_TYPE: Mapping[int, Callable[[ColumnSpec], Fixer | None]] = {
    T_FLOAT: lambda _c: _fix_float,
    T_YEAR: lambda _c: _fix_year,
    T_TIMESTAMP: lambda c: _fix_timestamp(0),
    T_TIMESTAMP2: lambda c: _fix_timestamp(c.fsp),
    T_SET: lambda c: _fix_set(c.set_values),
    T_JSON: lambda _c: _fix_json,
    T_BLOB: lambda c: _fix_binary if c.binary else None,
    T_VARCHAR: lambda c: _fix_binary if c.binary else None,
    T_VAR_STRING: lambda c: _fix_binary if c.binary else None,
    T_STRING: lambda c: _fix_binary_char(c.length) if c.binary else None,
}


def row_fixers(columns: tuple[ColumnSpec, ...]) -> tuple[tuple[str, Fixer], ...]:
    """The normalisations a table's rows need, computed once per table map."""
    fixers = []
    for column in columns:
        make = _FIXERS_BY_TYPE.get(column.type_code)
        fixer = make(column) if make else None
        if fixer is not None:
            fixers.append((column.name, fixer))
    return tuple(fixers)


def fix_row(
    values: dict[str, Any],
    none_sources: Mapping[str, str],
    fixers: tuple[tuple[str, Fixer], ...],
) -> dict[str, Any]:
    """Apply ``fixers`` to one decoded row image, in place."""
    for name, fixer in fixers:
        values[name] = fixer(values[name], none_sources.get(name))
    return values


# --- statements ------------------------------------------------------------------------


class Kind(enum.Enum):
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    XA_START = "xa start"
    XA_END = "xa end"
    XA_COMMIT = "xa commit"
    XA_ROLLBACK = "xa rollback"
    DDL = "ddl"
    DML = "dml"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Statement:
    """What a QueryEvent does; ``label`` (``"ALTER TABLE"``) is safe to log, the text is not."""

    kind: Kind
    label: str
    tables: tuple[tuple[str, str], ...] = ()
    schemas: tuple[str, ...] = ()
    xid: str | None = None


_COMMENT = re.compile(r"\s*(?:/\*(?!!).*?\*/|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$))", re.S)
_VERSIONED = re.compile(r"\s*/\*!\d*\s*(.*?)\s*\*/\s*$", re.S)
_WORD = re.compile(r"\s*([A-Za-z_]+)")
_IDENT = re.compile(r'\s*(`(?:[^`]|``)+`|"(?:[^"]|"")+"|[\w$]+)', re.U)
_XID = re.compile(r"\s*(X'[0-9A-Fa-f]*'\s*(?:,\s*X'[0-9A-Fa-f]*'\s*(?:,\s*\d+)?)?|'[^']*')")
_SKIP_WORDS = frozenset(
    {
        "ONLINE",
        "IGNORE",
        "OR",
        "REPLACE",
        "TEMPORARY",
        "IF",
        "NOT",
        "EXISTS",
        "UNIQUE",
        "FULLTEXT",
        "SPATIAL",
        "LOW_PRIORITY",
        "DELAYED",
        "HIGH_PRIORITY",
        "QUICK",
        "INTO",
        "FROM",
    }
)
_TABLE_OBJECTS = frozenset({"TABLE", "VIEW", "SEQUENCE"})
_SCHEMA_OBJECTS = frozenset({"DATABASE", "SCHEMA"})


def _strip(text: str) -> str:
    while True:
        match = _COMMENT.match(text)
        if not match:
            break
        text = text[match.end() :]
    versioned = _VERSIONED.match(text)
    return versioned.group(1) if versioned else text.strip()


def _unquote(token: str) -> str:
    if token[0] == "`":
        return token[1:-1].replace("``", "`")
    if token[0] == '"':
        return token[1:-1].replace('""', '"')
    return token


def _name(text: str, at: int, current: str) -> tuple[tuple[str, str] | None, int]:
    """A possibly qualified name at ``at``: ``((schema, name), end)``."""
    first = _IDENT.match(text, at)
    if not first:
        return None, at
    end = first.end()
    if text.startswith(".", end):
        second = _IDENT.match(text, end + 1)
        if second:
            return (_unquote(first.group(1)), _unquote(second.group(1))), second.end()
    return (current, _unquote(first.group(1))), end


def _words(text: str, at: int) -> tuple[list[str], int]:
    """Leading keywords (upper case) up to the first non-keyword, skipping qualifiers."""
    words: list[str] = []
    while True:
        match = _WORD.match(text, at)
        if not match or (
            words
            and match.group(1).upper()
            not in _SKIP_WORDS | _TABLE_OBJECTS | _SCHEMA_OBJECTS | {"INDEX", "KEY"}
        ):
            return words, at
        words.append(match.group(1).upper())
        at = match.end()


def _names_list(text: str, at: int, current: str, sep: str = ",") -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    while True:
        name, at = _name(text, at, current)
        if name is None:
            return names
        names.append(name)
        rest = text[at:].lstrip()
        if not rest.startswith(sep):
            return names
        at = len(text) - len(rest) + 1


def _rename_pairs(text: str, at: int, current: str) -> list[tuple[str, str]]:
    names = []
    for part in re.split(r",", text[at:]):
        for side in re.split(r"\s+TO\s+", part.strip(), flags=re.I):
            name, _ = _name(side, 0, current)
            if name:
                names.append(name)
    return names


def _ddl(verb: str, words: list[str], text: str, at: int, current: str) -> Statement:
    objects = [w for w in words[1:] if w in _TABLE_OBJECTS | _SCHEMA_OBJECTS | {"INDEX", "KEY"}]
    obj = objects[0] if objects else ""
    label = f"{verb} {obj}".strip()
    if obj in _SCHEMA_OBJECTS:
        name, _ = _name(text, at, current)
        return Statement(Kind.DDL, label, schemas=(name[1],) if name else (current,))
    if obj in {"INDEX", "KEY"}:
        on = re.search(r"\bON\s+", text[at:], re.I)
        names = _names_list(text, at + on.end(), current)[:1] if on else []
        return Statement(Kind.DDL, label, tables=tuple(names))
    if verb == "RENAME":
        return Statement(Kind.DDL, label, tables=tuple(_rename_pairs(text, at, current)))
    names = _names_list(text, at, current) if verb == "DROP" else _names_list(text, at, current)[:1]
    also = re.search(
        r"\b(?:RENAME\s+(?:TO\s+|AS\s+)?(?!(?:COLUMN|INDEX|KEY)\b)|LIKE\s+)", text[at:], re.I
    )
    if also and verb in ("ALTER", "CREATE"):
        more, _ = _name(text, at + also.end(), current)
        names += [more] if more else []
    return Statement(Kind.DDL, label, tables=tuple(names))


def _xa(text: str, at: int) -> Statement:
    word = _WORD.match(text, at)
    sub = word.group(1).upper() if word else ""
    at = word.end() if word else at
    kinds = {
        "START": Kind.XA_START,
        "BEGIN": Kind.XA_START,
        "END": Kind.XA_END,
        "COMMIT": Kind.XA_COMMIT,
        "ROLLBACK": Kind.XA_ROLLBACK,
    }
    match = _XID.match(text, at)
    xid = normalise_xid(match.group(1)) if match else None
    return Statement(kinds.get(sub, Kind.OTHER), f"XA {sub}".strip(), xid=xid)


def normalise_xid(text: str) -> str:
    """An XA id as ``gtrid_hex,bqual_hex,format`` however the server spelled it."""
    text = text.strip()
    if text.startswith("'"):
        return f"{text[1:-1].encode().hex()},,1"
    parts = [p.strip() for p in text.split(",")]
    gtrid = parts[0][2:-1].lower()
    bqual = parts[1][2:-1].lower() if len(parts) > 1 else ""
    fmt = parts[2] if len(parts) > 2 else "1"
    return f"{gtrid},{bqual},{fmt}"


def xid_key(format_id: int, gtrid: bytes, bqual: bytes) -> str:
    """The same key from an XA_PREPARE event's parts."""
    return f"{gtrid.hex()},{bqual.hex()},{format_id}"


def _control(words: list[str], text: str, at: int, current: str) -> Statement:
    if len(words) > 1 or text[at:].strip():
        return Statement(Kind.OTHER, words[0])  # BEGIN WORK and kin: not seen in binlogs
    return Statement(Kind.BEGIN if words[0] == "BEGIN" else Kind.COMMIT, words[0])


def _rollback(words: list[str], text: str, at: int, current: str) -> Statement:
    to_savepoint = text[at:].lstrip().upper().startswith("TO")
    return Statement(Kind.OTHER if to_savepoint else Kind.ROLLBACK, "ROLLBACK")


def _xa_statement(words: list[str], text: str, at: int, current: str) -> Statement:
    return _xa(text, at)


def _ddl_statement(words: list[str], text: str, at: int, current: str) -> Statement:
    verb = words[0]
    if verb == "TRUNCATE" or (verb == "RENAME" and "TABLE" in words):
        return _ddl(verb, [verb, "TABLE"], text, at, current)
    if not set(words[1:]) & (_TABLE_OBJECTS | _SCHEMA_OBJECTS | {"INDEX", "KEY"}):
        return Statement(Kind.OTHER, verb)  # users, triggers, procedures, events...
    return _ddl(verb, words, text, at, current)


def _dml(words: list[str], text: str, at: int, current: str) -> Statement:
    into = re.search(r"\bINTO\s+TABLE\s+", text, re.I) if words[0] == "LOAD" else None
    names = _names_list(text, into.end() if into else at, current)[:1]
    return Statement(Kind.DML, words[0], tables=tuple(names))


_VERBS: Mapping[str, Callable[[list[str], str, int, str], Statement]] = {
    "BEGIN": _control,
    "COMMIT": _control,
    "ROLLBACK": _rollback,
    "XA": _xa_statement,
    **dict.fromkeys(("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"), _ddl_statement),
    **dict.fromkeys(("INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"), _dml),
}


def classify(query: str, current_schema: str) -> Statement:
    """What ``query`` (a QueryEvent's text, run with ``current_schema`` selected) does."""
    text = _strip(query)
    words, at = _words(text, 0)
    if not words:
        return Statement(Kind.OTHER, "")
    handler = _VERBS.get(words[0])
    return handler(words, text, at, current_schema) if handler else Statement(Kind.OTHER, words[0])
