"""End-to-end lag under a steady write load, and under sysbench writing as fast as it can.

Run: ``python bench/bench_lag.py [--seconds 60] [--rate 2000] [--sysbench] [--chart F.png]``

Lag is measured as the daemon measures it: a heartbeat row written on the source every
0.2 s (our clock, microseconds) is read back from the binlog, and its lag is taken when the
batch holding it has been committed on the target. Phase 1 writes ``rate`` row changes/s
(transactions of 20 single-row updates over syllabus and subjects, paced every 10 ms).
Phase 2 (``--sysbench``) runs ``sysbench oltp_write_only`` (4 threads) against a schema the
mapping copies as-is through a generic route. Phase 3 (``--cutover``) runs the daemon as
``aurora-sync run`` does (:func:`sync.daemon.serve`, in a thread), keeps an application
login (no SUPER) writing, samples the lag the daemon reports on ``/metrics``, and cuts over
with ``--freeze read-only``: the chart marks the write freeze. Prints p50/p99/max per phase;
``--chart`` draws lag over time (needs matplotlib: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bootstrap.run import run_bootstrap
from sync import schema
from sync.cutover import CutoverOptions, CutoverReport, cutover
from sync.daemon import StreamRun, serve, stream
from sync.db import connect
from sync.dev.generate import generate
from sync.dev.localdb import LocalServer, free_port, start_server
from sync.dev.localenv import ROOT, local_settings
from sync.monitor.heartbeat import HeartbeatWriter, ensure_heartbeat_table
from sync.settings import Settings

PREFIX = "bl"
SYSBENCH_DB = "sbtest"
APP_USER, APP_PASSWORD = "bench_app", "bench-app-local-only"


class Samples:
    """(seconds since start, lag, phase) per applied heartbeat."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.phase = "warmup"
        self.points: list[tuple[float, float, str]] = []
        self.freeze: tuple[float, float] | None = None  # seconds since start

    def applied(self, written: datetime, commit_ts: datetime) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        lag = (now - written).total_seconds()
        self.points.append((time.monotonic() - self.started, lag, self.phase))

    def add(self, lag: float) -> None:
        self.points.append((time.monotonic() - self.started, lag, self.phase))

    def now(self) -> float:
        return time.monotonic() - self.started

    def of(self, phase: str) -> list[float]:
        return [lag for _, lag, p in self.points if p == phase]


def beat(settings: Settings, stop: threading.Event) -> None:
    writer = HeartbeatWriter(lambda: connect(settings.source), settings.heartbeat_schema)
    while not stop.wait(0.2):
        writer.beat()


