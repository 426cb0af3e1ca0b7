"""`aurora-sync validate` speed against a plain `CHECKSUM TABLE` of the same tables on both
servers, same data, one run.

Two throwaway MariaDB servers are started, aurora is filled with about ``--rows`` rows
(sync.dev.generate) and bootstrapped into the service databases; then the baseline runs
``CHECKSUM TABLE`` over aurora's tables on the source and over the mapped target tables on the
target (one after the other, as a person would), and validate compares everything. Ratio =
validate seconds over baseline seconds (goal <= 2.0)::

    python bench/bench_validate.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import time

from bootstrap.progress import NullReporter
from bootstrap.run import run_bootstrap
from sync import schema
from sync.dev.generate import generate, users_for_rows
from sync.dev.localdb import LocalServer, start_server
from sync.mapping.resolve import load_spec
from sync.settings import Settings, load_settings
from sync.validate import ValidateOptions, validate


def settings_for(source: LocalServer, target: LocalServer) -> Settings:
    return load_settings(
        env_file=None, SOURCE_DB_HOST=source.host, SOURCE_DB_PORT=source.port,
        SOURCE_DB_USER=source.user, SOURCE_DB_PASSWORD=source.password,
        SOURCE_DB_NAME="aurora", TIDB_HOST=target.host, TIDB_PORT=target.port,
        TIDB_USER=target.user, TIDB_PASSWORD=target.password, AURORA_SYNC_LOG_LEVEL="warning",
    )


def checksum_tables(server: LocalServer, tables: list[str]) -> float:
    started = time.perf_counter()
    server.execute("CHECKSUM TABLE " + ", ".join(tables))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    with start_server("bench-src", server_id=11) as source, \
            start_server("bench-tgt", server_id=12) as target:
        settings = settings_for(source, target)
        stats = generate(source.connect, database="aurora", users=users_for_rows(args.rows),
                         seed=1, create=True)
        schema.init_target(settings)
        run_bootstrap(settings, reporter=NullReporter())
        spec = load_spec(settings)
        source_tables = [f"aurora.`{t}`" for t in spec.source_tables()]
        target_tables = [f"`{settings.database(t.ref.database)}`.`{t.ref.table}`"
                         for t in spec.targets()]
        baseline = min(checksum_tables(source, source_tables)
                       + checksum_tables(target, target_tables) for _ in range(args.repeat))
        runs = []
        for _ in range(args.repeat):
            # No daemon runs here: the checkpoint stays at the bootstrap's start, so no wait.
            report = validate(settings, ValidateOptions(chunk_size=args.chunk_size,
                                                        settle_timeout=0))
            assert report.clean, report.summary()
            runs.append(report.seconds)
        best = min(runs)
        print(f"validate: {stats.total_rows:,} rows in {best:.1f}s "
              f"({stats.total_rows / best:,.0f} rows/s); CHECKSUM TABLE on both servers "
              f"{baseline:.2f}s; validate takes {best / baseline:.1f}x its time (goal <= 2x)")
        print(json.dumps({
            "rows": stats.total_rows, "checksum_table_s": round(baseline, 3),
            "validate_s": round(best, 3), "ratio": round(best / baseline, 2),
            "validate_rows_per_s": round(stats.total_rows / best),
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
