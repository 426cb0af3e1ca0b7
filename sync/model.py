"""The typed shapes that cross aurora-sync's boundaries.

A source reader (snapshot or binlog) yields :class:`SourceTransaction`s of :class:`RowChange`s;
the mapping turns each change into :class:`TargetOp`s; the applier writes those together with a
:class:`Checkpoint`. Everything here is frozen, so a value can be shared between stages freely.

Row values are the Python values PyMySQL and the binlog decoder produce (int, str, bytes,
Decimal, float, date, datetime, timedelta, None, ...). Datetimes are naive and in UTC: every
connection aurora-sync opens sets ``time_zone = '+00:00'``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sync.frozen import fast_init

Row: TypeAlias = Mapping[str, Any]
Key: TypeAlias = tuple[Any, ...]


@fast_init
@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the source binlog: the start of the next event to read.

    ``gtid`` is the GTID state after the event (MariaDB ``domain-server-seq`` list or a MySQL
    GTID set) where the source has one; file and position are always present.
    """

    file: str
    pos: int
    gtid: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        text = f"{self.file}:{self.pos}"
        return f"{text} (gtid {self.gtid})" if self.gtid else text


class Op(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@fast_init
@dataclass(frozen=True, slots=True)
class RowChange:
    """One row changed in the source: before and after images, as the binlog has them.

    INSERT has only ``after``; DELETE only ``before``; UPDATE both. A snapshot row is an INSERT.
    The stream's reader may leave out of ``before`` the columns the mapping does not read
    from it (``Mapper.before_columns``): its key and looked-up columns are always there.
    """

    schema: str
    table: str
    op: Op
    before: Row | None
    after: Row | None
    commit_ts: datetime
    position: Position | None = None

    @property
    def image(self) -> Row:
        """The row as it is after the change (the before image for a delete)."""
        image = self.after if self.after is not None else self.before
        if image is None:
            raise ValueError(f"row change on {self.schema}.{self.table} has no image")
        return image


@fast_init
@dataclass(frozen=True, slots=True)
class SourceTransaction:
    """A whole committed source transaction; ``end`` is where to resume after it."""

    changes: tuple[RowChange, ...]
    end: Position
    commit_ts: datetime


@dataclass(frozen=True, slots=True)
class TableRef:
    """A target table by its logical database name (``gateway_db``...), resolved by settings."""

    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass(frozen=True, slots=True)
class Eq:
    """``column = value``."""

    column: str
    value: Any


@dataclass(frozen=True, slots=True)
class InSelect:
    """``column IN (SELECT select FROM source WHERE <where>)``: reaches rows through a parent.

    ``where`` may nest further InSelects (grandchildren of a deleted grandparent). ``source``
    is never the table being changed (MySQL refuses that).
    """

    column: str
    source: TableRef
    select: str
    where: tuple[Condition, ...]


Condition: TypeAlias = Eq | InSelect


@dataclass(frozen=True, slots=True)
class Reset:
    """On an upsert that finds the row: when ``watch`` changes value, also set ``values``.

    How a changed syllabus file URL marks the file's checksum pending again, while an upsert
    that leaves the URL alone keeps the checksum the file service computed.
    """

    watch: str
    values: Row


@fast_init
@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert ``row``, or when ``key`` exists overwrite only ``update_columns``.

    Columns outside ``update_columns`` are set on insert only: values the services own after
    the move (checksums, versions) or that record the first sighting (``created_at``).
    ``resets`` are compared against the row as it was before this upsert.
    """

    target: TableRef
    key_columns: tuple[str, ...]
    key: Key
    row: Row
    update_columns: tuple[str, ...]
    resets: tuple[Reset, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the row with ``key`` if it exists."""

    target: TableRef
    key_columns: tuple[str, ...]
    key: Key


@dataclass(frozen=True, slots=True)
class UpdateWhere:
    """Set ``values`` on every row matching all ``where`` conditions (cascades, denormalised
    columns of children). A barrier: it must see every keyed operation before it applied."""

    target: TableRef
    where: tuple[Condition, ...]
    values: Row


@dataclass(frozen=True, slots=True)
class DeleteWhere:
    """Delete every row matching all ``where`` conditions (ON DELETE CASCADE). A barrier."""

    target: TableRef
    where: tuple[Condition, ...]


TargetOp: TypeAlias = Upsert | Delete | UpdateWhere | DeleteWhere


@fast_init
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last source position whose transaction is fully applied to the targets."""

    position: Position
    commit_ts: datetime | None = None
