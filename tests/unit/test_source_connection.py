"""The replication connection's packet reads: framing, continuation, errors, lost sockets."""

from __future__ import annotations

import io
import socket
import struct

import pymysql
import pytest

from sync.source.connection import ReplicationConnection, StreamLost


def _frame(payload: bytes, seq: int) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


class _Timeout(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        raise TimeoutError("timed out")


def _connection(raw: bytes | io.RawIOBase, seq: int = 1) -> ReplicationConnection:
    conn = ReplicationConnection.__new__(ReplicationConnection)
    source = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    conn._rfile = io.BufferedReader(source)
    conn._sock = socket.socket()
    conn._read_timeout = conn._current_timeout = None
    conn._next_seq_id = seq
    conn.encoding = "utf8mb4"
    conn._sock.close()
    return conn


def test_packets_are_read_back_to_back_with_their_sequence() -> None:
    conn = _connection(_frame(b"\x00first", 1) + _frame(b"\x00second", 2))
    assert conn.read_payload() == b"\x00first"
    assert conn.read_payload() == b"\x00second"
    assert conn._next_seq_id == 3


def test_a_payload_of_the_largest_size_continues_in_the_next_packet() -> None:
    first = b"\x00" + b"a" * (0xFFFFFF - 1)
    conn = _connection(_frame(first, 255) + _frame(b"tail", 0) + _frame(b"\x00next", 1), seq=255)
    assert conn.read_payload() == first + b"tail"
    assert conn.read_payload() == b"\x00next"


def test_an_exact_multiple_ends_with_an_empty_packet() -> None:
    first = b"\x00" + b"b" * (0xFFFFFF - 1)
    conn = _connection(_frame(first, 1) + _frame(b"", 2) + _frame(b"\x00next", 3))
    assert conn.read_payload() == first
    assert conn.read_payload() == b"\x00next"


def test_an_error_packet_raises_the_servers_error() -> None:
    error = b"\xff" + struct.pack("<H", 1236) + b"#HY000" + b"Could not find first log file"
    conn = _connection(_frame(error, 1))
    with pytest.raises(pymysql.err.OperationalError) as caught:
        conn.read_payload()
    assert caught.value.args[0] == 1236


@pytest.mark.parametrize(
    "raw",
    [b"", _frame(b"\x00whole", 1)[:-2], _frame(b"\x00wrong sequence", 7)],
    ids=["closed", "cut short", "out of sequence"],
)
def test_a_lost_or_garbled_stream_is_stream_lost(raw: bytes) -> None:
    with pytest.raises(StreamLost):
        _connection(raw).read_payload()


def test_a_read_timeout_is_stream_lost() -> None:
    with pytest.raises(StreamLost, match="timed out"):
        _connection(_Timeout()).read_payload()


def test_a_packet_handed_back_is_read_first() -> None:
    conn = _connection(_frame(b"\x00after", 1))
    conn.pending = pymysql.protocol.MysqlPacket(b"\x00handed back", "utf8mb4")
    assert conn.read_payload() == b"\x00handed back"
    assert conn.read_payload() == b"\x00after"
