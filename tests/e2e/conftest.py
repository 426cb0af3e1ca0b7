"""End-to-end fixtures: aurora on the throwaway source, the service databases on the target.

Each test module gets its own physical database names (prefix), so modules sharing the
session's servers never see each other's rows.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest

from sync import schema
from sync.daemon import StreamRun, stream
from sync.db import connect
from sync.dev.localdb import LocalServer
from sync.dev.localenv import local_settings
from sync.model import Position
from sync.pipeline import StreamResult
from sync.settings import Settings
from sync.source.position import current_position


def deployment_settings(source: LocalServer, target: LocalServer, prefix: str,
                        **overrides: object) -> Settings:
    return local_settings(source, target, prefix, **overrides)


@dataclass
class Deployment:
    source: LocalServer
    target: LocalServer
    settings: Settings
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def source_db(self) -> str:
        return self.settings.source_db

    def source_conn(self) -> pymysql.Connection:  # type: ignore[type-arg]
        """A connection without a current database (the generators name theirs)."""
        return connect(self.settings.source)

    def aurora_conn(self) -> pymysql.Connection:  # type: ignore[type-arg]
        """A connection whose current database is aurora."""
        return connect(self.settings.source, self.source_db)

    def target_conn(self) -> pymysql.Connection:  # type: ignore[type-arg]
        return connect(self.settings.target)

    def source_position(self) -> Position:
        with contextlib.closing(connect(self.settings.source)) as conn:
            return current_position(conn)

    def reset(self) -> None:
        names = [*self.settings.databases.values(), self.settings.state_db]
        for name in names:
            self.target.execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.source.execute(f"DROP DATABASE IF EXISTS `{self.source_db}`")
        schema.init_target(self.settings)

    def start_stream(self, run: StreamRun) -> Callable[[], StreamResult]:
        """Stream in a thread; the returned function stops it and returns its result."""
        box: dict[str, object] = {}

        def target() -> None:
            try:
                box["result"] = stream(self.settings, run)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                box["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()

        def finish(timeout: float = 120.0) -> StreamResult:
            run.stop.set()
            thread.join(timeout)
            assert not thread.is_alive(), "the stream did not stop"
            if "error" in box:
                raise box["error"]  # type: ignore[misc]
            return box["result"]  # type: ignore[return-value]

        return finish

    def sync_quietly(self, *, users: int, seed: int) -> None:
        """Generate aurora, bootstrap it and stream until the targets hold all of it."""
        from bootstrap.run import run_bootstrap  # noqa: PLC0415 - only the fixtures need it
        from sync.dev.generate import generate  # noqa: PLC0415

        generate(self.source_conn, database=self.source_db, users=users, seed=seed,
                 create=True)
        run_bootstrap(self.settings)
        finish = self.start_stream(StreamRun())
        self.wait_applied(self.source_position(), timeout=60)
        finish()

    def wait_applied(self, position: Position, timeout: float = 120.0) -> None:
        """Until the target's checkpoint is at or past ``position``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rows = self.target.execute(
                f"SELECT binlog_file, binlog_pos FROM `{self.settings.state_db}`.checkpoint "
                "WHERE pipeline = %s", [self.settings.pipeline])
            if rows:
                last = Position(str(rows[0][0]), int(rows[0][1]))  # type: ignore[call-overload]
                if last >= position:
                    return
            time.sleep(0.1)
        raise AssertionError(f"checkpoint {last} did not reach {position} in {timeout}s")


@pytest.fixture
def deployment_factory(source_server: LocalServer,
                       target_server: LocalServer) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def make(prefix: str, **overrides: object) -> Deployment:
        d = Deployment(source_server, target_server,
                       deployment_settings(source_server, target_server, prefix, **overrides))
        d.reset()
        made.append(d)
        return d

    yield make


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Makes ``tests.e2e.daemon.Daemon``s for a Deployment; ends any left running."""
    from tests.e2e.daemon import Daemon  # noqa: PLC0415 - daemon.py imports this module

    made: list[Daemon] = []

    def make(deployment: Deployment, **overrides: object) -> Daemon:
        daemon = Daemon(deployment, tmp_path / f"daemon{len(made)}", **overrides)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
