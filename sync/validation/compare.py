"""Pure comparison: chunk digests, row differences and the per-table tally of a run.

No I/O here. The readers hand over rendered rows (:mod:`sync.validation.normal`); these
functions say whether a chunk matches and, row by row, what differs: a key the target lacks
(``missing``), a key only the target has (``extra``), or the columns that differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sync.validation.normal import row_hash

Key = tuple[Any, ...]
Rendered = tuple[str, ...]
DiffKind = Literal["missing", "extra", "different"]


@dataclass(frozen=True, slots=True)
class Digest:
    """Row count and XOR of 64-bit row hashes: order-free, so chunks hash as they stream."""

    rows: int = 0
    xor: int = 0

    @classmethod
    def of(cls, rows: Iterable[Sequence[str]]) -> Digest:
        count = 0
        acc = 0
        for row in rows:
            count += 1
            acc ^= row_hash(row)
        return cls(count, acc)


@dataclass(frozen=True, slots=True)
class RowDiff:
    table: str
    kind: DiffKind
    key: Key
    columns: tuple[str, ...] = ()

    def line(self, key_columns: Sequence[str]) -> str:
        key = ", ".join(f"{c}={v!r}" for c, v in zip(key_columns, self.key, strict=False))
        if self.kind == "different":
            return f"{self.table} ({key}): different in {', '.join(self.columns)}"
        where = "not in the target" if self.kind == "missing" else "only in the target"
        return f"{self.table} ({key}): {self.kind}, {where}"


def diff_rows(
    table: str,
    columns: Sequence[str],
    expected: Mapping[Key, Rendered],
    actual: Mapping[Key, Rendered],
) -> list[RowDiff]:
    """Every difference between two rendered chunks of ``table``, in key order."""
    out: list[RowDiff] = []
    for key in sorted(expected.keys() | actual.keys(), key=_order):
        want, have = expected.get(key), actual.get(key)
        if have is None:
            out.append(RowDiff(table, "missing", key))
        elif want is None:
            out.append(RowDiff(table, "extra", key))
        elif want != have:
            differing = tuple(c for c, w, h in zip(columns, want, have, strict=True) if w != h)
            out.append(RowDiff(table, "different", key, differing))
    return out


def _order(key: Key) -> tuple[tuple[int, str], ...]:
    # Keys mix ints and strings across tables; order by type, then numerically or by text.
    return tuple((0, f"{v:020d}") if isinstance(v, int) else (1, str(v)) for v in key)


def persistent(attempts: Sequence[Sequence[RowDiff]]) -> list[RowDiff]:
    """The differences seen in every attempt (a row caught mid-change shows up only once)."""
    if not attempts:
        return []
    common = {(d.table, d.kind, d.key) for d in attempts[0]}
    for found in attempts[1:]:
        common &= {(d.table, d.kind, d.key) for d in found}
    return [d for d in attempts[-1] if (d.table, d.kind, d.key) in common]


@dataclass
class TableTally:
    """What validation found for one target table."""

    table: str
    key_columns: tuple[str, ...]
    chunks: int = 0
    expected_rows: int = 0
    target_rows: int = 0
    rechecked: int = 0
    differences: list[RowDiff] = field(default_factory=list)
    difference_count: int = 0

    @property
    def clean(self) -> bool:
        return self.difference_count == 0

    def add(self, found: Sequence[RowDiff], keep: int) -> None:
        self.difference_count += len(found)
        room = max(keep - len(self.differences), 0)
        self.differences.extend(found[:room])

    def summary(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks, "expected_rows": self.expected_rows,
            "target_rows": self.target_rows, "rechecked_chunks": self.rechecked,
            "differences": self.difference_count,
            "first": [d.line(self.key_columns) for d in self.differences],
        }


__all__ = ["Digest", "RowDiff", "TableTally", "diff_rows", "persistent"]
