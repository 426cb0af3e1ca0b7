"""Row images read straight from a rows event's bytes, per table map.

For a table map seen once, :func:`compile_table` builds a :class:`TableReader`: one reader
per column (:mod:`sync.source.columns`) and the decoder generated from them for the whole
row (:mod:`sync.source.rowgen`). The values are exactly those of the library plus
:mod:`sync.source.decode`'s fixers (the golden test reads every type both ways).

Anything unusual is left to the library, which reads it or raises the reader's error:

* a column type without a reader here (old TIME, GEOMETRY, MySQL binary JSON, MariaDB
  compressed columns...), ENUM or SET without their values, a character set Python cannot
  decode: :func:`compile_table` returns None for the table;
* an event whose column count differs from its table map, a partial row image, bytes that
  do not decode: :meth:`TableReader.rows` returns None for the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.source.columns import _DECODE_ERRORS, Image, Reader, column_reader
from sync.source.rowgen import RowsDecoder, generate


@dataclass(frozen=True, slots=True)
class TableReader:
    """The compiled readers of one table map."""

    columns: tuple[tuple[str, Reader], ...]
    present: bytes
    """The columns-present bitmap of a full row image."""
    decoder: RowsDecoder = field(compare=False, repr=False)
    """All rows at once, generated from the columns' types and readers."""

    def whole(self, data: bytes, pos: int, update: bool) -> bool:
        """Whether the columns-present bitmaps at ``pos`` (two for an update) name every
        column: a partial image is the library's to refuse."""
        width = len(self.present)
        if data[pos : pos + width] != self.present:
            return False
        return not update or data[pos + width : pos + 2 * width] == self.present

    def rows(self, data: bytes, pos: int, end: int, update: bool) -> list[Image] | None:
        """The row images of a rows event body (``update``: before and after alternate),
        or None where the library must read it."""
        # Within the packet, the decoder reads the null bitmap's byte without a bounds test.
        if end > len(data) or not self.whole(data, pos, update):
            return None
        pos += len(self.present) * (2 if update else 1)
        try:
            images, pos = self.decoder(data, pos, end)
        except _DECODE_ERRORS:
            return None
        if pos != end or (update and len(images) % 2):
            return None
        return images


def compile_table(columns: Sequence[Any]) -> TableReader | None:
    """Readers for a table map's columns (the library's Column objects), or None when a
    column needs the library."""
    compiled: list[tuple[str, Reader]] = []
    for column in columns:
        read = column_reader(column)
        if read is None or column.name is None:
            return None
        compiled.append((column.name, read))
    count = len(compiled)
    if not count:
        return None  # no table has none; a row of nothing would never move past its bytes
    present = ((1 << count) - 1).to_bytes((count + 7) // 8, "little")
    return TableReader(tuple(compiled), present, generate(columns, compiled))


__all__ = ["Image", "Reader", "RowsDecoder", "TableReader", "compile_table"]
