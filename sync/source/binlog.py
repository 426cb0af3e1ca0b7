"""The binlog reader: whole committed source transactions, in order, from an explicit start.

This is the one module that imports ``pymysqlreplication``. It turns the library's events
into ours (:mod:`sync.source.events`) with a table of handlers, one per library event class,
and leaves the rest to focused modules:

* :mod:`sync.source.transactions` groups events into transactions and decides the positions
  yielded (transaction ends only, held back while an XA transaction is prepared);
* :mod:`sync.source.lean` reads the packets of a row backlog without the library's event
  objects (:mod:`sync.source.rows` decodes their rows); :mod:`sync.source.tables` keeps the
  table maps both paths read against;
* row values are decoded as PyMySQL's ``SELECT`` returns them (:mod:`sync.source.decode`);
  partial images, missing column names, compressed or unknown events halt with an error.
* the library never reconnects by itself: a lost or silent connection raises
  :class:`SourceConnectionLostError` and the pipeline reopens the reader at its checkpoint
  (:mod:`sync.source.connection`).

Run here against MariaDB 10.11 (file/position and MariaDB GTID starts, TLS). The MySQL GTID
auto-position and MySQL GTID-set tracking paths follow the library's protocol but were not
run: no MySQL or Aurora server is available here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import pymysql
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

from sync.db import connect, connection_kwargs
from sync.errors import PartialRowImageError, SourceError, UnsupportedEventError
from sync.model import Op, Position
from sync.settings import Endpoint, Settings
from sync.source import decode
from sync.source.connection import ReplicationConnection, StreamLost, lost_error, server_error
from sync.source.events import StreamEvent, TableName
from sync.source.lean import LeanPath
from sync.source.position import (
    format_mariadb_gtids,
    is_mariadb,
    mariadb_gtid_pos,
    parse_mariadb_gtids,
)
from sync.source.tables import Table, TableCache
from sync.source.transactions import Assembler, GtidState, Query, RawTransaction

# Event types the library does not parse, by what they mean for us.
_ANONYMOUS_GTID, _HEARTBEAT_V2 = 0x22, 0x29
_IGNORABLE_TYPES = frozenset({0x1C, 0x24, 0x25})  # ignorable, transaction context, view change
_COMPRESSED_ROWS_TYPES = frozenset({0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB})
_ROW_READERS = ("date", "datetime", "datetime2", "time2", "bit", "string")


class _MariadbGtids:
    def __init__(self, state: str | None) -> None:
        self._domains = parse_mariadb_gtids(state)

    def add(self, gtid: str) -> None:
        self._domains[int(gtid.split("-", 1)[0])] = gtid

    def text(self) -> str | None:
        domains = self._domains
        if len(domains) == 1:  # the common case, once per transaction
            for gtid in domains.values():
                return gtid or None
        return format_mariadb_gtids(domains) or None


class _MysqlGtids:
    """MySQL GTID sets, merged with the library's GtidSet (not run: no MySQL here)."""

    def __init__(self, state: str | None) -> None:
        self._known = state is not None
        self._set = GtidSet(state or None)

    def add(self, gtid: str) -> None:
        self._set = self._set + Gtid(gtid)

    def text(self) -> str | None:
        return str(self._set) if self._known else None


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
        gtids: GtidState,
        progress_every: float,
        lean: bool = True,
        raw: bool = False,
    ) -> None:
        self._stream = stream
        self._endpoint = endpoint
        self._schemas = schemas
        self._tables = tables
        self._tx = Assembler(
            start, schemas=schemas, end=end, gtids=gtids, progress_every=progress_every,
            raw=raw and lean,
        )
        self._cache = TableCache(lean=lean, here=self._tx.here)
        self._lean = (
            LeanPath(stream, self._tx, self._cache, schemas=schemas, tables=tables,
                     raw=raw)
            if lean
            else None
        )

    @property
    def position(self) -> Position:
        """Where to resume to miss nothing: the last transaction end, held back to the start
        of any XA transaction still prepared."""
        return self._tx.position

    def __iter__(self) -> BinlogReader:
        return self

    def __next__(self) -> StreamEvent:
        event = self.read()
        if isinstance(event, RawTransaction):
            raise TypeError("a raw reader is read with read(), not iterated")
        return event

    def read(self) -> StreamEvent | RawTransaction:
        """The next event (raw mode: a transaction as :class:`RawTransaction`); raises
        StopIteration at the end."""
        tx = self._tx
        while not tx.out:
            if tx.done:
                self.close()
                raise StopIteration
            event = self._fetch()
            if event is _READ:
                continue
            if event is None:
                tx.done = True
                continue
            _HANDLERS.get(type(event), BinlogReader._ignore)(self, event)
            log_pos = event.packet.log_pos
            if log_pos and not isinstance(event, RotateEvent | HeartbeatLogEvent):
                tx.pos = log_pos
        return tx.out.popleft()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> BinlogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self) -> Any:
        """The library's next event, or ``_READ`` when the lean path took the packet."""
        try:
            if self._lean is not None and self._lean.step():
                return _READ
            return self._stream.fetchone()
        except StreamLost as exc:
            self.close()
            raise lost_error(self._endpoint, exc, self.position) from None
        except pymysql.err.MySQLError as exc:
            self.close()
            raise server_error(self._endpoint, exc, self.position) from None

    # --- handlers, one per library event class -------------------------------------------

    def _ignore(self, event: Any) -> None:
        pass

    def _on_mariadb_gtid(self, event: Any) -> None:
        self._tx.begin_mariadb(event.gtid, event.flags)

    def _on_mysql_gtid(self, event: Any) -> None:
        self._tx.open(event.gtid)

    def _on_xid(self, event: Any) -> None:
        self._tx.commit(event.packet.log_pos, event.timestamp)

    def _on_xa_prepare(self, event: Any) -> None:
        xid = (event.xid_format_id, event.xid_gtrid, event.xid_bqual)
        self._tx.xa_prepare(event.packet.log_pos, event.timestamp, xid, event.one_phase)

    def _on_rotate(self, event: Any) -> None:
        self._forget_tables()
        self._tx.rotate(event.next_binlog, event.position, event.timestamp)

    def _on_heartbeat(self, event: Any) -> None:
        self._tx.heartbeat(Position(str(event.ident), event.packet.log_pos))

    def _on_not_implemented(self, event: Any) -> None:
        kind = event.event_type
        if kind == _ANONYMOUS_GTID:
            self._tx.open(None)
        elif kind == _HEARTBEAT_V2:
            self._tx.heartbeat(Position(self._tx.file, event.packet.log_pos))
        elif kind in _COMPRESSED_ROWS_TYPES and not self._compressed_rows_tracked(event):
            return
        elif kind not in _IGNORABLE_TYPES:
            raise UnsupportedEventError(
                f"binlog event type {kind:#04x} cannot be read (compressed, incident or unknown)",
                fix="turn off binlog compression (MariaDB log_bin_compress, MySQL "
                "binlog_transaction_compression) and run `aurora-sync check`; an incident "
                "event means the source lost changes: bootstrap again",
                position=self._tx.here(),
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
        if statement.kind is decode.Kind.DDL:
            self._forget_tables()
        query = Query(statement, current, event.packet.log_pos, event.timestamp, event.query)
        self._tx.query(query)

    # --- rows ----------------------------------------------------------------------------

    def _on_rows(self, event: Any) -> None:
        key = (event.schema, event.table)
        if event.schema not in self._schemas or (self._tables and key not in self._tables):
            return
        group = self._tx.current(f"a row change on {event.schema}.{event.table}")
        info = self._cache.table(event.table_id, self._stream.table_map.get(event.table_id))
        self._check_images(event, info)
        _install_readers(event)
        at, op = self._tx.here(), _ROW_OPS[type(event)]
        try:
            rows = event.rows
        except UnicodeDecodeError as exc:
            raise _undecodable(info, exc, at) from None
        for row in rows:
            before, after = _IMAGES[op](row, info.fixers)
            group.rows.append((info.schema, info.table, op, before, after, at))

    def _on_partial_update(self, event: Any) -> None:
        if event.schema in self._schemas:
            raise UnsupportedEventError(
                f"a partial JSON update of {event.schema}.{event.table} "
                "(binlog_row_value_options=PARTIAL_JSON) has no full after image",
                fix="SET GLOBAL binlog_row_value_options='' on the source, then bootstrap again",
                table=f"{event.schema}.{event.table}",
                position=self._tx.here(),
            )

    def _check_images(self, event: Any, info: Table) -> None:
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
                    position=self._tx.here(),
                )

    def _forget_tables(self) -> None:
        # Table ids are reassigned after DDL, FLUSH TABLES and restarts (a restart always
        # starts a new binlog file): forget both our table cache and the library's.
        self._cache.clear()
        self._stream.table_map = {}


