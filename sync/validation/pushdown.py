"""The mapping of one aurora table as one SQL query, so aurora's server hashes its chunks.

Mapping a million rows in Python to hash them cost validation 17 times a ``CHECKSUM TABLE``.
Every column of a table's own target row is a source column, a parent's column reached
through foreign keys, a constant, or the file link (an id derived from the key); each has an
SQL spelling (lookups become LEFT JOINs, the link :mod:`sync.validation.urlsql`). So aurora's
server computes, per primary-key chunk, the count and the XOR of row hashes of the rows the
mapping makes, in the same text form the target server hashes its stored rows with
(:mod:`sync.validation.normal`). The ``file_db.files`` rows split from a URL are the
exception: the server sends their id, owner and URL, and Python derives name, type and
provider (:func:`sync.mapping.files.describe`) and hashes them.

Two things only Python decides, and the query hands them back to it:

- a row whose parent aurora does not hold (a lookup or a kept foreign key that misses): the
  Python mapping skips it or writes NULL, so the chunk is counted in ``orphans`` and re-read;
- any value these expressions spell differently from the Python mapping: the chunk's hashes
  differ, and the chunk is re-read and compared row by row in Python.

So the SQL decides how fast a clean chunk passes, never what a difference is. Written and
run for MariaDB sources; the MySQL 8/Aurora spelling differs only in
:meth:`~sync.validation.urlsql.UrlParts.unquote`, which was not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zlib import crc32

import pymysql

from sync.apply.sql import quote
from sync.errors import ValidationError
from sync.mapping import files
from sync.mapping.joins import SourceJoins
from sync.mapping.spec import MappingSpec, SourceTable
from sync.validation.compare import Digest
from sync.validation.normal import SEPARATOR, UUID5, ColumnKind, render, sql_hash, sql_text
from sync.validation.reading import Chunk, TargetRange, key_range
from sync.validation.urlsql import present, uuid5, uuid5_text


class NotPushableError(ValidationError):
    """A compared target column has no SQL spelling here (a type the hashing does not know)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"validate cannot hash the mapping on aurora's server: {reason}",
                         fix="make the target schema match schemas/*.sql (`aurora-sync check` "
                             "shows the differences)")


@dataclass(frozen=True, slots=True)
class SourceDigest:
    """One chunk of an aurora table as aurora's server hashed it."""

    rows: int
    orphans: int
    digests: tuple[Digest, ...]  # per target range, in the order given to the query


def _hex_literal(text: str) -> str:
    # Constants as hex: no quoting or escaping rules of the server involved.
    raw = text.encode("utf-8", "surrogatepass")
    return f"CONVERT(X'{raw.hex()}' USING utf8mb4)" if raw else "''"


