"""The mapping of a source state from scratch: the reference validation compares against.

Feeding every source row as an INSERT, parents first, into a fresh :class:`Mapper` and a
:class:`MemoryTarget` gives the targets exactly as a rebuild from that state would have them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sync.mapping.engine import Mapper, PrimaryKeys
from sync.mapping.lookups import LookupState
from sync.mapping.spec import MappingSpec
from sync.model import Op, Row, RowChange
from sync.testing.memtarget import MemoryTarget


def map_snapshot(
    spec: MappingSpec,
    rows: Mapping[str, Iterable[Row]],
    *,
    commit_ts: datetime,
    primary_keys: PrimaryKeys | None = None,
) -> MemoryTarget:
    """Map ``rows[source table]`` of the source schema (any order of keys: mapped tables go
    parent-first, other tables after them) into a fresh MemoryTarget."""
    target = MemoryTarget()
    mapper = Mapper(spec, LookupState(spec), primary_keys)
    order = [t for t in spec.source_tables() if t in rows]
    order += [t for t in rows if t not in spec.tables]
    for table in order:
        for row in rows[table]:
            change = RowChange(spec.source_schema, table, Op.INSERT, None, row, commit_ts)
            target.apply(mapper.map_change(change))
    return target


__all__ = ["map_snapshot"]
