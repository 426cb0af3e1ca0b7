"""Whole source transactions assembled from binlog events, and the positions safe to resume at.

The binlog reader (:mod:`sync.source.binlog`) reads events; this module decides what they
mean for transactions, with no network and no library event classes:

* a transaction opens at a GTID event (MariaDB's flags say whether it is standalone), a
  ``BEGIN`` or ``XA START``, and ends at a commit (Xid), a ``COMMIT`` query (Aria/MyISAM), a
  standalone statement (DDL commits implicitly) or an XA PREPARE (its rows are parked until
  ``XA COMMIT`` and dropped on ``XA ROLLBACK``). Positions are yielded at those ends only.
* while an XA transaction is prepared, every yielded position is held back to its start:
  resuming later than that would lose its rows (the replay after a restart is idempotent).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sync.errors import SourceError, UnsupportedEventError
from sync.model import Op, Position, RowChange, SourceTransaction
from sync.source import decode
from sync.source.decode import EPOCH
from sync.source.events import Heartbeat, Rotate, SchemaChange, StreamEvent

# MariaDB GTID event flags (sql/log_event.h).
FL_STANDALONE, FL_PREPARED_XA = 1, 64

Row = tuple[str, str, Op, Any, Any, Position]
"""A row change waiting for its commit: schema, table, op, before, after, where it was read.
In raw mode a transaction's rows also hold rows events left undecoded
(:data:`sync.source.lean.RawRows`)."""


@dataclass(frozen=True, slots=True)
class RawTransaction:
    """Raw mode: a committed transaction whose rows events may still be bytes; another
    process decodes them (:mod:`sync.source.split`). ``position`` as
    :attr:`SourceTransaction.end`; ``timestamp`` is the commit's, in epoch seconds."""

    rows: list[Any]
    position: Position
    timestamp: int


class GtidState(Protocol):
    def add(self, gtid: str) -> None: ...
    def text(self) -> str | None: ...