def _undecodable(info: Table, exc: UnicodeDecodeError, at: Position) -> SourceError:
    """A row whose text the binlog holds in bytes its column's character set cannot have
    (the value itself stays out of the message)."""
    names = {"cp1252": "latin1"}  # the library names latin1 by its Python codec
    charsets = sorted({names.get(str(c.character_set_name), str(c.character_set_name))
                       for c in info.source.columns
                       if c.character_set_name not in (None, "binary")})
    return SourceError(
        f"a row of {info.schema}.{info.table} holds bytes that are not valid {exc.encoding} "
        f"text ({exc.reason}); its text columns are in {', '.join(charsets) or 'no charset'}: "
        "the stream stopped before this transaction, nothing of it was applied",
        fix="the stream cannot read past this event: correct the value on aurora (the row "
        "changed at this position: mysqlbinlog -v --start-position), or make the column "
        "utf8mb4 or binary on both sides, then copy again from a new position with "
        "`aurora-sync bootstrap --force`; the checkpoint is before this transaction",
        table=f"{info.schema}.{info.table}",
        position=at,
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
    library_string = event._RowsEvent__read_string

    def read_string(size: int, column: Any) -> Any:
        # latin1, utf16, utf32, ucs2: the library's codec is not the server's (decode).
        text = decode.server_text(column.character_set_name)
        if text is None:
            return library_string(size, column)
        return text(event.packet.read_length_coded_pascal_string(size))

    event._RowsEvent__read_string = read_string


def _check_library() -> None:
    from pymysqlreplication.row_event import RowsEvent  # noqa: PLC0415

    missing = [name for name in _ROW_READERS if not hasattr(RowsEvent, f"_RowsEvent__read_{name}")]
    if missing:
        raise SourceError(
            f"this mysql-replication version lacks the readers aurora-sync replaces: {missing}",
            fix="install the mysql-replication version pinned in pyproject.toml (1.0.x)",
        )


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
_READ = object()  # _fetch: the lean path handled the packet


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
    raw: bool = False,
) -> BinlogReader:
    """Open the source's binlog at ``start`` (never "wherever the source is now").

    ``schemas`` are read (aurora, generic routes, the heartbeat schema); ``tables`` narrows
    row changes to ``(schema, table)`` pairs. ``auto_position`` starts from ``start.gtid``
    (MariaDB GTID list or MySQL GTID set) instead of file and position. ``blocking=False``
    ends at the source's current end, ``end`` after the transaction that reaches it. A
    transaction without tracked rows is yielded empty at most every ``progress_every``
    seconds, so the checkpoint follows the source while aurora is idle. ``lean=False``
    reads every event through the library's event classes (slower; the same values).
    ``raw=True`` leaves the lean path's rows events undecoded (:meth:`BinlogReader.read`
    returns :class:`RawTransaction`; :mod:`sync.source.split` decodes them elsewhere).
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
    gtids: GtidState = _MariadbGtids(gtid) if mariadb else _MysqlGtids(gtid)
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
        pymysql_wrapper=ReplicationConnection,
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
        raw=raw,
    )
