"""What the binlog reader yields besides :class:`~sync.model.SourceTransaction`.

The reader is a plain iterator of :data:`StreamEvent`: whole committed transactions, and the
control events below. Every ``position`` here is a transaction boundary the pipeline may
checkpoint and resume from, except :attr:`Heartbeat.source_position`, which is only what the
source reports (for the byte gap shown beside the lag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from sync.model import Position, SourceTransaction

TableName: TypeAlias = tuple[str, str]
"""``(schema, table)``: tables are always named with their schema; bare names are ambiguous."""


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """A DDL statement on a tracked schema, already committed on the source.

    ``tables`` are the ``(schema, table)`` pairs the statement names (an unqualified name is
    resolved with the statement's current database); ``whole_schema`` is set for
    ``CREATE/ALTER/DROP DATABASE``. The pipeline halts if one of them is a mapped table.

    ``statement`` is the raw text and may carry secrets (MariaDB logs ``CREATE USER ...
    IDENTIFIED BY '...'`` verbatim): it is kept out of ``repr`` and must never be logged;
    ``statement_kind`` (``"ALTER TABLE"``...) is what goes to logs and errors.
    """

    position: Position
    schema: str
    tables: tuple[TableName, ...]
    statement_kind: str
    commit_ts: datetime
    whole_schema: bool = False
    statement: str = field(default="", repr=False, compare=False)

    def touches(self, schema: str, table: str) -> bool:
        """Whether this change may alter ``schema.table``."""
        if self.whole_schema and schema == self.schema:
            return True
        return (schema, table) in self.tables


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The source is alive and has nothing more to send (a replication heartbeat).

    ``position`` is where the reader would resume (a transaction boundary, safe to
    checkpoint); ``source_position`` is the source's binlog end as the heartbeat reports it.
    ``server_ts`` is None: heartbeats carry no timestamp, so lag comes from the heartbeat
    table written on the source, not from here.
    """

    position: Position
    source_position: Position
    server_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rotate:
    """The source moved on to a new binlog file; ``position`` is its first event."""

    position: Position


StreamEvent: TypeAlias = SourceTransaction | SchemaChange | Heartbeat | Rotate
