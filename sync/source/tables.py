"""The tables the binlog's table maps describe, as both row paths read them.

One :class:`Table` per table id: its column names (the binlog must name every column), the
fixers that make the library's values equal to ``SELECT``'s, and a compiled row reader for
the lean path (:mod:`sync.source.rows`). The library's table map objects are read by
attribute only, so this module does not import the library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.errors import SourceError
from sync.model import Position
from sync.source import decode, rows


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    table: str
    columns: frozenset[str]
    fixers: tuple[tuple[str, decode.Fixer], ...]
    source: Any
    """The library's table map this was built from (row events are read against it)."""
    reader: rows.TableReader | None


class TableCache:
    """Tables by table id, rebuilt when the library's table map for an id changes."""

    def __init__(self, *, lean: bool, here: Callable[[], Position]) -> None:
        self._infos: dict[int, Table] = {}
        self._lean = lean
        self._here = here

    def table(self, table_id: int, source: Any) -> Table:
        info = self._infos.get(table_id)
        if info is None or info.source is not source:
            names = [column.name for column in source.columns]
            if any(name is None for name in names):
                raise SourceError(
                    f"the binlog names no columns of {source.schema}.{source.table} "
                    "(binlog_row_metadata is not FULL): values cannot be mapped by name and "
                    "unsigned, ENUM and SET values would be wrong",
                    fix="SET GLOBAL binlog_row_metadata=FULL (and in the server config), "
                    "then bootstrap again; `aurora-sync check` refuses to start without it",
                    table=f"{source.schema}.{source.table}",
                    position=self._here(),
                )
            _check_charsets(source, self._here())
            specs = tuple(_column_spec(column) for column in source.columns)
            reader = rows.compile_table(source.columns) if self._lean else None
            info = Table(
                source.schema,
                source.table,
                frozenset(names),
                decode.row_fixers(specs),
                source,
                reader,
            )
            self._infos[table_id] = info
        return info

    def clear(self) -> None:
        self._infos.clear()


def _check_charsets(source: Any, here: Position) -> None:
    """Refuse text whose bytes would not read as SELECT gives them (greek, hebrew...: the
    server's tables differ from Python's codecs), rather than copy it differently."""
    for column in source.columns:
        charset = column.character_set_name
        if column.type not in decode.TEXT_TYPES or charset is None:
            continue
        if charset not in decode.EXACT_CHARSETS:
            raise SourceError(
                f"column {column.name} of {source.schema}.{source.table} is in character set "
                f"{charset}, which aurora-sync cannot read from the binlog exactly as the "
                "server converts it (it reads utf8mb4, utf8mb3, latin1, ascii, utf16, utf32, "
                "ucs2 and binary columns)",
                fix=f"convert the column on aurora (ALTER TABLE {source.schema}.{source.table} "
                "CONVERT TO CHARACTER SET utf8mb4), then copy again from a new position with "
                "`aurora-sync bootstrap --force` (the binlog before the conversion stays "
                "unreadable)",
                table=f"{source.schema}.{source.table}",
                position=here,
            )


def _column_spec(column: Any) -> decode.ColumnSpec:
    return decode.ColumnSpec(
        name=column.name,
        type_code=column.type,
        fsp=getattr(column, "fsp", 0) or 0,
        set_values=tuple(column.set_values or ()),
        binary=column.character_set_name == "binary",
        length=getattr(column, "max_length", 0) or 0,
    )
