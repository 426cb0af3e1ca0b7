"""Run every benchmark on throwaway local servers and write ``bench/results.md``.

Run: ``python bench/run.py --scale small`` (a few minutes) or ``--scale full`` (1,000,000+
rows and row events; tens of minutes). Each benchmark runs its baselines in the same
invocation on the same data and prints its own ratios; this script runs them one after the
other (never in parallel: they would measure each other), keeps every line that states a
goal or a ratio for the summary, and puts each benchmark's whole output below it. A PNG of
the lag over time is written beside the results when matplotlib is installed
(``pip install -e '.[bench]'``). Benchmarks are never part of the test suite's pass/fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The stream runs twice: with every applier's store writing no binlog of what it applies
# (the replica's default), and with aurora-sync's target binlogging its writes, as the
# benchmark had it before (bench_stream.py's text).
SCALES: dict[str, list[tuple[str, list[str]]]] = {
    "small": [
        ("bench_mapping.py", ["--changes", "100000", "--repeat", "3"]),
        ("bench_apply.py", []),
        ("bench_binlog_read.py", ["50000", "500"]),
        ("bench_stream.py", ["--changes", "50000", "--users", "500", "--reader-rounds", "1"]),
        ("bench_stream.py", ["--changes", "50000", "--users", "500", "--target-binlog"]),
        ("bench_bootstrap.py", ["--rows", "100000"]),
        ("bench_validate.py", ["--rows", "100000"]),
        ("bench_lag.py", ["--seconds", "20", "--sysbench", "--cutover", "--chart", "LAG_PNG"]),
    ],
    "full": [
        ("bench_mapping.py", ["--changes", "200000", "--repeat", "3"]),
        ("bench_apply.py", []),
        ("bench_binlog_read.py", ["200000", "2000"]),
        ("bench_stream.py", ["--changes", "1000000", "--users", "5000", "--reader-rounds", "1"]),
        ("bench_stream.py", ["--changes", "1000000", "--users", "5000", "--target-binlog"]),
        # Servers with room for the data set (about 1 GB with the targets), as production
        # servers have: at the throwaway servers' 256M the random file ids of the targets
        # make the copy wait on page reads (bench/notes.md has both).
        ("bench_bootstrap.py", ["--rows", "1000000", "--workers", "2,3", "--render",
                                "aurora,python", "--buffer-pool", "2G"]),
        ("bench_validate.py", ["--rows", "1000000"]),
        ("bench_lag.py", ["--seconds", "60", "--sysbench", "--cutover", "--chart", "LAG_PNG"]),
    ],
}

KEYWORDS = ("ratio", "goal", "p99", "rows/s", "changes/s", "row events/s", "RSS",
            "binlog of applied changes")


@dataclass
class Outcome:
    name: str
    args: list[str]
    seconds: float
    returncode: int
    output: str

    def summary_lines(self) -> list[str]:
        return [line.strip() for line in self.output.splitlines()
                if any(k in line for k in KEYWORDS) and not line.lstrip().startswith("{")]


def run_one(name: str, args: list[str]) -> Outcome:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(HERE / name), *args],
        capture_output=True, text=True, check=False,
    )
    # Structured log lines go to stderr; the figures are on stdout.
    return Outcome(name, args, time.monotonic() - started, result.returncode,
                   result.stdout + (f"\n[stderr tail]\n{_tail(result.stderr)}"
                                    if result.returncode else ""))


def _cell(text: str) -> str:
    """A table cell: a pipe inside it would end the cell."""
    return text.replace("|", "\\|")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])


def versions() -> list[str]:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    server = subprocess.run([mariadbd, "--version"], capture_output=True, text=True,
                            check=False).stdout.strip()
    return [
        f"machine: {platform.machine()}, {_cores()} cores, {platform.system()} "
        f"{platform.release()}",
        f"Python {platform.python_version()}; mysql-replication "
        f"{metadata.version('mysql-replication')}; PyMySQL {metadata.version('PyMySQL')}",
        f"server: {server}",
    ]


def _cores() -> int:
    import os  # noqa: PLC0415 - only here

    return os.cpu_count() or 0


def write_results(path: Path, scale: str, outcomes: list[Outcome], chart: Path | None) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# aurora-sync benchmark results ({scale} scale, {now})", ""]
    lines += [f"- {v}" for v in versions()]
    lines += ["", "Each benchmark runs its baseline in the same invocation on the same data; "
              "the ratios below are aurora-sync / baseline (higher is better unless said).", ""]
    lines += ["| benchmark | args | figure | exit | seconds |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        figures = "<br>".join(_cell(line) for line in outcome.summary_lines())
        shown_args = " ".join(Path(a).name if "/" in a else a for a in outcome.args)
        lines.append(f"| {outcome.name} | {shown_args} | {figures or '(no figures)'} | "
                     f"{outcome.returncode} | {outcome.seconds:.0f} |")
    if chart is not None and chart.exists():
        lines += ["", f"![lag over time]({chart.name})", ""]
    notes = HERE / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text(encoding="utf-8").strip(), ""]
    lines += ["", "## Full output", ""]
    for outcome in outcomes:
        lines += [f"### {outcome.name} {' '.join(outcome.args)}", "", "```",
                  outcome.output.strip(), "```", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--only", nargs="*", help="run only these benchmark files")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    chart = args.out.with_name("lag.png")
    outcomes = []
    for name, bench_args in SCALES[args.scale]:
        if args.only and name not in args.only:
            continue
        if not (HERE / name).exists():
            continue
        real_args = [str(chart) if a == "LAG_PNG" else a for a in bench_args]
        print(f"running {name} {' '.join(real_args)} ...", flush=True)
        outcome = run_one(name, real_args)
        print("\n".join(f"  {line}" for line in outcome.summary_lines()), flush=True)
        outcomes.append(outcome)
    write_results(args.out, args.scale, outcomes, chart)
    print(f"wrote {args.out}")
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
