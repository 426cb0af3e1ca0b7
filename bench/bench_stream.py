"""Streaming catch-up throughput beside MariaDB's own replication and a naive applier.

Run: ``python bench/bench_stream.py [--changes N] [--users U]`` (defaults 200,000 and 2,000).

One run on one machine, on the same binlog:
1. aurora (the generator) is copied into the targets and into a replica; the source's
   position P is noted; then N single-row update transactions (a backlog) are written.
2. aurora-sync streams P → end (mapping, batching, one target transaction per batch with
   its checkpoint) and the time is taken from reader start to the last commit.
3. MariaDB native replication (``START SLAVE UNTIL``; IO and SQL threads) applies the same
   binlog range to the replica, untransformed: the physical reference.
4. A naive applier (aurora-sync's reader, every row change its own autocommit statement)
   applies the first N/10 changes; its rate is reported.

The three appliers write into equally configured stores: none of them writes a binlog of
what it applies. A replica's SQL thread does not (``log_slave_updates`` is off by default),
the production target (TiDB) writes no MySQL binlog, so aurora-sync's target runs without
``log_bin`` and the naive applier's session sets ``sql_log_bin = 0``. ``--target-binlog``
gives aurora-sync's target and the naive applier a binlog again, as the benchmark had
before: it costs aurora-sync's target server the binlog native replication does not write.
5. With ``--reader-rounds R``: the same backlog replayed 2R more times from P, with the
   binlog read in-process (``AURORA_SYNC_STREAM_READER=thread``) and in the reader process,
   alternately: what the reader process is worth, side by side. Replays write rows that
   already hold their values, so they run faster than step 2; only their ratio counts.

Prints the figures and the ratios; ``--json`` adds a machine-readable line for bench/run.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bootstrap.run import run_bootstrap
from sync import schema
from sync.daemon import StreamRun, stream
from sync.db import connect
from sync.dev.generate import generate
from sync.dev.localdb import LocalServer, start_server
from sync.dev.localenv import local_settings
from sync.model import Checkpoint, Op, Position, SourceTransaction
from sync.settings import Settings
from sync.source.binlog import open_binlog
from sync.source.position import current_position
from sync.state import StateStore

PREFIX = "bs"


def backlog(source: LocalServer, db: str, changes: int) -> None:
    """``changes`` single-row transactions over syllabus, subjects and users (in turn)."""
    source.execute(f"DROP PROCEDURE IF EXISTS `{db}`.backlog")
    source.execute(
        f"""CREATE PROCEDURE `{db}`.backlog(n INT) BEGIN
              DECLARE i INT DEFAULT 0;
              DECLARE ns, nj, nu INT;
              SELECT MAX(id) INTO ns FROM `{db}`.syllabus;
              SELECT MAX(id) INTO nj FROM `{db}`.subjects;
              SELECT MAX(id) INTO nu FROM `{db}`.users;
              WHILE i < n DO
                CASE i % 3
                  WHEN 0 THEN UPDATE `{db}`.syllabus SET title = CONCAT('Week ', i)
                              WHERE id = 1 + (i * 7919) % ns;
                  WHEN 1 THEN UPDATE `{db}`.subjects SET credits = i % 10
                              WHERE id = 1 + (i * 7919) % nj;
                  ELSE UPDATE `{db}`.users SET name = CONCAT('User ', i)
                              WHERE id = 1 + (i * 7919) % nu;
                END CASE;
                SET i = i + 1;
              END WHILE; END"""
    )
    source.execute(f"CALL `{db}`.backlog(%s)", (changes,))


def position(server: LocalServer) -> Position:
    with contextlib.closing(server.connect()) as conn:
        return current_position(conn)


def copy_to_replica(source: LocalServer, replica: LocalServer, db: str) -> None:
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mysqldump"
    client = shutil.which("mariadb") or shutil.which("mysql") or "mysql"
    replica.execute(f"CREATE DATABASE `{db}`")
    with subprocess.Popen(
        [dump, "--no-defaults", f"--socket={source.socket_path}", "--user=root",
         "--single-transaction", db], stdout=subprocess.PIPE,
    ) as dumper:
        subprocess.run([client, "--no-defaults", f"--socket={replica.socket_path}",
                        "--user=root", db], stdin=dumper.stdout, check=True)


def native(source: LocalServer, replica: LocalServer, start: Position, end: Position) -> float:
    replica.execute(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER=%s, "
        "MASTER_PASSWORD=%s, MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s",
        (source.port, source.user, source.password, start.file, start.pos),
    )
    began = time.monotonic()
    replica.execute("START SLAVE UNTIL MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s",
                    (end.file, end.pos))
    with contextlib.closing(replica.connect()) as conn:
        while True:
            with conn.cursor() as cur:
                cur.execute("SHOW SLAVE STATUS")
                row = cur.fetchone()
                names = [d[0] for d in cur.description or ()]
            status = dict(zip(names, row or (), strict=False))
            done = (status.get("Relay_Master_Log_File") == end.file
                    and int(status.get("Exec_Master_Log_Pos") or 0) >= end.pos)
            if done:
                return time.monotonic() - began
            if status.get("Last_SQL_Error"):
                raise RuntimeError(f"native replication failed: {status['Last_SQL_Error']}")
            time.sleep(0.02)


def naive(settings: Settings, replica: LocalServer, db: str, start: Position,
          limit: int, *, binlog: bool) -> tuple[int, float]:
    """Every change its own autocommit statement into the replica's second copy."""
    applied = 0
    began = time.monotonic()
    with contextlib.closing(replica.connect(database=db)) as conn, conn.cursor() as cur, \
            open_binlog(settings, start, schemas={settings.source_db}, blocking=False) as reader:
        if not binlog:
            cur.execute("SET SESSION sql_log_bin = 0")
        for event in reader:
            if not isinstance(event, SourceTransaction):
                continue
            for change in event.changes:
                row = change.image
                if change.op is Op.DELETE:
                    cur.execute(f"DELETE FROM `{change.table}` WHERE id = %s", (row["id"],))
                else:
                    cols = ", ".join(f"`{c}`" for c in row)
                    marks = ", ".join(["%s"] * len(row))
                    update = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in row)
                    cur.execute(f"INSERT INTO `{change.table}` ({cols}) VALUES ({marks}) "
                                f"ON DUPLICATE KEY UPDATE {update}", tuple(row.values()))
                applied += 1
            if applied >= limit:
                break
    return applied, time.monotonic() - began


