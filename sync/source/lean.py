"""The events of a row backlog, read from the replication packets without the library.

A backlog of row changes is mostly four event kinds: MariaDB GTID, table map, rows and Xid.
Building the library's event objects for them costs more than the rows themselves, so
:class:`LeanPath` reads those packets here (rows with :mod:`sync.source.rows`) and hands
every other packet, and anything unusual, back to the library unread through
:attr:`ReplicationConnection.pending`. Both paths yield the same values.

The library owns connecting, the handshake and the format description; this path starts
only once it has connected, and reads the library's table maps and header lengths by
attribute (this module does not import it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from itertools import repeat
from typing import Any

from pymysql.protocol import MysqlPacket

from sync.model import Op
from sync.source import rows
from sync.source.connection import ReplicationConnection
from sync.source.events import TableName
from sync.source.tables import Table, TableCache
from sync.source.transactions import Assembler

_HEADER = struct.Struct("<xIBIIIH")  # OK byte; timestamp, type, server id, size, log_pos, flags
_MARIADB_GTID = struct.Struct("<QIB")  # sequence number, domain, flags
_TABLE_ID = struct.Struct("<IH")  # six bytes, little-endian
_ROWS_V1, _ROWS_V2 = (0x17, 0x18, 0x19), (0x1E, 0x1F, 0x20)  # write, update, delete
_UPDATE_KINDS = frozenset({0x18, 0x1F})
EVENT_OPS: Mapping[int, Op] = {
    kind: op
    for kinds in (_ROWS_V1, _ROWS_V2)
    for kind, op in zip(kinds, (Op.INSERT, Op.UPDATE, Op.DELETE), strict=True)
}


class LeanPath:
    """Reads the next packet when it is one of the kinds above; see :meth:`step`."""

    def __init__(
        self,
        stream: Any,
        tx: Assembler,
        cache: TableCache,
        *,
        schemas: frozenset[str],
        tables: frozenset[TableName] | None,
        raw: bool = False,
    ) -> None:
        self._stream = stream
        self._tx = tx
        self._cache = cache
        self._schemas = schemas
        self._tables = tables
        self._raw = raw
        # raw: by table id, its Table, the serial the decoding side knows it by, its spec.
        self._serials: dict[int, tuple[Table, int, TableSpec]] = {}
        self._next_serial = 0

    def step(self) -> bool:
        """Read packets while they are of the kinds above, until a transaction is complete
        (or the reader's end is reached): True then. False when a packet is not one of them:
        the library reads it next."""
        connection = self._connection()
        if connection is None:
            return False
        tx, stream = self._tx, self._stream
        # One loop per transaction rather than one call per packet: a one-row transaction
        # is four packets, and the reader's per-call overhead was a tenth of its time.
        while True:
            data = connection.read_payload()
            handler = _LEAN.get(data[5]) if len(data) > _HEADER.size and data[0] == 0 else None
            if handler is None:
                break
            header = _HEADER.unpack_from(data)
            if not handler(self, data, header):
                break
            stream.log_pos = header[4]
            if tx.out or tx.done:
                return True
        connection.pending = MysqlPacket(data, connection.encoding)
        return False

    def _connection(self) -> ReplicationConnection | None:
        # Only once the library has connected (and read the format description): it owns
        # connecting, the handshake and every event kind not read here.
        stream = self._stream
        if not getattr(stream, "_BinLogStreamReader__connected_stream", False):
            return None
        connection = stream._stream_connection
        return connection if isinstance(connection, ReplicationConnection) else None

    def _gtid(self, data: bytes, header: tuple[int, ...]) -> bool:
        seq_no, domain, flags = _MARIADB_GTID.unpack_from(data, _HEADER.size)
        self._tx.begin_mariadb(f"{domain}-{header[2]}-{seq_no}", flags)
        self._tx.pos = header[4]
        return True

    def _xid(self, data: bytes, header: tuple[int, ...]) -> bool:
        self._tx.commit(header[4], header[0])
        self._tx.pos = header[4]
        return True

    def _table_map(self, data: bytes, header: tuple[int, ...]) -> bool:
        # A table id already mapped is skipped by the library too (freeze_schema).
        return _table_id(data) in self._stream.table_map

    def _rows(self, data: bytes, header: tuple[int, ...]) -> bool:
        table_id = _table_id(data)
        source = self._stream.table_map.get(table_id)
        if source is None:
            return True  # an untracked table: the library skips its rows likewise
        tx = self._tx
        if source.schema not in self._schemas or (
            self._tables and (source.schema, source.table) not in self._tables
        ):
            tx.pos = header[4]
            return True
        group = tx.group or tx.current(f"a row change on {source.schema}.{source.table}")
        info = self._cache.table(table_id, source)
        if self._raw:
            return self._raw_rows(data, header, info, table_id, group.rows)
        images = self._images(data, header, info)
        if images is None:
            return False
        at, op = tx.here(), EVENT_OPS[header[1]]
        add = group.rows.append
        for before, after in image_pairs(op, images):
            add((info.schema, info.table, op, before, after, at))
        tx.pos = header[4]
        return True

    def _raw_rows(self, data: bytes, header: tuple[int, ...], info: Table, table_id: int,
                  group: list[Any]) -> bool:
        """Raw mode: the event's bytes join the transaction undecoded, for another process
        to decode (:mod:`sync.source.split`); the checks that send it to the library here
        are the ones made without decoding."""
        span = self._span(data, header, info)
        if span is None:
            return False
        reader = info.reader
        assert reader is not None  # _span checked it
        start, end = span
        if not reader.whole(data, start, header[1] in _UPDATE_KINDS):
            return False
        known = self._serials.get(table_id)
        if known is None or known[0] is not info:
            spec = (info.schema, info.table, list(info.source.columns))
            known = (info, self._next_serial, spec)
            self._next_serial += 1
            self._serials[table_id] = known
        self._tx.pos = header[4]
        group.append((known[1], header[1], data, start, end, header[4], known[2]))
        return True

    def _images(self, data: bytes, header: tuple[int, ...], info: Table) -> list[rows.Image] | None:
        span = self._span(data, header, info)
        if span is None or info.reader is None:
            return None
        return info.reader.rows(data, span[0], span[1], header[1] in _UPDATE_KINDS)

    def _span(self, data: bytes, header: tuple[int, ...], info: Table) -> tuple[int, int] | None:
        """Where a rows event's row images start and end, or None for the library."""
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
        return pos + 1, end


def image_pairs(op: Op, images: list[rows.Image]) -> Iterator[tuple[Any, Any]]:
    """A rows event's images as (before, after) per row: an update's alternate (the
    readers return an even count). Runs per rows event: zips, no list."""
    if op is Op.UPDATE:
        return zip(images[::2], images[1::2])  # noqa: B905 - even, checked by the reader
    if op is Op.INSERT:
        return zip(repeat(None), images)
    return zip(images, repeat(None))


TableSpec = tuple[str, str, list[Any]]
"""What a raw rows event is decoded against: schema, table and the library's columns."""

RawRows = tuple[int, int, bytes, int, int, int, TableSpec | None]
"""A rows event left undecoded: the table's serial (new for each table map read), event
type, the packet, where its row images start and end, its end position in the file, and
the table's spec (the sending side leaves it out where the receiving side has it)."""


def _table_id(data: bytes) -> int:
    low: int
    high: int
    low, high = _TABLE_ID.unpack_from(data, _HEADER.size)
    return low | high << 32


_LEAN: Mapping[int, Callable[[LeanPath, bytes, tuple[int, ...]], bool]] = {
    0xA2: LeanPath._gtid,  # MariaDB GTID
    0x10: LeanPath._xid,
    0x13: LeanPath._table_map,
    **dict.fromkeys(_ROWS_V1 + _ROWS_V2, LeanPath._rows),
}
