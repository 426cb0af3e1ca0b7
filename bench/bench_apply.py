"""Rows/s applied by SqlTargetWriter: 100k upserts in batches of 5,000 on a throwaway target.

    python bench/bench_apply.py [--rows 100000] [--batch 5000] [--profile]

Prints the build (pure) and apply (with I/O) rates separately so a regression shows where.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sync.apply.batcher import StatementLimits, plan
from sync.apply.writer import SqlTargetWriter
from sync.dev.localdb import start_server
from sync.model import Checkpoint, Position, Reset, TableRef, Upsert
from sync.settings import load_settings

SCHEMA = """
CREATE TABLE files (
    id BIGINT NOT NULL PRIMARY KEY, owner_id INT NOT NULL, name VARCHAR(255) NOT NULL,
    url VARCHAR(1024) NULL, size BIGINT NULL, checksum CHAR(64) NULL, price DECIMAL(10,2),
    created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""
FILES = TableRef("bench_data", "files")
UPDATES = ("owner_id", "name", "url", "size", "price", "updated_at")


def ops(n: int, start: int = 0) -> list[Upsert]:
    now = datetime(2024, 1, 1, 12, 0, 0, 123456)
    return [
        Upsert(FILES, ("id",), (k,),
               {"id": k, "owner_id": k % 1000, "name": f"file-{k}.pdf",
                "url": f"https://cdn.example/{k}/file-{k}.pdf", "size": k * 7,
                "checksum": None, "price": Decimal("9.99"), "created_at": now,
                "updated_at": now},
               UPDATES, (Reset("url", {"checksum": None}),))
        for k in range(start, start + n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    data = ops(args.rows)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]

    t0 = time.perf_counter()
    for b in batches:
        plan(b, lambda d: d, StatementLimits(max_rows=args.batch))
    build = time.perf_counter() - t0
    print(f"build only: {args.rows / build:,.0f} rows/s ({build:.2f}s)")

    with start_server("bench-apply", server_id=901) as server:
        server.execute("CREATE DATABASE bench_data")
        server.execute("CREATE DATABASE bench_state")
        server.run_script(SCHEMA, "bench_data")
        server.run_script(Path("schemas/state.sql").read_text(), "bench_state")
        settings = load_settings(env_file=None, target_host=server.host,
                                 target_port=server.port, target_user=server.user,
                                 target_password=server.password, state_db="bench_state",
                                 batch_max_rows=args.batch)
        writer = SqlTargetWriter(settings)
        profiler = cProfile.Profile() if args.profile else None
        for label in ("insert", "update"):
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            for i, b in enumerate(batches):
                writer.apply(b, Checkpoint(Position("binlog.000001", i + 4)))
            if profiler:
                profiler.disable()
            took = time.perf_counter() - t0
            print(f"apply ({label}s): {args.rows / took:,.0f} rows/s ({took:.2f}s)")
        writer.close()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
