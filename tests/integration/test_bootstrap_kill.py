"""`aurora-sync bootstrap` SIGKILLed at three random moments and restarted: it resumes at the
next chunk (same run, progress only grows, every row counted once) and the targets are exact.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_bootstrap_support import (
    differences,
    env_for,
    make_aurora,
    progress,
    settings_for,
    source_counts,
)

from sync.dev.localdb import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.failure]

CLI = [sys.executable, "-c", "from sync.cli import app; app()"]


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def copied(target: LocalServer) -> dict[str, int]:
    return {name: rows for _, name, rows, _, _ in progress(target)}


def test_killed_three_times_then_finishes_exact(source_server: LocalServer,
                                               target_server: LocalServer,
                                               tmp_path: Path) -> None:
    make_aurora(source_server)
    for name in ("bs_gateway", "bs_syllabus", "bs_subject", "bs_file", "bs_config", "bs_state"):
        target_server.execute(f"DROP DATABASE IF EXISTS `{name}`")
    # Slow enough (3,000 rows/s, 500-row chunks: about 10 s) for kills to land mid-table.
    env = {**os.environ, **env_for(source_server, target_server,
                                   AURORA_SYNC_CHUNK_SIZE="500",
                                   AURORA_SYNC_MAX_ROWS_PER_SECOND="3000")}
    init = subprocess.run([*CLI, "init"], env=env, cwd=tmp_path, capture_output=True,
                          check=False, timeout=60)
    assert init.returncode == 0, init.stdout + init.stderr

    rng = random.Random()
    before: dict[str, int] = {}
    partial = 0
    for _ in range(3):
        proc = cli(["bootstrap"], env, tmp_path)
        # Killed at a random moment once this run has committed a chunk (a start takes a
        # second or more, longer on a loaded machine).
        deadline = time.monotonic() + 30
        while sum(copied(target_server).values()) <= sum(before.values()) \
                and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            out = proc.communicate()[0].decode().splitlines()
            pytest.fail("the bootstrap ended before it could be killed: "
                        + "\n".join(x for x in out if "bootstrap.chunk" not in x)[-3000:])
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        now = copied(target_server)
        # Progress never goes back: a restart continued, it did not begin again.
        assert all(now.get(name, 0) >= rows for name, rows in before.items()), (before, now)
        total = sum(now.values())
        partial += 0 < total < sum(source_counts(source_server).values())
        before = now
    assert partial >= 2
    runs = target_server.execute("SELECT id, state FROM bs_state.bootstrap_run")
    assert len(runs) == 1 and runs[0][1] == "running"

    final = cli(["bootstrap"], env, tmp_path)
    out = final.communicate(timeout=120)[0].decode()
    assert final.returncode == 0, out
    assert "resumed_from" in out

    runs = target_server.execute("SELECT id, state FROM bs_state.bootstrap_run")
    assert len(runs) == 1 and runs[0][1] == "done"
    # Each row was counted by exactly one committed chunk: never copied twice, never skipped.
    by_table: dict[str, int] = {}
    for name, rows in copied(target_server).items():
        table = name.split("[")[0]
        by_table[table] = by_table.get(table, 0) + rows
    assert by_table == source_counts(source_server)
    assert differences(settings_for(source_server, target_server)) == []