@dataclass(slots=True)
class Group:
    """The transaction being read: rows wait here until its commit event."""

    start: Position
    gtid: str | None
    in_tx: bool = False
    xid: str | None = None
    rows: list[Row] = field(default_factory=list)
    ddl: list[SchemaChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Parked:
    start: Position
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Query:
    """A query event's parts the transaction logic reads."""

    statement: decode.Statement
    current: str
    """The statement's current database."""
    log_pos: int
    timestamp: int
    text: str


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


class CommitTimes:
    """Commit timestamps as naive UTC datetimes: one datetime per second of commits, not
    one per transaction."""

    def __init__(self) -> None:
        self._stamp: tuple[int, datetime] = (-1, EPOCH)

    def __call__(self, timestamp: int) -> datetime:
        if self._stamp[0] != timestamp:
            self._stamp = (timestamp, _utc(timestamp))
        return self._stamp[1]


class Assembler:
    """Groups the events read into transactions; what is ready waits in :attr:`out`.

    The reader keeps :attr:`pos` at the end of the last event read (``file`` moves only at a
    rotation, here); ``done`` is set once a transaction reaches ``end``.
    """

    def __init__(
        self,
        start: Position,
        *,
        schemas: frozenset[str],
        end: Position | None,
        gtids: GtidState,
        progress_every: float,
        raw: bool = False,
    ) -> None:
        self.file = start.file
        self.pos = start.pos
        self.out: deque[StreamEvent | RawTransaction] = deque()
        self._raw = raw
        self.done = False
        self.group: Group | None = None
        self._schemas = schemas
        self._end = end
        self._gtids = gtids
        self._progress_every = progress_every
        self._boundary = replace(start, gtid=gtids.text())
        self._parked: dict[str, Parked] = {}
        self._last_yield = time.monotonic()
        self._utc = CommitTimes()

    @property
    def position(self) -> Position:
        """Where to resume to miss nothing: the last transaction end, held back to the start
        of any XA transaction still prepared."""
        return self._safe(self._boundary)

    def here(self) -> Position:
        return Position(self.file, self.pos)

    # --- opening and ending --------------------------------------------------------------

    def open(self, gtid: str | None) -> Group:
        if self.group is not None:
            raise SourceError(
                "a transaction began before the previous one ended",
                fix="report this binlog position: the reader does not know how the previous "
                "transaction ended",
                position=self.here(),
            )
        self.group = Group(start=self.position, gtid=gtid)
        return self.group

    def current(self, what: str) -> Group:
        if self.group is None:
            raise SourceError(
                f"{what} outside a transaction: the start position is inside a transaction",
                fix="start only at a position the reader yielded (a transaction end) or one "
                "from current_position()",
                position=self.here(),
            )
        return self.group

    def begin_mariadb(self, gtid: str, flags: int) -> None:
        group = self.open(gtid)
        group.in_tx = not flags & FL_STANDALONE
        if flags & FL_PREPARED_XA:
            group.xid = ""  # named by its XA END query

    def commit(self, log_pos: int, timestamp: int) -> None:
        """A commit (Xid) event."""
        self.finish(log_pos, timestamp, self.current("a commit (Xid)").rows)

    def xa_prepare(
        self, log_pos: int, timestamp: int, xid: tuple[int, bytes, bytes], one_phase: bool
    ) -> None:
        """An XA PREPARE event; ``xid`` is its format id, gtrid and bqual."""
        group = self.current("an XA PREPARE")
        if one_phase:
            self.finish(log_pos, timestamp, group.rows)
            return
        self._parked[decode.xid_key(*xid)] = Parked(group.start, group.rows)
        self.finish(log_pos, timestamp)

    def finish(self, log_pos: int, timestamp: int, rows: list[Row] | None = None) -> None:
        group, self.group = self.group, None
        if group is not None and group.gtid is not None:
            self._gtids.add(group.gtid)
        end = Position(self.file, log_pos, self._gtids.text())
        self._boundary = end
        safe = self._safe(end)
        commit_ts = self._utc(timestamp)
        for change in group.ddl if group else ():
            self.out.append(replace(change, position=safe, commit_ts=commit_ts))
        now = time.monotonic()
        if self._raw and (rows or now - self._last_yield >= self._progress_every):
            self.out.append(RawTransaction(rows or [], safe, timestamp))
            self._last_yield = now
        elif rows or now - self._last_yield >= self._progress_every:
            changes = tuple(
                RowChange(s, t, op, before, after, commit_ts, at)
                for s, t, op, before, after, at in rows or ()
            )
            self.out.append(SourceTransaction(changes, safe, commit_ts))
            self._last_yield = now
        if self._end is not None and end >= self._end:
            self.done = True

    def _safe(self, position: Position) -> Position:
        if not self._parked:
            return position
        return min([position, *(p.start for p in self._parked.values())])

    # --- control events ------------------------------------------------------------------

    def rotate(self, file: str, pos: int, timestamp: int) -> None:
        changed = file != self.file
        self.file, self.pos = file, pos
        if changed and self.group is None and timestamp:
            self._boundary = Position(self.file, self.pos, self._gtids.text())
            self.out.append(Rotate(self.position))

    def heartbeat(self, source: Position) -> None:
        self.out.append(Heartbeat(self.position, source))

    # --- query kinds ---------------------------------------------------------------------

    def query(self, q: Query) -> None:
        _QUERY_HANDLERS[q.statement.kind](self, q)

    def _q_begin(self, q: Query) -> None:
        group = self.group or self.open(None)
        group.in_tx = True
        if q.statement.kind is decode.Kind.XA_START:
            group.xid = q.statement.xid

    def _q_commit(self, q: Query) -> None:
        self.finish(q.log_pos, q.timestamp, self.current("a COMMIT").rows)

    def _q_rollback(self, q: Query) -> None:
        if self.current("a ROLLBACK").rows:
            # Only a transaction that also wrote a non-transactional table is binlogged with
            # ROLLBACK; which of its rows persisted cannot be told from the binlog.
            raise UnsupportedEventError(
                "a rolled-back transaction changed tracked tables (mixed transactional and "
                "non-transactional tables)",
                fix="convert the source's non-transactional (MyISAM/Aria) tables to InnoDB, "
                "then bootstrap again",
                position=self.here(),
            )
        self.finish(q.log_pos, q.timestamp)

    def _q_xa_end(self, q: Query) -> None:
        self.current("an XA END").xid = q.statement.xid

    def _q_xa_commit(self, q: Query) -> None:
        group = self.group or self.open(None)
        parked = self._parked.pop(q.statement.xid or "", None)
        if parked is None:
            raise SourceError(
                "XA COMMIT of a transaction prepared before the start position",
                fix="its rows are not in the stream read: bootstrap again at a moment when "
                "`XA RECOVER` on the source lists nothing",
                position=self.here(),
            )
        group.rows = parked.rows
        self.finish(q.log_pos, q.timestamp, group.rows)

    def _q_xa_rollback(self, q: Query) -> None:
        self.group = self.group or self.open(None)
        self._parked.pop(q.statement.xid or "", None)
        self.finish(q.log_pos, q.timestamp)

    def _q_ddl(self, q: Query) -> None:
        st = q.statement
        group = self.group or self.open(None)
        touched = [s for s, _ in st.tables if s in self._schemas]
        touched += [s for s in st.schemas if s in self._schemas]
        if touched:
            group.ddl.append(
                SchemaChange(
                    position=self.here(),
                    schema=touched[0],
                    tables=st.tables,
                    statement_kind=st.label,
                    commit_ts=_utc(q.timestamp),
                    whole_schema=bool(st.schemas),
                    statement=q.text,
                )
            )
        if not group.in_tx:
            self.finish(q.log_pos, q.timestamp)

    def _q_dml(self, q: Query) -> None:
        st = q.statement
        if q.current in self._schemas or any(s in self._schemas for s, _ in st.tables):
            raise UnsupportedEventError(
                f"a statement-based {st.label} in the binlog may change tracked tables",
                fix="set binlog_format=ROW globally and in every session on the source, "
                "then bootstrap again",
                table=".".join(st.tables[0]) if st.tables else None,
                position=self.here(),
            )
        self._q_other(q)

    def _q_other(self, q: Query) -> None:
        group = self.group or self.open(None)
        if not group.in_tx:
            self.finish(q.log_pos, q.timestamp)


_QUERY_HANDLERS: Mapping[decode.Kind, Callable[[Assembler, Query], None]] = {
    decode.Kind.BEGIN: Assembler._q_begin,
    decode.Kind.XA_START: Assembler._q_begin,
    decode.Kind.COMMIT: Assembler._q_commit,
    decode.Kind.ROLLBACK: Assembler._q_rollback,
    decode.Kind.XA_END: Assembler._q_xa_end,
    decode.Kind.XA_COMMIT: Assembler._q_xa_commit,
    decode.Kind.XA_ROLLBACK: Assembler._q_xa_rollback,
    decode.Kind.DDL: Assembler._q_ddl,
    decode.Kind.DML: Assembler._q_dml,
    decode.Kind.OTHER: Assembler._q_other,
}
