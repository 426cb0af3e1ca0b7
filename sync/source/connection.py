"""The replication connection under the binlog reader, and what its errors mean.

The replication library connects with the class here; this module does not import
the library. Errors map to :mod:`sync.errors` as follows:

* lost or silent socket (:class:`StreamLost`) and a killed dump thread:
  :class:`SourceConnectionLostError` (the pipeline reopens at its checkpoint);
* access denied: the connect error of :func:`sync.db.connect_error`;
* another replica with our server id: :class:`ServerIdConflictError`;
* the binlog to resume from is purged: :class:`BinlogPurgedError`;
* anything else the server refuses: :class:`SourceError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pymysql
from pymysql.protocol import MysqlPacket

from sync.db import LOST_CONNECTION_CODES, connect_error, error_code
from sync.errors import (
    BinlogPurgedError,
    ServerIdConflictError,
    SourceConnectionLostError,
    SourceError,
)
from sync.model import Position
from sync.settings import Endpoint

# Server errors that end a dump thread: killed, shutting down.
_KILLED_CODES = frozenset({1927, 1053})
_ACCESS_CODES = frozenset({1044, 1045, 1698, 2003})
# A backlog arrives as packets back to back: one large buffer takes many per system call,
# where PyMySQL's default 8 KiB holds a handful.
_READ_BUFFER = 1 << 18
_MAX_PACKET = 0xFFFFFF  # a payload this long continues in the next packet
_ERROR_PACKET = 0xFF
_PACKET_HEADER = struct.Struct("<HBB")  # payload length (three bytes), sequence number


class StreamLost(Exception):  # noqa: N818 - private signal, converted at once
    """The replication socket closed or timed out (raised past the library's own reconnect)."""


if TYPE_CHECKING:
    _Connection = pymysql.connections.Connection[Any]
else:  # PyMySQL's class is generic only in its type stubs
    _Connection = pymysql.connections.Connection


class ReplicationConnection(_Connection):
    """A PyMySQL connection whose lost-connection errors the library cannot swallow.

    ``BinLogStreamReader.fetchone`` catches errors 2006/2013 and silently reconnects from its
    in-memory position, which can be ahead of what the targets committed. Raising a
    non-PyMySQL exception here skips that branch.
    """

    pending: Any = None
    """A packet the reader looked at and hands to the library: returned by the next read."""

    # PyMySQL's own state, read and kept as its _read_packet does (its stubs omit them).
    _sock: Any
    _rfile: Any
    _read_timeout: float | None
    _current_timeout: float | None
    _next_seq_id: int
    _force_close: Callable[[], None]

    def __init__(self, *args: Any, db: str | None = None, **kwargs: Any) -> None:
        # The library names the control connection's database with PyMySQL's deprecated
        # ``db`` keyword, which warns on every connect.
        if db is not None:
            kwargs.setdefault("database", db)
        super().__init__(*args, **kwargs)

    def connect(self, sock: Any = None) -> None:
        super().connect(sock)
        # Swapped once the handshake is over, while the server has nothing more to send, so
        # no byte the old buffer held is lost.
        self._rfile = self._sock.makefile("rb", buffering=_READ_BUFFER)

    def read_payload(self) -> bytes:
        """The next packet's payload, as :meth:`_read_packet` reads it without building a
        packet object: per binlog event, PyMySQL's own read costs more than the event's
        header and boundaries take to decode. Error packets raise as there; a lost or
        silent socket raises :class:`StreamLost`."""
        if self.pending is not None:
            packet, self.pending = self.pending, None
            return bytes(packet._data)
        if self._current_timeout != self._read_timeout:
            self._sock.settimeout(self._read_timeout)
            self._current_timeout = self._read_timeout
        payload = chunk = self._payload()
        while len(chunk) == _MAX_PACKET:  # a long event continues in the next packet
            chunk = self._payload()
            payload += chunk
        if payload and payload[0] == _ERROR_PACKET:
            MysqlPacket(payload, self.encoding).raise_for_error()
        return payload

    def _payload(self) -> bytes:
        low, high, seq = _PACKET_HEADER.unpack(self._read_exactly(4))
        if seq != self._next_seq_id:
            self._force_close()
            raise StreamLost(f"packet sequence number {seq}, expected {self._next_seq_id}")
        self._next_seq_id = (seq + 1) & 0xFF
        return self._read_exactly(low | high << 16)

    def _read_exactly(self, size: int) -> bytes:
        try:
            data: bytes = self._rfile.read(size)
        except OSError as exc:  # a timeout included: the heartbeat did not arrive
            self._force_close()
            raise StreamLost(f"Lost connection to server during query ({exc})") from exc
        if len(data) < size:
            self._force_close()
            raise StreamLost("Lost connection to server during query")
        return data

    def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
        if self.pending is not None:
            packet, self.pending = self.pending, None
            return packet
        try:
            return super()._read_packet(packet_type)  # type: ignore[no-untyped-call]
        except pymysql.err.OperationalError as exc:
            if error_code(exc) in LOST_CONNECTION_CODES:
                raise StreamLost(str(exc.args[1]) if len(exc.args) > 1 else str(exc)) from exc
            raise


def lost_error(endpoint: Endpoint, exc: StreamLost, position: Position) -> Exception:
    return SourceConnectionLostError(
        f"the binlog connection to {endpoint.host}:{endpoint.port} was lost or went silent ({exc})",
        fix="nothing to do if it passes: the pipeline reopens the stream at its "
        "committed checkpoint; if it repeats, check the network and the source, and "
        "that AURORA_SYNC_READ_TIMEOUT exceeds twice the replication heartbeat",
        position=position,
    )


def server_error(endpoint: Endpoint, exc: pymysql.err.MySQLError, position: Position) -> Exception:
    code = error_code(exc)
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    lowered = message.lower()
    if code in _ACCESS_CODES:
        return connect_error(endpoint, exc)
    if code == 4052 or "same server_uuid/server_id" in lowered:
        return ServerIdConflictError(
            f"another replica connected to the source with our server id: {message}",
            fix="give every aurora-sync pipeline and every replica of the source its own "
            "AURORA_SYNC_SERVER_ID (1..4294967295)",
            position=position,
        )
    if code == 1236 and ("purged" in lowered or "could not find first log" in lowered):
        return BinlogPurgedError(
            f"the source no longer has the binlog to resume from: {message}",
            fix="the changes since the checkpoint are gone: run `aurora-sync bootstrap "
            "--force` to copy the tables again from a new position, then `aurora-sync run`; "
            "and keep binlogs longer (expire_logs_days / binlog_expire_logs_seconds, or on Aurora "
            "mysql.rds_set_configuration('binlog retention hours', N))",
            position=position,
        )
    if code in _KILLED_CODES:
        return SourceConnectionLostError(
            f"the source ended the binlog connection: {message}",
            fix="the pipeline reopens the stream at its committed checkpoint",
            position=position,
        )
    return SourceError(
        f"the source refused to send the binlog (error {code}): {message}",
        fix="check the position and the replication privileges "
        "(REPLICATION SLAVE, REPLICATION CLIENT / BINLOG MONITOR)",
        position=position,
    )
