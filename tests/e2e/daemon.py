"""`aurora-sync run` as an operator runs it: a subprocess reading an env file, watched over
HTTP and through the target's checkpoint, stopped by signals.

Also the yardsticks the daemon tests share: the exact comparison of the targets with aurora
mapped from scratch, row counts included, and a reader of the checkpoint.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pymysql
from prometheus_client.parser import text_string_to_metric_families
from pydantic import AliasChoices, SecretStr

from sync.apply.sql import quote
from sync.dev.demo import write_env_file
from sync.dev.localdb import free_port
from sync.mapping.resolve import load_spec
from sync.model import Position
from sync.settings import Settings
from sync.state import PipelineState, StateStore
from sync.testing.reference import diff_targets, expected_state
from tests.e2e.conftest import Deployment

CLI = Path(sys.executable).with_name("aurora-sync")
# The environment wins over --env-file: the daemon must see only the file.
_SETTING_PREFIXES = ("SOURCE_DB_", "TIDB_", "AURORA_SYNC_", "GATEWAY_DB_", "SYLLABUS_DB_",
                     "SUBJECT_DB_", "FILE_DB_", "CONFIG_DB_")


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting under the environment variable it is read from."""
    values: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        value = getattr(settings, name)
        if not isinstance(alias, AliasChoices) or value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        values[str(alias.choices[0])] = str(value)
    return values


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}


def read_checkpoint(d: Deployment) -> Position | None:
    rows = d.target.execute(
        f"SELECT binlog_file, binlog_pos FROM {quote(d.settings.state_db)}.checkpoint "
        "WHERE pipeline = %s", [d.settings.pipeline])
    if not rows:
        return None
    return Position(str(rows[0][0]), int(str(rows[0][1])))


def read_state(d: Deployment) -> PipelineState | None:
    store = StateStore(d.target_conn, d.settings.state_db, d.settings.pipeline)
    try:
        return store.read_state()
    finally:
        store.close()


def target_differences(d: Deployment) -> list[str]:
    """diff_targets against aurora mapped from scratch, plus a row count per target table."""
    spec = load_spec(d.settings)
    with contextlib.closing(d.aurora_conn()) as src, contextlib.closing(d.target_conn()) as tgt:
        expected = expected_state(src, spec, d.source_db)
        problems = diff_targets(expected, tgt, spec, d.settings.database)
        with tgt.cursor() as cur:
            for table in spec.targets():
                physical = d.settings.database(table.ref.database)
                cur.execute(f"SELECT COUNT(*) FROM {quote(physical)}.{quote(table.ref.table)}")
                row = cur.fetchone()
                have = int(row[0]) if row else 0
                want = len(expected.tables.get(table.ref, {}))
                if have != want:
                    problems.append(f"{table.ref}: {have} rows, expected {want}")
    return problems


def assert_exact(d: Deployment) -> None:
    problems = target_differences(d)
    assert problems == [], "\n".join(problems[:40])


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    """A process's state letter and parent pid from /proc, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces, so split after its parenthesis.
    state, ppid = stat.rpartition(")")[2].split()[:2]
    return state, int(ppid)


def reader_processes(parent: int) -> list[int]:
    """The binlog reader processes (``python -m sync.source.split``) ``parent`` started and
    that still run (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        known = _state_and_parent(entry.name)
        if known is None or known[0] == "Z" or known[1] != parent:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"sync.source.split" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Still running (a zombie counts as gone)."""
    known = _state_and_parent(pid)
    return known is not None and known[0] != "Z"


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen in {timeout:.0f}s")


class Daemon:
    """One pipeline's daemon, started and stopped as often as a test needs.

    ``overrides`` are environment variable names and values written into the env file over
    the deployment's settings (``source_port`` points the daemon at a proxy, for example).
    """

    def __init__(self, deployment: Deployment, workdir: Path, **overrides: object) -> None:
        self.deployment = deployment
        self.workdir = workdir
        self.port = free_port()
        values = settings_env(deployment.settings)
        values.update({
            "AURORA_SYNC_HTTP_ADDR": f"127.0.0.1:{self.port}",
            "AURORA_SYNC_LOG_FORMAT": "json",
        })
        values.update({k: str(v) for k, v in overrides.items()})
        workdir.mkdir(parents=True, exist_ok=True)
        self.env_file = write_env_file(workdir / "daemon.env", values)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._out: Path | None = None
        self._err: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- the process ------------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [str(CLI), "--env-file", str(self.env_file), *args]

    def start(self, *args: str) -> Daemon:
        assert not self.running, "the daemon already runs"
        self.runs += 1
        self._out = self.workdir / f"run{self.runs}.out"
        self._err = self.workdir / f"run{self.runs}.err"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.process = subprocess.Popen(
                self.command("run", *args), stdout=out, stderr=err, env=clean_environ())
        return self

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Another aurora-sync command with the daemon's env file."""
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout,
            env=clean_environ(), check=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigterm(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def sigkill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon still runs after {timeout:.0f}s\n"
                                 f"{self.logs()[-3000:]}") from None

    def stop(self) -> None:
        """End a daemon the test left running (teardown)."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stdout(self) -> str:
        return self._out.read_text(errors="replace") if self._out else ""

    def error(self) -> str:
        """The error the last run printed before it exited (``error: ...`` and its fix), as
        an operator reads it; empty when there was none."""
        text = self._err.read_text(errors="replace") if self._err else ""
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines)
                  if line.startswith(("error: ", "unexpected error: "))]
        if not starts:
            return ""
        shown = [lines[starts[-1]]]
        shown += itertools.takewhile(lambda line: line.startswith("  "), lines[starts[-1] + 1:])
        return "\n".join(shown)

    def logs(self) -> str:
        """The last run's stdout and stderr (structlog writes to stderr)."""
        err = self._err.read_text(errors="replace") if self._err else ""
        return f"{self.stdout()}{err}"

    def _alive(self) -> None:
        if not self.running:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"the daemon exited with {code}:\n{self.logs()[-4000:]}")

    # --- watching it ------------------------------------------------------------------------

    def wait_http(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + "/healthz", timeout=1.0)
                return
            time.sleep(0.1)
        raise AssertionError(f"the daemon did not listen in {timeout:.0f}s\n{self.logs()}")

    def checkpoint(self) -> Position | None:
        return read_checkpoint(self.deployment)

    def wait_applied(self, position: Position, timeout: float = 120.0) -> Position:
        """Until the target's checkpoint is at or past ``position``; fails at once if the
        daemon exits meanwhile."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self._alive()
            with contextlib.suppress(pymysql.MySQLError):
                last = self.checkpoint()
            if last is not None and last >= position:
                return last
            time.sleep(0.1)
        raise AssertionError(f"checkpoint {last} did not reach {position} in {timeout:.0f}s\n"
                             f"{self.logs()[-3000:]}")

    def scrape(self, path: str, timeout: float = 5.0) -> httpx.Response:
        try:
            return httpx.get(self.url + path, timeout=timeout)
        except httpx.TransportError:
            self._alive()  # a daemon that exited says why, not "connection refused"
            raise

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics by (name, sorted labels)."""
        text = self.scrape("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def metric_sum(self, name: str) -> float:
        return sum(v for (n, _), v in self.metrics().items() if n == name)
