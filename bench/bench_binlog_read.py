"""Raw binlog read rate of aurora-sync's reader beside ``mysqlbinlog -v`` on the same binlog.

Run: ``python bench/bench_binlog_read.py [single_row_transactions] [multi_row_transactions]``
(defaults 200000 and 2000 x 100 rows). A throwaway MariaDB server is started and removed.
Both readers fetch the binlog over the replication protocol (``mysqlbinlog
--read-from-remote-server``), so the ratio compares decoding, not disk against network.
aurora-sync's reader runs twice: with its lean row readers (the default) and with every event
parsed by the library (``lean=False``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time

from sync.dev.localdb import LocalServer, start_server
from sync.model import Position, SourceTransaction
from sync.settings import load_settings
from sync.source.binlog import open_binlog
from sync.source.position import current_position

DB = "bench"


def _workload(server: LocalServer, singles: int, multis: int, rows: int) -> list[tuple[str, str]]:
    server.execute(f"CREATE DATABASE {DB}")
    server.execute(
        f"CREATE TABLE {DB}.t (id BIGINT PRIMARY KEY, n INT, s VARCHAR(64), d DATETIME(6), "
        "x DECIMAL(12,2))"
    )
    # One transaction per INSERT: a procedure under autocommit commits each statement.
    server.execute(
        f"""CREATE PROCEDURE {DB}.singles(n INT) BEGIN
              DECLARE i INT DEFAULT 0;
              WHILE i < n DO
                INSERT INTO {DB}.t VALUES (i, i, CONCAT('row ', i), NOW(6), i / 7);
                SET i = i + 1;
              END WHILE; END"""
    )
    server.execute(
        f"""CREATE PROCEDURE {DB}.multis(n INT, r INT) BEGIN
              DECLARE i INT DEFAULT 0;
              WHILE i < n DO
                INSERT INTO {DB}.t SELECT 1000000000 + i * r + seq, seq, 'multi', NOW(6), seq
                  FROM seq_1_to_{rows};
                SET i = i + 1;
              END WHILE; END"""
    )
    cases = []
    for name, call in (
        ("single-row", f"CALL {DB}.singles({singles})"),
        ("multi-row", f"CALL {DB}.multis({multis}, {rows})"),
    ):
        with contextlib.closing(server.connect()) as conn:
            start = current_position(conn)
            conn.cursor().execute(call)
            end = current_position(conn)
        cases.append((name, f"{start.file}:{start.pos}:{end.pos}"))
    return cases


def _ours(
    server: LocalServer, start: Position, end: Position, *, lean: bool
) -> tuple[float, int, int]:
    settings = load_settings(
        None,
        source_host=server.host,
        source_port=server.port,
        source_user=server.user,
        source_password=server.password,
        server_id=4_399_001,
    )
    began = time.perf_counter()
    txs = changes = 0
    with open_binlog(settings, start, schemas={DB}, end=end, blocking=False, lean=lean) as reader:
        for event in reader:
            if isinstance(event, SourceTransaction) and event.changes:
                txs += 1
                changes += len(event.changes)
    return time.perf_counter() - began, txs, changes


def _mysqlbinlog(server: LocalServer, start: Position, end: Position) -> tuple[float, int]:
    tool = shutil.which("mariadb-binlog") or shutil.which("mysqlbinlog") or "mysqlbinlog"
    cmd = [
        tool,
        "--read-from-remote-server",
        f"--host={server.host}",
        f"--port={server.port}",
        f"--user={server.user}",
        f"--password={server.password}",
        "-v",
        f"--start-position={start.pos}",
        f"--stop-position={end.pos}",
        start.file,
    ]
    began = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, errors="replace").stdout
    elapsed = time.perf_counter() - began
    return elapsed, out.count("Write_rows: table id")


def main() -> None:
    singles = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    multis = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    server = start_server("bench-binlog", server_id=391, options={"max_binlog_size": "1073741824"})
    try:
        for name, span in _workload(server, singles, multis, 100):
            file, first, last = span.split(":")
            start, end = Position(file, int(first)), Position(file, int(last))
            ours, txs, changes = _ours(server, start, end, lean=True)
            library, _, _ = _ours(server, start, end, lean=False)
            theirs, row_events = _mysqlbinlog(server, start, end)
            print(f"{name}: {txs} transactions, {row_events} row events, {changes} row changes")
            for label, took in (("aurora-sync", ours), ("  (library)", library)):
                print(
                    f"  {label} : {took:7.2f} s  {row_events / took:9.0f} row events/s  "
                    f"{changes / took:9.0f} row changes/s"
                )
            print(
                f"  mysqlbinlog : {theirs:7.2f} s  {row_events / theirs:9.0f} row events/s  "
                f"{changes / theirs:9.0f} row changes/s"
            )
            print(f"  ratio       : aurora-sync takes {ours / theirs:.1f}x mysqlbinlog -v's time")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
