"""The demo's live part: data, a write load, the daemon, its status, and the catch-up.

Each function is a demo step (see :data:`sync.dev.demo.STEPS`): it runs what a user runs —
the ``aurora-sync`` command in a subprocess with the demo's env file — and returns a one-line
summary of what it saw.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from sync.source.position import current_position
from sync.state import StateStore

if TYPE_CHECKING:
    from sync.dev.demo import Demo

DEMO_USERS = 400
LOAD_RATE = 40.0


def aurora_sync(demo: Demo, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real command line with the demo's env file."""
    assert demo.env_file is not None
    result = subprocess.run(  # noqa: S603
        ["aurora-sync", "--env-file", str(demo.env_file), *args],  # noqa: S607
        capture_output=True, text=True, check=False, env=_clean_env(),
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"aurora-sync {' '.join(args)} exited {result.returncode}:\n"
                           f"{result.stdout}{result.stderr}")
    return result


def _clean_env() -> dict[str, str]:
    # The env file is the whole configuration: nothing from the caller's shell leaks in.
    prefixes = ("SOURCE_DB_", "TIDB_", "AURORA_SYNC_")
    return {k: v for k, v in os.environ.items()
            if not k.startswith(prefixes) and not k.endswith("_DB_NAME")}


def generate_data(demo: Demo) -> str:
    source, _ = demo.servers
    stats = generate(source.connect, database="aurora", users=DEMO_USERS, seed=1)
    return (f"{stats.total_rows:,} rows ({', '.join(f'{t} {n:,}' for t, n in stats.rows.items())}) "
            f"in {stats.seconds:.1f}s")


def start_load(demo: Demo) -> str:
    source, _ = demo.servers
    demo.load = WriteLoad(source.connect, database="aurora", seed=2, rate=LOAD_RATE).start()
    return (f"{LOAD_RATE:.0f} transactions/s of inserts, updates, deletes, key changes, "
            "cascading deletes and file URL changes, from now until the catch-up step")


def start_daemon(demo: Demo) -> str:
    assert demo.env_file is not None
    log_path = demo.workdir / "daemon.log"
    # The child holds its own copy of the descriptor; ours is closed at once.
    with log_path.open("w") as log:
        demo.daemon = subprocess.Popen(  # noqa: S603
            ["aurora-sync", "--env-file", str(demo.env_file), "run"],  # noqa: S607
            stdout=log, stderr=subprocess.STDOUT,
            env={**_clean_env(), "AURORA_SYNC_LOG_FORMAT": "json"},
        )
    url = f"http://{demo.settings().http_addr}/healthz"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if demo.daemon.poll() is not None:
            tail = "\n".join((demo.workdir / "daemon.log").read_text().splitlines()[-30:])
            raise RuntimeError(f"the daemon exited with {demo.daemon.returncode}:\n{tail}")
        if _healthy(url):
            return f"bootstrapped, streaming and healthy ({url}); log {log_path}"
        time.sleep(1)
    raise RuntimeError(f"the daemon did not become healthy in 300 s; see {log_path}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def show_status(demo: Demo) -> str:
    result = aurora_sync(demo, "status")
    demo.console.print(result.stdout, highlight=False, markup=False)
    return "aurora-sync status (the daemon's live figures included)"


def catch_up(demo: Demo) -> str:
    source, _ = demo.servers
    stats = demo.load.stop() if demo.load is not None else None
    with contextlib.closing(source.connect()) as conn:
        end = current_position(conn)
    settings = demo.settings()
    _, target = demo.servers
    store = StateStore(target.connect, settings.state_db, settings.pipeline)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 120:
            checkpoint = store.read_checkpoint()
            if checkpoint is not None and checkpoint.position >= end:
                waited = time.monotonic() - started
                done = f"{stats.committed:,} transactions written" if stats else "no load"
                return f"{done}; the stream applied up to {end} {waited:.1f}s after they stopped"
            time.sleep(0.2)
    finally:
        store.close()
    raise RuntimeError(f"the stream did not reach {end} within 120 s")


def stop_daemon(demo: Demo) -> str:
    if demo.daemon is None or demo.daemon.poll() is not None:
        return "not running"
    demo.daemon.send_signal(signal.SIGTERM)
    code = demo.daemon.wait(timeout=60)
    return f"SIGTERM: the open batch was committed, exit code {code}"