class PushdownQuery:
    """The chunk queries of one aurora table for the target ranges it fills."""

    def __init__(self, spec: MappingSpec, table: SourceTable,
                 targets: Sequence[TargetRange]) -> None:
        self.table = table
        self.targets = tuple(targets)
        self._from = SourceJoins(spec, table)
        self.values = self._values(spec, table)
        self._own: TargetRange | None = None
        self._files: TargetRange | None = None
        for target in self.targets:
            if table.split is not None and target.label == str(table.split.target):
                self._files = target
            elif target.label == str(table.target):
                self._own = target
            else:
                raise NotPushableError(f"{target.label} is not filled by {table.name}")
        if self._files is not None and not plain_file_kinds(self._files.kinds):
            raise NotPushableError(f"{self._files.label} has columns of unexpected types")
        self._described: dict[str, tuple[str, str, str]] = {}
        self._digest_sql = self._digest_select()
        self._files_sql = self._files_select() if self._files is not None else None

    @property
    def _key(self) -> str:
        return f"t0.{quote(self.table.key[0])}"

    @property
    def _url(self) -> str:
        assert self.table.split is not None
        return f"t0.{quote(self.table.split.url_column)}"

    def _values(self, spec: MappingSpec, table: SourceTable) -> dict[str, Value]:
        """Target column -> SQL expression of the mapped value (or a constant, or a file id)."""
        values: dict[str, Value] = {t: f"t0.{quote(s)}" for t, s in table.copies}
        walked = {lookup.via for lookup in table.lookups}
        for lookup in table.lookups:
            values[lookup.column] = self._from.walk(lookup.via, lookup.steps)
        for fk in table.foreign_keys:
            if fk.parent in spec.stored and fk.column not in walked:
                self._from.parent(fk.column, fk.parent)
        for added in table.added:
            if added.kind == "constant":
                values[added.column] = ColumnConstant(added.default)
        split = table.split
        if split is not None:
            values[split.link_column] = FileId(split.namespace, split.id_name, self._key,
                                               present(self._url))
        return values

    def _parts(self, kinds: Sequence[ColumnKind]) -> list[str]:
        parts = []
        for kind in kinds:
            value = self.values.get(kind.name)
            if value is None:
                raise NotPushableError(f"no SQL spelling for {self.table.target}.{kind.name}")
            parts.append(_spell(value, kind))
        return parts

    def _digest_select(self) -> str:
        orphans = self._from.orphan()
        columns = [f"COALESCE(SUM({orphans}), 0)"]
        if self._own is not None:
            columns.append(f"COALESCE(BIT_XOR({sql_hash(self._parts(self._own.kinds))}), 0)")
        if self._files is not None:
            present_url = present(self._url)
            copied = sql_hash(self._file_parts(self._files.kinds))
            # The URLs ride along in one string per chunk (a URL holding the row separator
            # makes the count differ from the present rows: read row by row then).
            columns.append(f"GROUP_CONCAT(IF({present_url}, CONCAT({self._key}, CHAR(31), "
                           f"{self._url}), NULL) SEPARATOR {_ROWS_SQL})")
            columns.append(f"COALESCE(SUM({present_url}), 0)")
            columns.append(f"COALESCE(BIT_XOR(IF({present_url}, {copied}, NULL)), 0)")
        # pymysql formats parameters with %: an expression's own % must be doubled.
        return (f"SELECT COUNT(*), {', '.join(columns)} FROM {self._from.sql}"
                ).replace("%", "%%")

    def _file_parts(self, kinds: Sequence[ColumnKind]) -> list[str]:
        """The copied columns of a files row (:data:`FILE_HASH_GROUPS`), as SQL text."""
        split = self.table.split
        assert split is not None
        owner = self.values.get(split.owner_from)
        if not isinstance(owner, str):
            raise NotPushableError(f"the files owner {split.owner_from} is not an expression")
        by_name = {k.name: k for k in kinds}
        values: dict[str, Value] = {
            files.KEY_COLUMN: FileId(split.namespace, split.id_name, self._key),
            files.OWNER_COLUMN: owner,
            files.URL_COLUMN: self._url,
            files.SOURCE_TABLE_COLUMN: ColumnConstant(split.source_table),
            files.SOURCE_ID_COLUMN: self._key,
        }
        return [_spell(values[name], by_name[name]) for name in FILE_HASH_GROUPS[0]]

    def _files_select(self) -> str:
        # Only the URL leaves the server: Python derives name, type and provider from it.
        return (f"SELECT {self._key}, {self._url} FROM {self._from.clauses[0]} "
                f"WHERE {present(self._url)} AND ").replace("%", "%%")

    def _where(self, chunk: Chunk) -> tuple[str, list[Any]]:
        where, params = key_range([f"t0.{quote(k)}" for k in self.table.key], chunk.lo,
                                  chunk.hi)
        return " AND ".join(where) or "1", params

    def read(self, conn: pymysql.Connection[Any], chunk: Chunk) -> SourceDigest:
        """The chunk's row count, orphans and one digest per target range (``conn`` made
        ready by :func:`prepare`)."""
        where, params = self._where(chunk)
        with conn.cursor() as cur:
            cur.execute(f"{self._digest_sql} WHERE {where}", params)
            row = cur.fetchone()
            assert row is not None
            count, orphans = int(row[0]), int(row[1])
            own = Digest(count, int(row[2])) if self._own is not None else None
            found: Digest | None = None
            if self._files_sql is not None:
                urls, present_rows, copied = row[-3:]
                items = urls.split(_ROWS) if urls else []
                if len(items) != int(present_rows) or len(urls or "") >= GROUP_CONCAT_MAX:
                    cur.execute(self._files_sql + where, params)
                    pairs = [(str(k), u) for k, u in cur.fetchall()]
                else:
                    pairs = [tuple(item.split(_FIELD, 1)) for item in items]
                derived = self._file_digest(pairs)
                found = Digest(int(present_rows), int(copied) ^ derived.xor)
        digests = tuple(own if t is self._own else found for t in self.targets)
        return SourceDigest(count, orphans, tuple(d for d in digests if d is not None))

    def _file_digest(self, rows: Sequence[Sequence[str]]) -> Digest:
        """The XOR of the derived-column hashes (:data:`FILE_HASH_GROUPS`) of the files rows
        made from ``(key as text, url)`` rows, derived as :class:`sync.mapping.plans.SplitPlan`
        does. The columns are text the target stores as given (:func:`plain_file_kinds`), so
        each row's text is built directly."""
        split = self.table.split
        assert split is not None
        prefix = f"{split.source_table}-"
        describe = self._describe
        acc = 0
        for key, url in rows:
            name, mime, provider = describe(url)
            text = SEPARATOR.join((key, name or f"{prefix}{key}", mime, provider))
            acc ^= crc32(str(crc32(text.encode("utf-8", "surrogatepass"))).encode())
        return Digest(len(rows), acc)

    def _describe(self, url: str) -> tuple[str, str, str]:
        # URLs repeat (a course's file linked by each term's syllabus); bounded memory.
        found = self._described.get(url)
        if found is None:
            if len(self._described) >= _DESCRIBED_MAX:
                self._described.clear()
            found = self._described[url] = files.describe(url)
        return found