def _on(server: LocalServer, variable: str) -> bool:
    return bool(int(str(server.execute(f"SELECT @@{variable}")[0][0])))


def ours(settings: Settings, start: Position, end: Position) -> float:
    store = StateStore(lambda: connect(settings.target), settings.state_db, settings.pipeline)
    try:
        store.write_checkpoint(Checkpoint(start))
    finally:
        store.close()
    began = time.monotonic()
    result = stream(settings, StreamRun(until=end, blocking=True))
    seconds = time.monotonic() - began
    assert result.checkpoint is not None and result.checkpoint.position >= end, result
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--reader-rounds", type=int, default=0,
                        help="replays in-process then in the reader process, alternately")
    parser.add_argument("--target-binlog", action="store_true",
                        help="aurora-sync's target and the naive applier write a binlog "
                        "(native replication's replica does not)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    source = start_server("bench-source", server_id=11)
    target = start_server("bench-target", server_id=12,
                          options=None if args.target_binlog else {"log_bin": None})
    replica = start_server("bench-replica", server_id=13)
    try:
        settings = local_settings(source, target, PREFIX, AURORA_SYNC_BATCH_MAX_ROWS=5000)
        schema.init_target(settings)
        db = settings.source_db
        generate(lambda: connect(settings.source), database=db, users=args.users, seed=1,
                 create=True)
        run_bootstrap(settings)
        copy_to_replica(source, replica, db)
        replica.execute(f"CREATE DATABASE naive_{db}")
        start = position(source)
        backlog(source, db, args.changes)
        end = position(source)
        # The naive copy starts from the same data as the replica.
        for table in schema.schema_tables(schema.SOURCE_SCHEMA):
            replica.execute(f"CREATE TABLE naive_{db}.`{table}` LIKE `{db}`.`{table}`")
            replica.execute(f"INSERT INTO naive_{db}.`{table}` SELECT * FROM `{db}`.`{table}`")
        ours_s = ours(settings, start, end)
        replays: dict[str, list[float]] = {"thread": [], "process": []}
        for _ in range(args.reader_rounds):
            for mode, rates in replays.items():
                seconds = ours(settings.model_copy(update={"stream_reader": mode}), start, end)
                rates.append(args.changes / seconds)
        native_s = native(source, replica, start, end)
        naive_n, naive_s = naive(settings, replica, f"naive_{db}", start, args.changes // 10,
                                 binlog=args.target_binlog)
        # As the servers run, not as asked: what each applier's store writes to a binlog.
        written = {"replica (log_slave_updates)": _on(replica, "log_slave_updates"),
                   "aurora-sync's target (log_bin)": _on(target, "log_bin")}
    finally:
        for server in (source, target, replica):
            server.stop()
    ours_rate = args.changes / ours_s
    native_rate = args.changes / native_s
    naive_rate = naive_n / naive_s
    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    print(f"backlog: {args.changes:,} single-row transactions over {args.users:,} users' data")
    print("binlog of applied changes: " + ", ".join(
        f"{name} {'on' if on else 'off'}" for name, on in written.items())
        + f", naive applier {'on' if args.target_binlog else 'off (sql_log_bin = 0)'}")
    print(f"aurora-sync stream:  {ours_rate:10,.0f} row changes/s ({ours_s:.1f} s)")
    print(f"native replication:  {native_rate:10,.0f} row changes/s ({native_s:.1f} s)")
    print(f"naive applier:       {naive_rate:10,.0f} row changes/s ({naive_n:,} changes)")
    if args.reader_rounds:
        thread, process = replays["thread"], replays["process"]
        print("replays, reader in-process:  " + ", ".join(f"{r:,.0f}" for r in thread)
              + " row changes/s")
        print("replays, reader process:     " + ", ".join(f"{r:,.0f}" for r in process)
              + " row changes/s")
        print(f"reader process ratio: {statistics.median(process) / statistics.median(thread):.2f}x"
              " (median replay against median replay)")
    print(f"ratio vs native: {ours_rate / native_rate:.2f}x (goal >= 1.0x)")
    print(f"ratio vs naive:  {ours_rate / naive_rate:.1f}x (goal >= 20x)")
    if args.json:
        print(json.dumps({"bench": "stream", "changes": args.changes, "ours": ours_rate,
                          "native": native_rate, "naive": naive_rate,
                          "target_binlog": args.target_binlog}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
