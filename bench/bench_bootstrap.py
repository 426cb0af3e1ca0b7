"""Bootstrap copy speed against `mysqldump --single-transaction aurora | mysql`, same data,
same servers, in one run; and the bootstrap's peak memory.

Two throwaway MariaDB servers (source and target) are started, aurora is filled with about
``--rows`` rows (sync.dev.generate), then for each worker count the targets are emptied and
``aurora-sync``'s bootstrap runs in a child process; its peak RSS is the peak of the summed
resident memory of that process and its copy worker processes, sampled every 50 ms. The
baseline dumps aurora and loads it unchanged into an empty database on the target server.
Ratio = bootstrap rows/s over dump|load rows/s (goal >= 1.0 while transforming)::

    python bench/bench_bootstrap.py --rows 1000000 --workers 1,2,4 [--render aurora,python]

Last, what the last bootstrap wrote is itself loaded into empty databases on the source
server, twice: by ``mysqldump | mysql`` (one stream, as the baseline), and by the server alone
(``LOAD DATA INFILE`` from files on the server's own disk, in as many sessions as the last
bootstrap had workers, each loading a contiguous key range of every table). The second is a
server's own cost of storing the mapped rows (more rows, more indexes than aurora's) with no
client and no aurora at all, by its fastest bulk path (no SQL to parse). A bootstrap also
reads and maps aurora on the same host, so its ratio stays below this one.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sync import schema
from sync.dev.generate import generate, users_for_rows
from sync.dev.localdb import LocalServer, start_server
from sync.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
DATABASES = ("gateway_db", "syllabus_db", "subject_db", "file_db", "config_db", "aurora_sync")

CHILD = """
import json, resource, sys, time
from bootstrap.progress import NullReporter
from bootstrap.run import run_bootstrap
from sync.settings import load_settings
settings = load_settings(env_file=None, **json.loads(sys.argv[1]))
started = time.perf_counter()
result = run_bootstrap(settings, workers=int(sys.argv[2]), reporter=NullReporter())
print(json.dumps({"rows": result.rows, "seconds": time.perf_counter() - started,
                  "own_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  / 1024}))
"""
SAMPLE_SECONDS = 0.05


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"none of {names} is installed")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, now (Linux /proc)."""
    total_kb, pending = 0, [pid]
    while pending:
        proc = Path("/proc") / str(pending.pop())
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
            for task in (proc / "task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while we looked
    return total_kb / 1024


def run_sampled(cmd: list[str]) -> tuple[str, float]:
    """``cmd``'s standard output and the peak of its process tree's summed RSS."""
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    peak = 0.0
    while True:
        try:
            out, err = child.communicate(timeout=SAMPLE_SECONDS)
            break
        except subprocess.TimeoutExpired:
            peak = max(peak, tree_rss_mb(child.pid))
    if child.returncode != 0:
        raise SystemExit(f"the bootstrap failed:\n{err[-3000:]}")
    return out, peak


def pipe_database(source: LocalServer, database: str, target: LocalServer, into: str) -> None:
    """mysqldump --single-transaction ``database`` | mysql into a new, empty ``into``."""
    target.execute(f"DROP DATABASE IF EXISTS `{into}`")
    target.execute(f"CREATE DATABASE `{into}`")

    def client(tool: list[str], server: LocalServer) -> tuple[list[str], dict[str, str]]:
        return ([*tool, "--no-defaults", "-h", "127.0.0.1", "-u", server.user, "-P",
                 str(server.port)], {**os.environ, "MYSQL_PWD": server.password})

    dump_cmd, dump_env = client([_tool("mariadb-dump", "mysqldump")], source)
    load_cmd, load_env = client([_tool("mariadb", "mysql")], target)
    dump = subprocess.Popen([*dump_cmd, "--single-transaction", database],
                            stdout=subprocess.PIPE, env=dump_env)
    subprocess.run([*load_cmd, into], stdin=dump.stdout, env=load_env, check=True)
    if dump.wait() != 0:
        raise SystemExit(f"mysqldump of {database} failed")


def dump_and_load(source: LocalServer, target: LocalServer) -> float:
    """Seconds for mysqldump --single-transaction aurora | mysql into an empty database."""
    started = time.perf_counter()
    pipe_database(source, "aurora", target, "dump_copy")
    return time.perf_counter() - started


SERVICE_DATABASES = ("gateway_db", "syllabus_db", "subject_db", "file_db")


def dump_and_load_targets(target: LocalServer, into: LocalServer) -> tuple[float, int]:
    """Seconds for mysqldump | mysql of what the bootstrap wrote (the service databases) into
    empty databases on the other server, and the rows: what storing the mapped rows costs a
    server by itself, the floor of any copy that writes them. Read from one server, written
    into the other, as the baseline is."""
    rows = 0
    started = time.perf_counter()
    for name in SERVICE_DATABASES:
        pipe_database(target, name, into, f"floor_{name}")
    seconds = time.perf_counter() - started
    for name in SERVICE_DATABASES:
        tables = into.execute("SELECT TABLE_NAME FROM information_schema.TABLES "
                              f"WHERE TABLE_SCHEMA = 'floor_{name}'")
        for (table,) in tables:
            counted = into.execute(f"SELECT COUNT(*) FROM `floor_{name}`.`{table}`")
            rows += int(str(counted[0][0]))
        into.execute(f"DROP DATABASE `floor_{name}`")
    return seconds, rows


def _service_tables(server: LocalServer) -> list[tuple[str, str, list[str]]]:
    """``(database, table, primary key columns)`` of every table of the service databases."""
    names = ", ".join(f"'{name}'" for name in SERVICE_DATABASES)
    tables = server.execute(f"SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                            f"WHERE TABLE_SCHEMA IN ({names}) ORDER BY 1, 2")
    out = []
    for database, table in tables:
        keys = server.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS "
                              "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                              "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
                              [database, table])
        out.append((str(database), str(table), [str(k) for (k,) in keys]))
    return out


def load_data_floor(target: LocalServer, into: LocalServer, sessions: int) -> tuple[float, int]:
    """Seconds for ``into``'s server alone to store what the bootstrap wrote, and the rows.

    Every service table is written by the target server to files (``SELECT ... INTO
    OUTFILE``, ``sessions`` contiguous key ranges each), outside the timing; then ``into``
    loads them into empty copies of the tables with ``LOAD DATA INFILE``, ``sessions``
    connections in parallel, each its own range of every table, largest tables first."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    workdir.chmod(0o777)  # the servers write and read it
    tables = _service_tables(target)
    loads: list[list[tuple[str, str]]] = [[] for _ in range(sessions)]
    rows = 0
    try:
        for database, table, key in tables:
            into.execute(f"CREATE DATABASE IF NOT EXISTS `floor_{database}`")
            ddl = str(target.execute(f"SHOW CREATE TABLE `{database}`.`{table}`")[0][1])
            with contextlib.closing(into.connect(f"floor_{database}")) as conn, \
                    conn.cursor() as cur:
                cur.execute(ddl)
            count = int(str(target.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")[0][0]))
            rows += count
            order = ", ".join(f"`{k}`" for k in key)
            for part in range(sessions):
                start, end = count * part // sessions, count * (part + 1) // sessions
                if end == start:
                    continue
                path = workdir / f"{database}.{table}.{part}.tsv"
                target.execute(f"SELECT * FROM `{database}`.`{table}` ORDER BY {order} "
                               f"LIMIT {end - start} OFFSET {start} INTO OUTFILE '{path}'")
                loads[part].append((f"`floor_{database}`.`{table}`", str(path)))

        def load(files: list[tuple[str, str]]) -> None:
            with contextlib.closing(into.connect()) as conn, conn.cursor() as cur:
                for table, path in sorted(files, key=lambda f: -Path(f[1]).stat().st_size):
                    cur.execute(f"LOAD DATA INFILE '{path}' INTO TABLE {table}")
                    conn.commit()

        started = time.perf_counter()
        with ThreadPoolExecutor(sessions) as pool:
            list(pool.map(load, loads))
        seconds = time.perf_counter() - started
        stored = sum(int(str(into.execute(f"SELECT COUNT(*) FROM `floor_{d}`.`{t}`")[0][0]))
                     for d, t, _ in tables)
        if stored != rows:
            raise SystemExit(f"LOAD DATA stored {stored:,} rows of {rows:,}")
    finally:
        for database in {d for d, _, _ in tables}:
            into.execute(f"DROP DATABASE IF EXISTS `floor_{database}`")
        shutil.rmtree(workdir, ignore_errors=True)
    return seconds, rows


def bootstrap_once(source: LocalServer, target: LocalServer, workers: int,
                   chunk_size: int, render: str = "aurora") -> dict[str, float]:
    values = {
        "source_host": "127.0.0.1", "source_port": source.port, "source_user": source.user,
        "source_password": source.password, "target_host": "127.0.0.1",
        "target_port": target.port, "target_user": target.user,
        "target_password": target.password, "mapping_file": str(ROOT / "config/mapping.yaml"),
        "chunk_size": chunk_size, "log_level": "warning", "bootstrap_render": render,
    }
    for name in DATABASES:
        target.execute(f"DROP DATABASE IF EXISTS `{name}`")
    schema.init_target(load_settings(env_file=None, **values))
    out, peak = run_sampled([sys.executable, "-c", CHILD, json.dumps(values), str(workers)])
    return {**json.loads(out.strip().splitlines()[-1]), "rss_mb": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--render", default="aurora",
                        help="comma-separated AURORA_SYNC_BOOTSTRAP_RENDER values to run")
    parser.add_argument("--buffer-pool", default="",
                        help="innodb_buffer_pool_size of both servers (default: the "
                             "throwaway servers' 256M)")
    args = parser.parse_args()
    # The bootstrap starts fresh worker processes: an installed package imports them from
    # bytecode, a checkout under PYTHONDONTWRITEBYTECODE=1 would compile them every time.
    for package in ("sync", "bootstrap"):
        compileall.compile_dir(ROOT / package, quiet=1)
    options = {"innodb_buffer_pool_size": args.buffer_pool} if args.buffer_pool else None
    source = start_server("bench-src", server_id=901, options=options)
    target = start_server("bench-tgt", server_id=902, options=options)
    try:
        stats = generate(source.connect, database="aurora", users=users_for_rows(args.rows),
                         seed=1, create=True)
        rows = stats.total_rows
        print(f"aurora: {rows:,} rows {stats.rows}")
        dump_seconds = dump_and_load(source, target)
        dump_rate = rows / dump_seconds
        print(f"mysqldump --single-transaction | mysql: {dump_seconds:.1f}s, "
              f"{dump_rate:,.0f} rows/s")
        seconds, last_workers = 0.0, 1
        for render in args.render.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                run = bootstrap_once(source, target, workers, args.chunk_size, render)
                rate = run["rows"] / run["seconds"]
                seconds, last_workers = run["seconds"], workers
                print(f"bootstrap render={render} workers={workers} chunk={args.chunk_size}: "
                      f"{run['rows']:,.0f} rows in {run['seconds']:.1f}s, {rate:,.0f} rows/s, "
                      f"ratio {rate / dump_rate:.2f}x, peak RSS {run['rss_mb']:.0f} MB (all "
                      f"processes; coordinator {run['own_rss_mb']:.0f} MB, largest worker "
                      f"{run['worker_rss_mb']:.0f} MB)")
        floor, stored = dump_and_load_targets(target, source)
        print(f"mysqldump | mysql of what the last bootstrap wrote ({stored:,} rows; "
              f"what storing them costs a server): {floor:.1f}s; the last bootstrap took "
              f"{seconds / floor:.2f}x that")
        alone, stored = load_data_floor(target, source, last_workers)
        print(f"LOAD DATA INFILE of what the last bootstrap wrote ({stored:,} rows), by the "
              f"server alone in {last_workers} sessions: {alone:.1f}s, ratio "
              f"{rows / alone / dump_rate:.2f}x of the baseline with no aurora and no client; "
              f"the last bootstrap took {seconds / alone:.2f}x that")
    finally:
        source.stop()
        target.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
