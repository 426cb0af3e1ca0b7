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

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.model import Op
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
    kept: RowsDecoder | None = field(default=None, compare=False, repr=False)
    """Rows of only the columns :meth:`changes` keeps in before images (None: every one)."""
    pairs: RowsDecoder | None = field(default=None, compare=False, repr=False)
    """An update's rows: the kept columns before, every column after."""

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
        return self._read(self.decoder, data, pos, end, update)

    def changes(self, data: bytes, pos: int, end: int, op: Op) -> list[Image] | None:
        """As :meth:`rows`, with before images (an update's, a delete's) holding only the
        columns :func:`compile_table` was told to keep: the rest are stepped over."""
        decoder = self.decoder
        if op is Op.UPDATE and self.pairs is not None:
            decoder = self.pairs
        elif op is Op.DELETE and self.kept is not None:
            decoder = self.kept
        return self._read(decoder, data, pos, end, op is Op.UPDATE)

    def _read(self, decoder: RowsDecoder, data: bytes, pos: int, end: int,
              update: bool) -> list[Image] | None:
        # Within the packet, the decoder reads the null bitmap's byte without a bounds test.
        if end > len(data) or not self.whole(data, pos, update):
            return None
        pos += len(self.present) * (2 if update else 1)
        try:
            images, pos = decoder(data, pos, end)
        except _DECODE_ERRORS:
            return None
        if pos != end or (update and len(images) % 2):
            return None
        return images


def compile_table(
    columns: Sequence[Any], before: Collection[str] | None = None
) -> TableReader | None:
    """Readers for a table map's columns (the library's Column objects), or None when a
    column needs the library. ``before``: the columns :meth:`TableReader.changes` keeps in
    before images (None: all of them)."""
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
    decoder = generate(columns, compiled)
    names = [name for name, _ in compiled]
    # A column the table lacks would be missing from the images too: keep them whole, and
    # let whatever reads them name the column.
    if before is None or not set(before) <= set(names) or len(set(before)) == count:
        return TableReader(tuple(compiled), present, decoder)
    kept = {i for i, name in enumerate(names) if name in before}
    return TableReader(tuple(compiled), present, decoder,
                       generate(columns, compiled, kept=kept),
                       generate(columns, compiled, kept=kept, pairs=True))


__all__ = ["Image", "Reader", "RowsDecoder", "TableReader", "compile_table"]
