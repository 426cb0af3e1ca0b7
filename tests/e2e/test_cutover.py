"""`aurora-sync cutover` end to end: a daemon streaming under a write load, real freezes.

The application writes as an ordinary user (no SUPER / READ_ONLY ADMIN), as it would in
production; aurora-sync's own users are the servers' administrators.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from typer.testing import CliRunner

from bootstrap.run import run_bootstrap
from sync.cli import app
from sync.cutover import CutoverOptions, cutover
from sync.daemon import serve
from sync.db import connect
from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from sync.dev.localdb import LocalServer, free_port, start_server
from sync.errors import CutoverError
from sync.logging import configure_logging
from sync.pipeline import StreamResult
from sync.state import StateStore
from sync.validate import ValidateOptions, validate
from tests.e2e.conftest import Deployment, deployment_settings
from tests.integration.test_validate_support import env_file_for

pytestmark = pytest.mark.integration

APP_USER, APP_PASSWORD = "cut_app", "app-secret"


def app_connect(d: Deployment) -> Callable[[], pymysql.Connection[Any]]:
    def make() -> pymysql.Connection[Any]:
        return pymysql.connect(host=d.source.host, port=d.source.port, user=APP_USER,
                               password=APP_PASSWORD, database=d.source_db, autocommit=True)
    return make


def prepare(d: Deployment) -> None:
    generate(d.source_conn, database=d.source_db, users=20, seed=4, create=True)
    d.source.execute(f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY "
                     f"'{APP_PASSWORD}'")
    d.source.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{d.source_db}`.* TO "
                     f"'{APP_USER}'@'%'")
    run_bootstrap(d.settings)


class Daemon:
    """`aurora-sync run` after bootstrap, in a thread (sync.daemon.serve)."""

    def __init__(self, d: Deployment) -> None:
        # A CLI run earlier in the session bound the log output to its own, closed, stream.
        configure_logging(d.settings)
        self.stop = threading.Event()
        self.box: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._main, args=(d,), daemon=True)
        self.thread.start()
        store = StateStore(lambda: connect(d.settings.target), d.settings.state_db,
                           d.settings.pipeline)
        deadline = time.monotonic() + 60
        with contextlib.closing(store):
            while (state := store.read_state()) is None or state.state != "streaming":
                assert time.monotonic() < deadline, f"not streaming: {state}"
                assert self.thread.is_alive(), self.box
                time.sleep(0.2)

    def _main(self, d: Deployment) -> None:
        try:
            self.box["result"] = serve(d.settings, stop=self.stop)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            self.box["error"] = exc

    def join(self, timeout: float) -> StreamResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        assert "error" not in self.box, self.box
        return self.box["result"]  # type: ignore[no-any-return]


class Prober:
    """An application session inserting users every 20 ms: what aurora accepted, refused."""

    def __init__(self, d: Deployment) -> None:
        self.connect = app_connect(d)
        self.accepted: list[str] = []
        self.refused = 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            n = 0
            while not self.halt.wait(0.02):
                n += 1
                email = f"probe-{n}@example.test"
                try:
                    cur.execute("INSERT INTO users (email, password_hash, name) VALUES "
                                "(%s, 'x', 'probe')", (email,))
                    self.accepted.append(email)
                except pymysql.OperationalError as exc:
                    assert exc.args[0] == 1290, exc  # read-only: refused
                    self.refused += 1

    def finish(self) -> None:
        self.halt.set()
        self.thread.join(10)


def target_emails(d: Deployment) -> set[str]:
    rows = d.target.execute(f"SELECT email FROM `{d.settings.gateway_db}`.users "
                            "WHERE email LIKE 'probe-%%'")
    return {str(r[0]) for r in rows}


@pytest.fixture
def deployment(deployment_factory: Callable[..., Deployment]) -> Iterator[Deployment]:
    d = deployment_factory("cut", AURORA_SYNC_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    yield d
    d.source.execute("SET GLOBAL read_only = OFF")


def test_cutover_under_load_freezes_briefly_and_loses_nothing(deployment: Deployment,
                                                              tmp_path: Path) -> None:
    d = deployment
    prepare(d)
    daemon = Daemon(d)
    load = WriteLoad(app_connect(d), database=d.source_db, seed=9, rate=25).start()
    prober = Prober(d)
    time.sleep(2)
    env = env_file_for(d.settings, tmp_path / "cut.env")
    dry = CliRunner().invoke(app, ["--env-file", str(env), "cutover", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "lag" in dry.output

    report = cutover(d.settings, CutoverOptions(freeze="read-only", max_lag=10,
                                                drain_timeout=10))
    time.sleep(0.3)
    prober.finish()
    with contextlib.suppress(pymysql.OperationalError):  # its next write was refused: 1290
        load.stop()
    assert report.freeze_seconds is not None and report.freeze_seconds < 1.0, report
    assert prober.refused > 0, "no write was refused after the freeze"
    # Every probe aurora holds (the load deletes some users) reached the services.
    in_aurora = {str(r[0]) for r in d.source.execute(
        f"SELECT email FROM `{d.source_db}`.users WHERE email LIKE 'probe-%%'")}
    assert in_aurora and in_aurora <= set(prober.accepted)
    assert in_aurora == target_emails(d)
    daemon.join(30)
    assert "the daemon has stopped" in report.notes
    final = validate(d.settings, ValidateOptions(settle_timeout=1))
    assert final.clean, final.summary()
    store = StateStore(lambda: connect(d.settings.target), d.settings.state_db,
                       d.settings.pipeline)
    with contextlib.closing(store):
        state, record = store.read_state(), store.latest_cutover()
    assert state is not None and state.state == "cut_over"
    assert record is not None and record.state == "done" and record.final == report.final
    again = CliRunner().invoke(app, ["--env-file", str(env), "bootstrap"])
    assert again.exit_code == 2 and "handed the service databases" in again.output


@pytest.fixture
def own_target() -> Iterator[LocalServer]:
    server = start_server("cutover-target", server_id=301)
    yield server
    server.stop()


def test_target_down_during_drain_aborts_and_unfreezes(source_server: LocalServer,
                                                       own_target: LocalServer) -> None:
    d = Deployment(source_server, own_target, deployment_settings(
        source_server, own_target, "cutdown", AURORA_SYNC_HTTP_ADDR=f"127.0.0.1:{free_port()}"))
    d.reset()
    prepare(d)
    daemon = Daemon(d)
    waiting: dict[str, float] = {}

    def write_during_freeze() -> None:
        with contextlib.closing(app_connect(d)()) as conn, conn.cursor() as cur:
            started = time.monotonic()
            cur.execute("INSERT INTO users (email, password_hash, name) VALUES "
                        "('probe-frozen@example.test', 'x', 'probe')")
            waiting["seconds"] = time.monotonic() - started

    writer = threading.Thread(target=write_during_freeze, daemon=True)

    def on_step(step: str) -> None:
        if step == "drain":
            own_target.kill()
            writer.start()

    started = time.monotonic()
    with pytest.raises(CutoverError, match="did not apply the final position"):
        cutover(d.settings, CutoverOptions(freeze="lock", max_lag=10, drain_timeout=3),
                on_step)
    assert time.monotonic() - started < 15
    writer.join(10)
    assert daemon.thread.is_alive(), daemon.box
    # The write waited on the lock for the drain, then aurora accepted it.
    assert waiting.get("seconds", 0) >= 2.0, waiting
    own_target.start()
    d.wait_applied(d.source_position(), timeout=60)
    assert "probe-frozen@example.test" in target_emails(d)
    assert validate(d.settings, ValidateOptions(settle_timeout=5)).clean
    daemon.stop.set()
    daemon.join(30)