_DESCRIBED_MAX = 65_536
_ROWS, _FIELD = "\x1e", "\x1f"
_ROWS_SQL = "X'1e'"  # SEPARATOR takes a literal only
GROUP_CONCAT_MAX = 1 << 30
"""``group_concat_max_len`` the source connection must have (:func:`prepare`): longer
URL lists would be cut, which is caught by length and read row by row instead."""


def prepare(conn: pymysql.Connection[Any]) -> None:
    """Session settings :meth:`PushdownQuery.read` needs on aurora's connection."""
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION group_concat_max_len = {GROUP_CONCAT_MAX}")
# A files row hashes as two groups XOR-ed: the columns aurora's server can spell, and those
# Python derives from the URL (keyed by the source id, so a swap between rows shows).
FILE_HASH_GROUPS: tuple[tuple[str, ...], ...] = (
    (files.KEY_COLUMN, files.OWNER_COLUMN, files.URL_COLUMN, files.SOURCE_TABLE_COLUMN,
     files.SOURCE_ID_COLUMN),
    (files.SOURCE_ID_COLUMN, "file_name", "mime_type", "storage_provider"),
)
_PLAIN = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "tinyint",
                    "smallint", "mediumint", "int", "integer", "bigint"})


def plain_file_kinds(kinds: Sequence[ColumnKind]) -> bool:
    """The derived files columns render as ``str(value)`` (the values are never NULL)."""
    by_name = {k.name: k for k in kinds}
    derived = FILE_HASH_GROUPS[1]
    return all(n in by_name and by_name[n].data_type in _PLAIN for n in derived)


@dataclass(frozen=True, slots=True)
class ColumnConstant:
    """A constant the mapping writes, spelled by :func:`render` for its column."""

    value: Any


@dataclass(frozen=True, slots=True)
class FileId:
    """The UUIDv5 of the files row made from the row with key ``key_sql`` (NULL unless
    ``when`` holds, when given)."""

    namespace: UUID
    id_name: str
    key_sql: str
    when: str | None = None

    def spelled(self, kind: ColumnKind) -> str:
        if kind.data_type == UUID5:  # the short spelling: one SHA-1 per row
            text = uuid5_text(self.namespace, self.id_name, self.key_sql)
            text = text if self.when is None else f"IF({self.when}, {text}, NULL)"
            return f"IFNULL({text}, CHAR(30))" if self.when else text
        full = uuid5(self.namespace, self.id_name, self.key_sql)
        return sql_text(kind, full if self.when is None else f"IF({self.when}, {full}, NULL)")


Value = str | ColumnConstant | FileId


def _spell(value: Value, kind: ColumnKind) -> str:
    if isinstance(value, ColumnConstant):
        return _hex_literal(render(value.value, kind))
    if isinstance(value, FileId):
        return value.spelled(kind)
    return sql_text(kind, value)


def integer_bounds(chunks: Sequence[Chunk]) -> list[int] | None:
    """The upper bounds of ``chunks`` when the key is one integer column, else None."""
    bounds = [c.hi[0] for c in chunks if c.hi is not None]
    if any(c.hi is not None and len(c.hi) != 1 for c in chunks):
        return None
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        return None
    return bounds


def chunk_bounds(conn: pymysql.Connection[Any], schema: str, table: SourceTable,
                 size: int) -> list[Chunk]:
    """Primary-key ranges of about ``size`` rows covering every key (the last open above)."""
    key = [quote(k) for k in table.key]
    select = (f"SELECT {', '.join(key)} FROM {quote(schema)}.{quote(table.name)} WHERE {{}} "
              f"ORDER BY {', '.join(key)} LIMIT 1 OFFSET {int(size) - 1}")
    chunks: list[Chunk] = []
    lo: tuple[Any, ...] | None = None
    with conn.cursor() as cur:
        while True:
            where, params = key_range(key, lo, None)
            cur.execute(select.format(" AND ".join(where) or "1"), params)
            row = cur.fetchone()
            if row is None:
                chunks.append(Chunk(table.name, lo, None))
                return chunks
            chunks.append(Chunk(table.name, lo, tuple(row)))
            lo = tuple(row)


__all__ = [
    "FILE_HASH_GROUPS",
    "ColumnConstant",
    "FileId",
    "NotPushableError",
    "PushdownQuery",
    "SourceDigest",
    "chunk_bounds",
    "integer_bounds",
    "plain_file_kinds",
    "prepare",
]