def steady(source: LocalServer, db: str, rate: int, seconds: float) -> int:
    """``rate`` row changes per second for ``seconds``; returns how many were written."""
    per_txn = 20
    interval = per_txn / rate
    written = 0
    with contextlib.closing(source.connect(database=db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT MAX(id) FROM syllabus")
        top = int(cur.fetchone()[0])  # type: ignore[index]
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < seconds:
            ids = [1 + (n * per_txn + i) * 7919 % top for i in range(per_txn)]
            cur.execute("BEGIN")
            cur.execute("UPDATE syllabus SET title = CONCAT('Steady ', %s) WHERE id IN %s",
                        (n, ids[: per_txn // 2]))
            cur.execute("UPDATE syllabus SET content = CONCAT('rev ', %s) WHERE id IN %s",
                        (n, ids[per_txn // 2:]))
            cur.execute("COMMIT")
            written += per_txn
            n += 1
            delay = began + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return written


def daemon_lag(addr: str) -> float | None:
    """``aurora_sync_lag_seconds`` as the daemon's /metrics reports it."""
    with contextlib.suppress(OSError), \
            urllib.request.urlopen(f"http://{addr}/metrics", timeout=1) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("aurora_sync_lag_seconds "):
                return float(line.split()[1])
    return None


def app_load(source: LocalServer, db: str, rate: int, halt: threading.Event) -> dict[str, int]:
    """The application writing ``rate`` row changes/s as an ordinary login until ``halt``;
    counts writes accepted and refused (read-only)."""
    counts = {"accepted": 0, "refused": 0}
    with contextlib.closing(pymysql.connect(host=source.host, port=source.port, user=APP_USER,
                                            password=APP_PASSWORD, database=db,
                                            autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute("SELECT MAX(id) FROM syllabus")
        top = int(cur.fetchone()[0])  # type: ignore[index]
        n = 0
        while not halt.wait(10 / rate):
            n += 1
            try:
                cur.execute("UPDATE syllabus SET title = CONCAT('App ', %s) WHERE id IN %s",
                            (n, [1 + (n * 10 + i) * 7919 % top for i in range(10)]))
                counts["accepted"] += 10
            except pymysql.OperationalError as exc:
                if exc.args[0] != 1290:  # read-only: refused, as the cutover means
                    raise
                counts["refused"] += 1
    return counts


def cutover_phase(settings: Settings, source: LocalServer, samples: Samples, rate: int,
                  seconds: float) -> tuple[CutoverReport, dict[str, int]]:
    """The daemon streaming under the application's load, then ``aurora-sync cutover``."""
    source.execute(f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'")
    source.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{settings.source_db}`.* TO "
                   f"'{APP_USER}'@'%'")
    stop, halt = threading.Event(), threading.Event()
    daemon = threading.Thread(target=serve, args=(settings,), kwargs={"stop": stop},
                              daemon=True)
    daemon.start()
    counts: dict[str, int] = {}

    def load() -> None:
        counts.update(app_load(source, settings.source_db, rate, halt))

    def sample() -> None:
        while not halt.wait(0.2):
            lag = daemon_lag(settings.http_addr)
            if lag is not None:
                samples.add(lag)

    threads = [threading.Thread(target=load, daemon=True),
               threading.Thread(target=sample, daemon=True)]
    try:
        samples.phase = "cutover"
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        report = cutover(settings, CutoverOptions(freeze="read-only", max_lag=5,
                                                  drain_timeout=15))
        ended = samples.now()
        samples.freeze = (ended - (report.freeze_seconds or 0), ended)
        time.sleep(1)
    finally:
        halt.set()
        stop.set()
        for thread in threads:
            thread.join(10)
        daemon.join(30)
    return report, counts


def sysbench_args(server: LocalServer, seconds: int) -> list[str]:
    return ["sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
            f"--mysql-port={server.port}", f"--mysql-user={server.user}",
            f"--mysql-password={server.password}", f"--mysql-db={SYSBENCH_DB}",
            "--tables=1", "--table-size=10000", "--threads=4", f"--time={seconds}"]


def ensure_sysbench() -> None:
    if shutil.which("sysbench"):
        return
    subprocess.run(["apt-get", "install", "-y", "-q", "sysbench"], check=True,
                   capture_output=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def chart(samples: Samples, path: Path) -> None:
    try:
        import matplotlib  # noqa: PLC0415 - optional, for the chart only
    except ImportError:
        # The figures above are the result; a missing chart must not fail the run.
        print(f"no chart at {path}: matplotlib is not installed (pip install -e '.[bench]')",
              file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(9, 4))
    for phase, colour in (("steady", "tab:blue"), ("sysbench", "tab:orange"),
                          ("warmup", "tab:gray"), ("cutover", "tab:green")):
        pts = [(t, lag) for t, lag, p in samples.points if p == phase]
        if pts:
            ax.plot([t for t, _ in pts], [lag for _, lag in pts], ".", ms=3, color=colour,
                    label=phase if phase != "cutover" else "daemon /metrics, then cutover")
    if samples.freeze:
        start, end = samples.freeze
        # Drawn at least a second wide: a sub-second freeze would not show at this scale.
        ax.axvspan(start, max(end, start + 1), color="tab:red", alpha=0.3,
                   label=f"write freeze ({end - start:.2f} s)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("end-to-end lag (s)")
    ax.set_title("aurora-sync lag: heartbeat written on aurora → committed on the target")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def mapping_with_route(workdir: Path) -> Path:
    text = (ROOT / "config" / "mapping.yaml").read_text()
    route = f'routes:\n  - {{schema: {SYSBENCH_DB}, database: {SYSBENCH_DB}, tables: "*"}}'
    path = workdir / "mapping.yaml"
    path.write_text(text.replace("routes: []", route))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--sysbench", action="store_true")
    parser.add_argument("--cutover", action="store_true",
                        help="end with the daemon under an application load and a cutover")
    parser.add_argument("--chart", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aurora-sync-bench-lag-"))
    source = start_server("lag-source", server_id=21)
    target = start_server("lag-target", server_id=22)
    samples = Samples()
    stop = threading.Event()
    try:
        settings = local_settings(source, target, PREFIX,
                                  AURORA_SYNC_MAPPING=str(mapping_with_route(workdir)),
                                  AURORA_SYNC_HTTP_ADDR=f"127.0.0.1:{free_port()}")
        schema.init_target(settings)
        if args.sysbench:
            ensure_sysbench()
            for server in (source, target):
                server.execute(f"CREATE DATABASE IF NOT EXISTS {SYSBENCH_DB}")
                subprocess.run([*sysbench_args(server, 1), "prepare"], check=True,
                               capture_output=True)
            target.execute(f"TRUNCATE {SYSBENCH_DB}.sbtest1")
        generate(lambda: connect(settings.source), database=settings.source_db,
                 users=args.users, seed=1, create=True)
        with contextlib.closing(connect(settings.source)) as conn:
            ensure_heartbeat_table(conn, settings.heartbeat_schema)
        run_bootstrap(settings)
        streamer = threading.Thread(target=stream, args=(settings, StreamRun(
            stop=stop, heartbeat_schema=settings.heartbeat_schema,
            on_heartbeat=samples.applied)), daemon=True)
        streamer.start()
        threading.Thread(target=beat, args=(settings, stop), daemon=True).start()
        time.sleep(3)
        samples.phase = "steady"
        written = steady(source, settings.source_db, args.rate, args.seconds)
        achieved = written / args.seconds
        if args.sysbench:
            samples.phase = "sysbench"
            subprocess.run([*sysbench_args(source, int(args.seconds)), "run"],
                           check=True, capture_output=True)
            samples.phase = "drain"
            time.sleep(5)
        stop.set()
        streamer.join(60)
        handed_over = None
        if args.cutover:
            handed_over = cutover_phase(settings, source, samples, args.rate // 4, 10)
    finally:
        stop.set()
        source.stop()
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    steady_lags = samples.of("steady")
    print(f"steady load: {achieved:,.0f} row changes/s for {args.seconds:.0f}s; lag p50 "
          f"{percentile(steady_lags, 0.5):.3f}s p99 {percentile(steady_lags, 0.99):.3f}s "
          f"max {max(steady_lags, default=float('nan')):.3f}s ({len(steady_lags)} samples; "
          "goal p99 < 1 s)")
    result = {"bench": "lag", "rate": achieved, "p50": percentile(steady_lags, 0.5),
              "p99": percentile(steady_lags, 0.99)}
    if args.sysbench:
        sb = samples.of("sysbench")
        print(f"sysbench oltp_write_only: lag p50 {percentile(sb, 0.5):.3f}s p99 "
              f"{percentile(sb, 0.99):.3f}s max {max(sb, default=float('nan')):.3f}s "
              f"(goal: bounded, p99 < 5 s); mean {statistics.fmean(sb) if sb else 0:.3f}s")
        result.update(sysbench_p50=percentile(sb, 0.5), sysbench_p99=percentile(sb, 0.99))
    if handed_over is not None:
        report, counts = handed_over
        lags = samples.of("cutover")
        print(f"cutover under an application load of {args.rate // 4:,} row changes/s: write "
              f"freeze {report.freeze_seconds or 0:.3f}s (goal < 1 s), drain "
              f"{report.drain_seconds or 0:.3f}s, {counts.get('refused', 0)} writes refused "
              f"while frozen; daemon-reported lag before it p50 {percentile(lags, 0.5):.3f}s "
              f"p99 {percentile(lags, 0.99):.3f}s")
        result.update(freeze_seconds=report.freeze_seconds, drain_seconds=report.drain_seconds)
    if args.chart:
        chart(samples, args.chart)
        print(f"chart: {args.chart}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
