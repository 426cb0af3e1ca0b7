"""The binlog reader: whole committed source transactions, in order, from an explicit start.

This is the one module that imports ``pymysqlreplication``. It turns the library's events
into ours (:mod:`sync.source.events`) with a table of handlers, one per library event class:

* a transaction opens at a GTID event (MariaDB's flags say whether it is standalone), a
  ``BEGIN`` or ``XA START``, and ends at an ``XidEvent``, a ``COMMIT`` query (Aria/MyISAM),
  a standalone statement (DDL commits implicitly) or an XA PREPARE (its rows are parked until
  ``XA COMMIT`` and dropped on ``XA ROLLBACK``). Positions are yielded at those ends only.
* while an XA transaction is prepared, every yielded position is held back to its start:
  resuming later than that would lose its rows (the replay after a restart is idempotent).
* row values are decoded as PyMySQL's ``SELECT`` returns them (:mod:`sync.source.decode`);
  partial images, missing column names, compressed or unknown events halt with an error.
* the library never reconnects by itself: a lost or silent connection raises
  :class:`SourceConnectionLostError` and the pipeline reopens the reader at its checkpoint.

Run here against MariaDB 10.11 (file/position and MariaDB GTID starts, TLS). The MySQL GTID
auto-position and MySQL GTID-set tracking paths follow the library's protocol but were not
run: no MySQL or Aurora server is available here.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pymysql
from pymysql.protocol import MysqlPacket
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent as MysqlGtidEvent
from pymysqlreplication.event import (
    HeartbeatLogEvent,
    MariadbGtidEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.gtid import Gtid, GtidSet
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from sync.db import LOST_CONNECTION_CODES, connect, connect_error, connection_kwargs, error_code
from sync.errors import (
    BinlogPurgedError,
    PartialRowImageError,
    ServerIdConflictError,
    SourceConnectionLostError,
    SourceError,
    UnsupportedEventError,
)
from sync.model import Op, Position, RowChange, SourceTransaction
from sync.settings import Endpoint, Settings
from sync.source import decode, rows
from sync.source.decode import EPOCH
from sync.source.events import Heartbeat, Rotate, SchemaChange, StreamEvent, TableName
from sync.source.position import (
    format_mariadb_gtids,
    is_mariadb,
    mariadb_gtid_pos,
    parse_mariadb_gtids,
)

# MariaDB GTID event flags (sql/log_event.h).
FL_STANDALONE, FL_PREPARED_XA = 1, 64
# Server errors that end a dump thread: killed, shutting down.
_KILLED_CODES = frozenset({1927, 1053})
_ACCESS_CODES = frozenset({1044, 1045, 1698, 2003})
# Event types the library does not parse, by what they mean for us.
_ANONYMOUS_GTID, _HEARTBEAT_V2 = 0x22, 0x29
_IGNORABLE_TYPES = frozenset({0x1C, 0x24, 0x25})  # ignorable, transaction context, view change
_COMPRESSED_ROWS_TYPES = frozenset({0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB})
_ROW_READERS = ("date", "datetime", "datetime2", "time2", "bit")


class _StreamLost(Exception):  # noqa: N818 - private signal, converted at once
    """The replication socket closed or timed out (raised past the library's own reconnect)."""


if TYPE_CHECKING:
    _Connection = pymysql.connections.Connection[Any]
else:  # PyMySQL's class is generic only in its type stubs
    _Connection = pymysql.connections.Connection


class _ReplicationConnection(_Connection):
    """A PyMySQL connection whose lost-connection errors the library cannot swallow.

    ``BinLogStreamReader.fetchone`` catches errors 2006/2013 and silently reconnects from its
    in-memory position, which can be ahead of what the targets committed. Raising a
    non-PyMySQL exception here skips that branch.
    """

    pending: Any = None
    """A packet the reader looked at and hands to the library: returned by the next read."""

    def __init__(self, *args: Any, db: str | None = None, **kwargs: Any) -> None:
        # The library names the control connection's database with PyMySQL's deprecated
        # ``db`` keyword, which warns on every connect.
        if db is not None:
            kwargs.setdefault("database", db)
        super().__init__(*args, **kwargs)

    def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
        if self.pending is not None:
            packet, self.pending = self.pending, None
            return packet
        try:
            return super()._read_packet(packet_type)  # type: ignore[no-untyped-call]
        except pymysql.err.OperationalError as exc:
            if error_code(exc) in LOST_CONNECTION_CODES:
                raise _StreamLost(str(exc.args[1]) if len(exc.args) > 1 else str(exc)) from exc
            raise


class _GtidState(Protocol):
    def add(self, gtid: str) -> None: ...
    def text(self) -> str | None: ...


class _MariadbGtids:
    def __init__(self, state: str | None) -> None:
        self._domains = parse_mariadb_gtids(state)

    def add(self, gtid: str) -> None:
        self._domains[int(gtid.split("-", 1)[0])] = gtid

    def text(self) -> str | None:
        return format_mariadb_gtids(self._domains) or None


class _MysqlGtids:
    """MySQL GTID sets, merged with the library's GtidSet (not run: no MySQL here)."""

    def __init__(self, state: str | None) -> None:
        self._known = state is not None
        self._set = GtidSet(state or None)

    def add(self, gtid: str) -> None:
        self._set = self._set + Gtid(gtid)

    def text(self) -> str | None:
        return str(self._set) if self._known else None


@dataclass(frozen=True, slots=True)
class _Table:
    schema: str
    table: str
    columns: frozenset[str]
    fixers: tuple[tuple[str, decode.Fixer], ...]
    source: Any
    """The library's table map this was built from (row events are read against it)."""
    reader: rows.TableReader | None


@dataclass(slots=True)
class _Group:
    """The transaction being read: rows wait here until its commit event."""

    start: Position
    gtid: str | None
    in_tx: bool = False
    xid: str | None = None
    rows: list[tuple[str, str, Op, Any, Any, Position]] = field(default_factory=list)
    ddl: list[SchemaChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Parked:
    start: Position
    rows: list[tuple[str, str, Op, Any, Any, Position]]


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


class BinlogReader(Iterator[StreamEvent]):
    """Iterator of :class:`SourceTransaction`, :class:`SchemaChange`, :class:`Heartbeat` and
    :class:`Rotate`; finite when made with ``blocking=False`` or an ``end``. Close it."""

    def __init__(
        self,
        stream: Any,
        *,
        endpoint: Endpoint,
        start: Position,
        schemas: frozenset[str],
        tables: frozenset[TableName] | None,
        end: Position | None,
        gtids: _GtidState,
        progress_every: float,
        lean: bool = True,
    ) -> None:
        self._stream = stream
        self._endpoint = endpoint
        self._schemas = schemas
        self._tables = tables
        self._end = end
        self._gtids = gtids
        self._progress_every = progress_every
        self._file = start.file
        self._pos = start.pos
        self._boundary = replace(start, gtid=gtids.text())
        self._group: _Group | None = None
        self._parked: dict[str, _Parked] = {}
        self._infos: dict[int, _Table] = {}
        self._out: deque[StreamEvent] = deque()
        self._done = False
        self._last_yield = time.monotonic()
        self._lean = lean
        self._stamp: tuple[int, datetime] = (-1, EPOCH)

    @property
    def position(self) -> Position:
        """Where to resume to miss nothing: the last transaction end, held back to the start
        of any XA transaction still prepared."""
        return self._safe(self._boundary)

    def __iter__(self) -> BinlogReader:
        return self

    def __next__(self) -> StreamEvent:
        while not self._out:
            if self._done:
                self.close()
                raise StopIteration
            event = self._fetch()
            if event is _READ:
                continue
            if event is None:
                self._done = True
                continue
            _HANDLERS.get(type(event), BinlogReader._ignore)(self, event)
            log_pos = event.packet.log_pos
            if log_pos and not isinstance(event, RotateEvent | HeartbeatLogEvent):
                self._pos = log_pos
        return self._out.popleft()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> BinlogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading and errors ---------------------------------------------------------------

    def _fetch(self) -> Any:
        """The library's next event, or ``_READ`` when the lean path took the packet."""
        try:
            connection = self._lean_connection()
            if connection is not None and self._lean_step(connection):
                return _READ
            return self._stream.fetchone()
        except _StreamLost as exc:
            self.close()
            raise SourceConnectionLostError(
                f"the binlog connection to {self._endpoint.host}:{self._endpoint.port} was "
                f"lost or went silent ({exc})",
                fix="nothing to do if it passes: the pipeline reopens the stream at its "
                "committed checkpoint; if it repeats, check the network and the source, and "
                "that AURORA_SYNC_READ_TIMEOUT exceeds twice the replication heartbeat",
                position=self.position,
            ) from None
        except pymysql.err.MySQLError as exc:
            self.close()
            raise self._server_error(exc) from None

    def _server_error(self, exc: pymysql.err.MySQLError) -> Exception:
        code = error_code(exc)
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        lowered = message.lower()
        if code in _ACCESS_CODES:
            return connect_error(self._endpoint, exc)
        if code == 4052 or "same server_uuid/server_id" in lowered:
            return ServerIdConflictError(
                f"another replica connected to the source with our server id: {message}",
                fix="give every aurora-sync pipeline and every replica of the source its own "
                "AURORA_SYNC_SERVER_ID (1..4294967295)",
                position=self.position,
            )
        if code == 1236 and ("purged" in lowered or "could not find first log" in lowered):
            return BinlogPurgedError(
                f"the source no longer has the binlog to resume from: {message}",
                fix="the changes since the checkpoint are gone: run `aurora-sync bootstrap` "
                "to copy the tables again from a new position, and keep binlogs longer "
                "(expire_logs_days / binlog_expire_logs_seconds, or on Aurora "
                "mysql.rds_set_configuration('binlog retention hours', N))",
                position=self.position,
            )
        if code in _KILLED_CODES:
            return SourceConnectionLostError(
                f"the source ended the binlog connection: {message}",
                fix="the pipeline reopens the stream at its committed checkpoint",
                position=self.position,
            )
        return SourceError(
            f"the source refused to send the binlog (error {code}): {message}",
            fix="check the position and the replication privileges "
            "(REPLICATION SLAVE, REPLICATION CLIENT / BINLOG MONITOR)",
            position=self.position,
        )

    # --- the lean path: the events of a row backlog read without the library ----------

    def _lean_connection(self) -> _ReplicationConnection | None:
        # Only once the library has connected (and read the format description): it owns
        # connecting, the handshake and every event kind not read here.
        stream = self._stream
        if not self._lean or not getattr(stream, "_BinLogStreamReader__connected_stream", False):
            return None
        connection = stream._stream_connection
        return connection if isinstance(connection, _ReplicationConnection) else None

    def _lean_step(self, connection: _ReplicationConnection) -> bool:
        """Read one packet; True when it was handled here, else it goes to the library."""
        packet = connection._read_packet()
        data: bytes = packet._data
        handler = _LEAN.get(data[5]) if len(data) > _HEADER.size and data[0] == 0 else None
        if handler is not None:
            header = _HEADER.unpack_from(data)
            if handler(self, data, header):
                self._stream.log_pos = header[4]
                return True
        connection.pending = packet
        return False

    def _lean_gtid(self, data: bytes, header: tuple[int, ...]) -> bool:
        seq_no, domain, flags = _MARIADB_GTID.unpack_from(data, _HEADER.size)
        self._begin_mariadb(f"{domain}-{header[2]}-{seq_no}", flags)
        self._pos = header[4]
        return True

    def _lean_xid(self, data: bytes, header: tuple[int, ...]) -> bool:
        group = self._current("a commit (Xid)")
        self._group = None
        self._finish_at(header[4], header[0], group, group.rows)
        self._pos = header[4]
        return True

    def _lean_table_map(self, data: bytes, header: tuple[int, ...]) -> bool:
        # A table id already mapped is skipped by the library too (freeze_schema).
        return _table_id(data) in self._stream.table_map

    def _lean_rows(self, data: bytes, header: tuple[int, ...]) -> bool:
        source = self._stream.table_map.get(_table_id(data))
        if source is None:
            return True  # an untracked table: the library skips its rows likewise
        if source.schema not in self._schemas or (
            self._tables and (source.schema, source.table) not in self._tables
        ):
            self._pos = header[4]
            return True
        group = self._current(f"a row change on {source.schema}.{source.table}")
        info = self._table(_table_id(data), source)
        images = self._lean_images(data, header, info)
        if images is None:
            return False
        at, op = self._here(), _LEAN_OPS[header[1]]
        add = group.rows.append
        if op is Op.UPDATE:
            for index in range(0, len(images), 2):
                add((info.schema, info.table, op, images[index], images[index + 1], at))
        elif op is Op.INSERT:
            for image in images:
                add((info.schema, info.table, op, None, image, at))
        else:
            for image in images:
                add((info.schema, info.table, op, image, None, at))
        self._pos = header[4]
        return True

    def _lean_images(
        self, data: bytes, header: tuple[int, ...], info: _Table
    ) -> list[rows.Image] | None:
        kind = header[1]
        lengths = getattr(self._stream, "_BinLogStreamReader__post_header_lengths", None)
        version_2 = kind in _ROWS_V2
        expected = 10 if version_2 else 8
        declared = lengths[kind - 1] if lengths and len(lengths) >= kind else None
        if info.reader is None or declared != expected:
            return None
        pos = _HEADER.size + expected
        if version_2:
            pos += int.from_bytes(data[pos - 2 : pos], "little") - 2
        columns = data[pos]
        if columns >= 251 or columns != len(info.columns):  # a longer count: the library
            return None
        checksum = getattr(self._stream, "_BinLogStreamReader__use_checksum", True)
        end = len(data) - (4 if checksum else 0)
        return info.reader.rows(data, pos + 1, end, kind in _UPDATE_KINDS)

    def _utc(self, timestamp: int) -> datetime:
        # One datetime per second of commits, not per transaction.
        if self._stamp[0] != timestamp:
            self._stamp = (timestamp, _utc(timestamp))
        return self._stamp[1]

    # --- transactions --------------------------------------------------------------------

    def _here(self) -> Position:
        return Position(self._file, self._pos)

    def _open(self, gtid: str | None) -> _Group:
        if self._group is not None:
            raise SourceError(
                "a transaction began before the previous one ended",
                fix="report this binlog position: the reader does not know how the previous "
                "transaction ended",
                position=self._here(),
            )
        self._group = _Group(start=self.position, gtid=gtid)
        return self._group

    def _current(self, what: str) -> _Group:
        if self._group is None:
            raise SourceError(
                f"{what} outside a transaction: the start position is inside a transaction",
                fix="start only at a position the reader yielded (a transaction end) or one "
                "from current_position()",
                position=self._here(),
            )
        return self._group

    def _safe(self, position: Position) -> Position:
        if not self._parked:
            return position
        return min([position, *(p.start for p in self._parked.values())])

    def _finish(
        self, event: Any, rows: list[tuple[str, str, Op, Any, Any, Position]] | None = None
    ) -> None:
        group, self._group = self._group, None
        self._finish_at(event.packet.log_pos, event.timestamp, group, rows)

    def _finish_at(
        self,
        log_pos: int,
        timestamp: int,
        group: _Group | None,
        rows: list[tuple[str, str, Op, Any, Any, Position]] | None,
    ) -> None:
        if group is not None and group.gtid is not None:
            self._gtids.add(group.gtid)
        end = Position(self._file, log_pos, self._gtids.text())
        self._boundary = end
        safe = self._safe(end)
        commit_ts = self._utc(timestamp)
        for change in group.ddl if group else ():
            self._out.append(replace(change, position=safe, commit_ts=commit_ts))
        now = time.monotonic()
        if rows or now - self._last_yield >= self._progress_every:
            changes = tuple(
                RowChange(s, t, op, before, after, commit_ts, at)
                for s, t, op, before, after, at in rows or ()
            )
            self._out.append(SourceTransaction(changes, safe, commit_ts))
            self._last_yield = now
        if self._end is not None and end >= self._end:
            self._done = True

    # --- handlers, one per library event class -------------------------------------------

    def _ignore(self, event: Any) -> None:
        pass

    def _on_mariadb_gtid(self, event: Any) -> None:
        self._begin_mariadb(event.gtid, event.flags)

    def _begin_mariadb(self, gtid: str, flags: int) -> None:
        group = self._open(gtid)
        group.in_tx = not flags & FL_STANDALONE
        if flags & FL_PREPARED_XA:
            group.xid = ""  # named by its XA END query

    def _on_mysql_gtid(self, event: Any) -> None:
        self._open(event.gtid)

    def _on_xid(self, event: Any) -> None:
        self._finish(event, self._current("a commit (Xid)").rows)

    def _on_xa_prepare(self, event: Any) -> None:
        group = self._current("an XA PREPARE")
        if event.one_phase:
            self._finish(event, group.rows)
            return
        key = decode.xid_key(event.xid_format_id, event.xid_gtrid, event.xid_bqual)
        self._parked[key] = _Parked(group.start, group.rows)
        self._finish(event)

    def _on_rotate(self, event: Any) -> None:
        changed = event.next_binlog != self._file
        self._file, self._pos = event.next_binlog, event.position
        self._forget_tables()
        if changed and self._group is None and event.timestamp:
            self._boundary = Position(self._file, self._pos, self._gtids.text())
            self._out.append(Rotate(self.position))

    def _on_heartbeat(self, event: Any) -> None:
        source = Position(str(event.ident), event.packet.log_pos)
        self._out.append(Heartbeat(self.position, source))

    def _on_not_implemented(self, event: Any) -> None:
        kind = event.event_type
        if kind == _ANONYMOUS_GTID:
            self._open(None)
        elif kind == _HEARTBEAT_V2:
            self._out.append(Heartbeat(self.position, Position(self._file, event.packet.log_pos)))
        elif kind in _COMPRESSED_ROWS_TYPES and not self._compressed_rows_tracked(event):
            return
        elif kind not in _IGNORABLE_TYPES:
            raise UnsupportedEventError(
                f"binlog event type {kind:#04x} cannot be read (compressed, incident or unknown)",
                fix="turn off binlog compression (MariaDB log_bin_compress, MySQL "
                "binlog_transaction_compression) and run `aurora-sync check`; an incident "
                "event means the source lost changes: bootstrap again",
                position=self._here(),
            )

    def _compressed_rows_tracked(self, event: Any) -> bool:
        # The table id follows the 19-byte header (after the packet's OK byte); an unknown id
        # may be a tracked table whose map was compressed too, so it counts as tracked.
        raw = bytes(event.packet.packet._data[20:26])
        table = self._stream.table_map.get(int.from_bytes(raw, "little"))
        return table is None or table.schema in self._schemas

    def _on_query(self, event: Any) -> None:
        current = event.schema.decode() if isinstance(event.schema, bytes) else event.schema
        statement = decode.classify(event.query, current)
        _QUERY_HANDLERS[statement.kind](self, event, statement, current)

    # --- query kinds ---------------------------------------------------------------------

    def _q_begin(self, event: Any, st: decode.Statement, current: str) -> None:
        group = self._group or self._open(None)
        group.in_tx = True
        if st.kind is decode.Kind.XA_START:
            group.xid = st.xid

    def _q_commit(self, event: Any, st: decode.Statement, current: str) -> None:
        self._finish(event, self._current("a COMMIT").rows)

    def _q_rollback(self, event: Any, st: decode.Statement, current: str) -> None:
        if self._current("a ROLLBACK").rows:
            # Only a transaction that also wrote a non-transactional table is binlogged with
            # ROLLBACK; which of its rows persisted cannot be told from the binlog.
            raise UnsupportedEventError(
                "a rolled-back transaction changed tracked tables (mixed transactional and "
                "non-transactional tables)",
                fix="convert the source's non-transactional (MyISAM/Aria) tables to InnoDB, "
                "then bootstrap again",
                position=self._here(),
            )
        self._finish(event)

    def _q_xa_end(self, event: Any, st: decode.Statement, current: str) -> None:
        self._current("an XA END").xid = st.xid

    def _q_xa_commit(self, event: Any, st: decode.Statement, current: str) -> None:
        group = self._group or self._open(None)
        parked = self._parked.pop(st.xid or "", None)
        if parked is None:
            raise SourceError(
                "XA COMMIT of a transaction prepared before the start position",
                fix="its rows are not in the stream read: bootstrap again at a moment when "
                "`XA RECOVER` on the source lists nothing",
                position=self._here(),
            )
        group.rows = parked.rows
        self._finish(event, group.rows)

    def _q_xa_rollback(self, event: Any, st: decode.Statement, current: str) -> None:
        self._group = self._group or self._open(None)
        self._parked.pop(st.xid or "", None)
        self._finish(event)

    def _q_ddl(self, event: Any, st: decode.Statement, current: str) -> None:
        self._forget_tables()
        group = self._group or self._open(None)
        touched = [s for s, _ in st.tables if s in self._schemas]
        touched += [s for s in st.schemas if s in self._schemas]
        if touched:
            group.ddl.append(
                SchemaChange(
                    position=self._here(),
                    schema=touched[0],
                    tables=st.tables,
                    statement_kind=st.label,
                    commit_ts=_utc(event.timestamp),
                    whole_schema=bool(st.schemas),
                    statement=event.query,
                )
            )
        if not group.in_tx:
            self._finish(event)

    def _q_dml(self, event: Any, st: decode.Statement, current: str) -> None:
        if current in self._schemas or any(s in self._schemas for s, _ in st.tables):
            raise UnsupportedEventError(
                f"a statement-based {st.label} in the binlog may change tracked tables",
                fix="set binlog_format=ROW globally and in every session on the source, "
                "then bootstrap again",
                table=".".join(st.tables[0]) if st.tables else None,
                position=self._here(),
            )
        self._q_other(event, st, current)

    def _q_other(self, event: Any, st: decode.Statement, current: str) -> None:
        group = self._group or self._open(None)
        if not group.in_tx:
            self._finish(event)

    # --- rows ----------------------------------------------------------------------------

    def _on_rows(self, event: Any) -> None:
        key = (event.schema, event.table)
        if event.schema not in self._schemas or (self._tables and key not in self._tables):
            return
        group = self._current(f"a row change on {event.schema}.{event.table}")
        info = self._table(event.table_id, self._stream.table_map.get(event.table_id))
        self._check_images(event, info)
        _install_readers(event)
        at, op = self._here(), _ROW_OPS[type(event)]
        for row in event.rows:
            before, after = _IMAGES[op](row, info.fixers)
            group.rows.append((info.schema, info.table, op, before, after, at))

    def _on_partial_update(self, event: Any) -> None:
        if event.schema in self._schemas:
            raise UnsupportedEventError(
                f"a partial JSON update of {event.schema}.{event.table} "
                "(binlog_row_value_options=PARTIAL_JSON) has no full after image",
                fix="SET GLOBAL binlog_row_value_options='' on the source, then bootstrap again",
                table=f"{event.schema}.{event.table}",
                position=self._here(),
            )

    def _table(self, table_id: int, source: Any) -> _Table:
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
            specs = tuple(_column_spec(column) for column in source.columns)
            reader = rows.compile_table(source.columns) if self._lean else None
            info = _Table(source.schema, source.table, frozenset(names),
                          decode.row_fixers(specs), source, reader)
            self._infos[table_id] = info
        return info

    def _check_images(self, event: Any, info: _Table) -> None:
        full = (1 << len(info.columns)) - 1
        bitmaps = [event.columns_present_bitmap]
        if isinstance(event, UpdateRowsEvent):
            bitmaps.append(event.columns_present_bitmap2)
        for bitmap in bitmaps:
            if int.from_bytes(bitmap, "little") & full != full:
                raise PartialRowImageError(
                    f"the binlog has a partial row image of {info.schema}.{info.table} "
                    "(a session with binlog_row_image MINIMAL or NOBLOB)",
                    fix="SET GLOBAL binlog_row_image=FULL and make sure no session or "
                    "application overrides it, then bootstrap again",
                    table=f"{info.schema}.{info.table}",
                    position=self._here(),
                )

    def _forget_tables(self) -> None:
        # Table ids are reassigned after DDL, FLUSH TABLES and restarts (a restart always
        # starts a new binlog file): forget both our table cache and the library's.
        self._infos.clear()
        self._stream.table_map = {}


def _column_spec(column: Any) -> decode.ColumnSpec:
    return decode.ColumnSpec(
        name=column.name,
        type_code=column.type,
        fsp=getattr(column, "fsp", 0) or 0,
        set_values=tuple(column.set_values or ()),
        binary=column.character_set_name == "binary",
        length=getattr(column, "max_length", 0) or 0,
    )


def _install_readers(event: Any) -> None:
    """Replace the library's readers of the types it gets wrong, on this event only.

    The library decodes lazily from ``event.packet`` when ``rows`` is first read and looks
    its private readers up on the instance, so instance attributes take their place
    without touching the library's classes.
    """
    read = event.packet.read
    event._RowsEvent__read_date = lambda: decode.date_value(read(3))
    event._RowsEvent__read_datetime = lambda: decode.datetime_value(read(8))
    event._RowsEvent__read_datetime2 = lambda c: decode.datetime2_value(
        read(5 + decode.fsp_bytes(c.fsp)), c.fsp
    )
    event._RowsEvent__read_time2 = lambda c: decode.time2_value(
        read(3 + decode.fsp_bytes(c.fsp)), c.fsp
    )
    event._RowsEvent__read_bit = lambda c: decode.bit_value(read(c.bytes))


def _check_library() -> None:
    from pymysqlreplication.row_event import RowsEvent  # noqa: PLC0415

    missing = [name for name in _ROW_READERS if not hasattr(RowsEvent, f"_RowsEvent__read_{name}")]
    if missing:
        raise SourceError(
            f"this mysql-replication version lacks the readers aurora-sync replaces: {missing}",
            fix="install the mysql-replication version pinned in pyproject.toml (1.0.x)",
        )


def _table_id(data: bytes) -> int:
    return int.from_bytes(data[_HEADER.size : _HEADER.size + 6], "little")


_Fixers = tuple[tuple[str, decode.Fixer], ...]
_ROW_OPS: Mapping[type, Op] = {
    WriteRowsEvent: Op.INSERT,
    UpdateRowsEvent: Op.UPDATE,
    DeleteRowsEvent: Op.DELETE,
}
_IMAGES: Mapping[Op, Callable[[Any, _Fixers], tuple[Any, Any]]] = {
    Op.INSERT: lambda r, f: (None, decode.fix_row(r["values"], r["none_sources"], f)),
    Op.DELETE: lambda r, f: (decode.fix_row(r["values"], r["none_sources"], f), None),
    Op.UPDATE: lambda r, f: (
        decode.fix_row(r["before_values"], r["before_none_sources"], f),
        decode.fix_row(r["after_values"], r["after_none_sources"], f),
    ),
}
_HANDLERS: Mapping[type, Callable[[BinlogReader, Any], None]] = {
    MariadbGtidEvent: BinlogReader._on_mariadb_gtid,
    MysqlGtidEvent: BinlogReader._on_mysql_gtid,
    QueryEvent: BinlogReader._on_query,
    XidEvent: BinlogReader._on_xid,
    XAPrepareEvent: BinlogReader._on_xa_prepare,
    RotateEvent: BinlogReader._on_rotate,
    HeartbeatLogEvent: BinlogReader._on_heartbeat,
    NotImplementedEvent: BinlogReader._on_not_implemented,
    WriteRowsEvent: BinlogReader._on_rows,
    UpdateRowsEvent: BinlogReader._on_rows,
    DeleteRowsEvent: BinlogReader._on_rows,
    PartialUpdateRowsEvent: BinlogReader._on_partial_update,
}
# The events of a backlog of row changes, read without the library's event objects.
_HEADER = struct.Struct("<xIBIIIH")  # OK byte; timestamp, type, server id, size, log_pos, flags
_MARIADB_GTID = struct.Struct("<QIB")  # sequence number, domain, flags
_ROWS_V1, _ROWS_V2 = (0x17, 0x18, 0x19), (0x1E, 0x1F, 0x20)  # write, update, delete
_UPDATE_KINDS = frozenset({0x18, 0x1F})
_LEAN_OPS: Mapping[int, Op] = {
    kind: op
    for kinds in (_ROWS_V1, _ROWS_V2)
    for kind, op in zip(kinds, (Op.INSERT, Op.UPDATE, Op.DELETE), strict=True)
}
_LEAN: Mapping[int, Callable[[BinlogReader, bytes, tuple[int, ...]], bool]] = {
    0xA2: BinlogReader._lean_gtid,  # MariaDB GTID
    0x10: BinlogReader._lean_xid,
    0x13: BinlogReader._lean_table_map,
    **dict.fromkeys(_ROWS_V1 + _ROWS_V2, BinlogReader._lean_rows),
}
_READ = object()  # _fetch: the lean path handled the packet
_QUERY_HANDLERS: Mapping[
    decode.Kind, Callable[[BinlogReader, Any, decode.Statement, str], None]
] = {
    decode.Kind.BEGIN: BinlogReader._q_begin,
    decode.Kind.XA_START: BinlogReader._q_begin,
    decode.Kind.COMMIT: BinlogReader._q_commit,
    decode.Kind.ROLLBACK: BinlogReader._q_rollback,
    decode.Kind.XA_END: BinlogReader._q_xa_end,
    decode.Kind.XA_COMMIT: BinlogReader._q_xa_commit,
    decode.Kind.XA_ROLLBACK: BinlogReader._q_xa_rollback,
    decode.Kind.DDL: BinlogReader._q_ddl,
    decode.Kind.DML: BinlogReader._q_dml,
    decode.Kind.OTHER: BinlogReader._q_other,
}


def open_binlog(
    settings: Settings,
    start: Position,
    *,
    schemas: Collection[str],
    tables: Collection[TableName] | None = None,
    blocking: bool = True,
    end: Position | None = None,
    auto_position: bool = False,
    progress_every: float = 1.0,
    lean: bool = True,
) -> BinlogReader:
    """Open the source's binlog at ``start`` (never "wherever the source is now").

    ``schemas`` are read (aurora, generic routes, the heartbeat schema); ``tables`` narrows
    row changes to ``(schema, table)`` pairs. ``auto_position`` starts from ``start.gtid``
    (MariaDB GTID list or MySQL GTID set) instead of file and position. ``blocking=False``
    ends at the source's current end, ``end`` after the transaction that reaches it. A
    transaction without tracked rows is yielded empty at most every ``progress_every``
    seconds, so the checkpoint follows the source while aurora is idle. ``lean=False``
    reads every event through the library's event classes (slower; the same values).
    """
    _check_library()
    # The library logs its settings, password included, at INFO when logging is enabled.
    logging.getLogger("pymysqlreplication").setLevel(logging.WARNING)
    endpoint = settings.source
    if auto_position and not start.gtid:
        raise SourceError(
            "auto_position needs a start position with a GTID set",
            fix="pass the checkpoint's GTID state, or start from its file and position",
            position=start,
        )
    probe = connect(endpoint, read_timeout=settings.read_timeout)
    try:
        mariadb = is_mariadb(probe)
        gtid = start.gtid
        if mariadb and gtid is None:
            gtid = mariadb_gtid_pos(probe, start)
    finally:
        probe.close()
    gtids: _GtidState = _MariadbGtids(gtid) if mariadb else _MysqlGtids(gtid)
    kwargs = connection_kwargs(endpoint)
    kwargs.update(read_timeout=settings.read_timeout, write_timeout=settings.read_timeout)
    stream = BinLogStreamReader(
        connection_settings=kwargs,
        ctl_connection_settings=dict(kwargs),  # the same verifying SSLContext for both
        server_id=settings.server_id,
        resume_stream=True,
        blocking=blocking,
        log_file=None if auto_position else start.file,
        log_pos=None if auto_position else start.pos,
        auto_position=start.gtid if auto_position else None,
        is_mariadb=mariadb and auto_position,  # is_mariadb without GTID ignores file/pos
        only_schemas=sorted(schemas),
        filter_non_implemented_events=False,
        freeze_schema=True,  # a table map is parsed once per table id; see _forget_tables
        slave_heartbeat=min(settings.replication_heartbeat, settings.read_timeout / 2),
        report_slave="aurora-sync",
        enable_logging=False,
        ignore_decode_errors=False,
        pymysql_wrapper=_ReplicationConnection,
    )
    return BinlogReader(
        stream,
        endpoint=endpoint,
        start=start,
        schemas=frozenset(schemas),
        tables=frozenset(tables) if tables is not None else None,
        end=end,
        gtids=gtids,
        progress_every=progress_every,
        lean=lean,
    )
