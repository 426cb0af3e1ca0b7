"""The mapping's lookups as LEFT JOINs on aurora, for queries that map rows on its server.

Validation hashes, and the bootstrap copies, the rows the mapping makes by asking aurora's
server to compute them (:mod:`sync.validation.pushdown`, :mod:`bootstrap.literals`). A
denormalised column is a walk through parents by foreign key; in SQL each parent walked is a
LEFT JOIN, shared by every walk that passes the same path. A row whose walk misses a parent
(or whose kept foreign key names a parent aurora lacks) is an orphan: the Python mapping
decides what it becomes, so queries count or flag such rows and hand them back to Python.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync.apply.sql import quote
from sync.mapping.spec import MappingSpec, SourceTable


class SourceJoins:
    """The FROM clause of one mapped table: the table as ``t0``, one LEFT JOIN per parent
    walked, and the conditions that make a row an orphan."""

    def __init__(self, spec: MappingSpec, table: SourceTable) -> None:
        self.spec = spec
        self.schema = quote(spec.source_schema)
        self.clauses = [f"{self.schema}.{quote(table.name)} AS t0"]
        self.aliases: dict[tuple[str, ...], str] = {}
        self.orphans: list[str] = []

    @property
    def sql(self) -> str:
        return " ".join(self.clauses)

    def orphan(self) -> str:
        """True for a row that misses a parent (FALSE when the table walks none)."""
        return " OR ".join(self.orphans) or "FALSE"

    def walk(self, via: str, steps: Sequence[tuple[str, str]]) -> str:
        """The expression of a lookup: start at ``t0.via``, read ``column`` of each ``table``."""
        current = f"t0.{quote(via)}"
        path: tuple[str, ...] = (via,)
        for table, column in steps:
            current = f"{self._join(path := (*path, table), table, current)}.{quote(column)}"
        return current

    def _join(self, path: tuple[str, ...], table: str, value: str) -> str:
        alias = self.aliases.get(path)
        if alias is None:
            alias = self.aliases[path] = f"j{len(self.aliases) + 1}"
            key = quote(self.spec.tables[table].key[0])
            self.clauses.append(
                f"LEFT JOIN {self.schema}.{quote(table)} AS {alias} ON {alias}.{key} = {value}")
            self.orphans.append(f"({value} IS NOT NULL AND {alias}.{key} IS NULL)")
        return alias

    def parent(self, column: str, table: str) -> None:
        """Flag rows whose ``column`` names a ``table`` row aurora does not hold."""
        self._join((column, table), table, f"t0.{quote(column)}")


__all__ = ["SourceJoins"]
