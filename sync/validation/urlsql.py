"""SQL twins of the file split's id and presence test, for aurora's server to compute.

Validation hashes the rows the mapping makes from aurora on aurora's own server
(:mod:`sync.validation.pushdown`). A syllabus row links its ``file_db.files`` row by an id
that :func:`sync.mapping.files.file_id` derives from the row's key (UUIDv5); these are the
same in SQL. They need only be right for the common case: a chunk whose SQL hash differs from
the target's is read again and mapped in Python, so a difference here costs speed, never a
false report. Nothing here writes data: the writers use the Python functions.

The file's name, type and provider stay in Python: their SQL spelling (URL unquoting, a
type table) nests so deeply that the server took longer than Python.
"""

from __future__ import annotations

from uuid import UUID


def literal(text: str) -> str:
    """``text`` as a SQL string literal (only for our own constants: no quotes or escapes)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"not a plain literal: {text!r}")
    return f"'{text}'"


def uuid5(namespace: UUID, id_name: str, key_sql: str) -> str:
    """The SQL twin of :func:`sync.mapping.files.file_id` for the key expression ``key_sql``.

    The server evaluates a repeated subexpression each time, so the digest appears twice
    only: once to be edited in place (version nibble, dashes) and once for the variant."""
    digest = f"SHA1(CONCAT(UNHEX('{namespace.hex}'), {literal(id_name + ':')}, {key_sql}))"
    variant = f"HEX((CONV(SUBSTR({digest}, 17, 1), 16, 10) & 3) | 8)"
    edited = f"INSERT(INSERT(LEFT({digest}, 32), 13, 1, '5'), 17, 1, {variant})"
    for position in (21, 17, 13, 9):  # right to left, so the earlier positions hold
        edited = f"INSERT({edited}, {position}, 0, '-')"
    return f"LOWER(CONVERT({edited} USING ascii))"  # LOWER leaves binary strings as they are


def uuid5_text(namespace: UUID, id_name: str, key_sql: str) -> str:
    """The text :data:`sync.validation.normal.UUID5` spells the same id as: its hex digits
    without the version and variant digits, from one SHA-1 and two string operations (the
    result is a binary string: hashed as bytes, the same bytes as the target's text)."""
    digest = f"SHA1(CONCAT(UNHEX('{namespace.hex}'), {literal(id_name + ':')}, {key_sql}))"
    return f"INSERT(INSERT(LEFT({digest}, 32), 17, 1, ''), 13, 1, '')"


def present(url_sql: str) -> str:
    """SQL twin of :func:`sync.mapping.files.is_present`: NULL or false when blank.

    Under a PAD SPACE collation (MariaDB's utf8mb4 ones) a string of spaces equals '', which
    is what TRIM would give, at a fraction of the cost: TRIM copies every URL. Under NO PAD
    (MySQL 8's default) a URL of spaces only counts as present here and not in Python; its
    chunk differs and is compared row by row."""
    return f"({url_sql} <> '')"


__all__ = ["literal", "present", "uuid5", "uuid5_text"]
