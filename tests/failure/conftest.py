"""Failure-test fixtures: the e2e deployments and daemons, servers of a module's own for the
tests that stop them, and the steps every failure test starts with.

A module that shuts a server down gets its own (``own_source`` / ``own_target``), so the
session's shared servers stay up for every other module.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest

from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from sync.dev.localdb import LocalServer, start_server
from sync.model import Position
from tests.e2e.conftest import Deployment, daemon_factory, deployment_settings
from tests.e2e.daemon import Daemon

__all__ = ["daemon_factory"]  # the e2e fixture, shared

_server_ids = itertools.count(301)
# Small, so that every step of a failure test stays quick on two cores.
USERS = 120
LOAD_RATE = 60.0


@pytest.fixture(scope="module")
def own_source() -> Iterator[LocalServer]:
    server = start_server("failure-source", server_id=next(_server_ids))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_target() -> Iterator[LocalServer]:
    server = start_server("failure-target", server_id=next(_server_ids))
    yield server
    server.stop()


def make_deployment(source: LocalServer, target: LocalServer, prefix: str,
                    **overrides: object) -> Deployment:
    d = Deployment(source, target, deployment_settings(source, target, prefix, **overrides))
    d.reset()
    return d


@pytest.fixture
def deployment_factory(source_server: LocalServer,
                       target_server: LocalServer) -> Callable[..., Deployment]:
    def make(prefix: str, *, source: LocalServer | None = None,
             target: LocalServer | None = None, **overrides: object) -> Deployment:
        return make_deployment(source or source_server, target or target_server, prefix,
                               **overrides)

    return make


def seed(d: Deployment, *, users: int = USERS, seed: int = 7) -> None:
    generate(d.source_conn, database=d.source_db, users=users, seed=seed, create=True)


def bootstrapped(d: Deployment, daemon: Daemon, *args: str) -> Daemon:
    """The daemon started on a quiet aurora and caught up with it: the failure under test
    then happens while streaming, not during the bootstrap."""
    daemon.start(*args)
    daemon.wait_http()
    daemon.wait_applied(d.source_position(), timeout=90)
    return daemon


def write_load(d: Deployment, *, seed: int, rate: float = LOAD_RATE) -> WriteLoad:
    return WriteLoad(d.source_conn, database=d.source_db, seed=seed, rate=rate)


def drain(d: Deployment, daemon: Daemon, timeout: float = 90.0) -> None:
    """Once the writers stopped: until the daemon applied everything aurora has, then stop
    it with SIGTERM (exit 0)."""
    daemon.wait_applied(d.source_position(), timeout=timeout)
    daemon.sigterm()
    code = daemon.wait_exit(60)
    assert code == 0, daemon.logs()[-3000:]


def check_lines(output: str, word: str) -> str:
    """The lines of `aurora-sync check`'s output that name ``word``, each with its fix."""
    lines = output.splitlines()
    shown = []
    for i, line in enumerate(lines):
        if word in line:
            shown.append(line)
            shown += [f for f in lines[i + 1:i + 2] if f.lstrip().startswith("fix:")]
    return "\n".join(shown)


def transactions_between(server: LocalServer, start: Position, end: Position) -> int:
    """Source transactions committed after ``start`` up to ``end`` (one binlog file)."""
    assert start.file == end.file, (start, end)
    events = server.execute(f"SHOW BINLOG EVENTS IN '{start.file}' FROM {int(start.pos)}")
    return sum(1 for event in events
               if event[2] == "Xid" and int(str(event[4])) <= end.pos)


_POSITION = re.compile(r"position=(?P<file>[^\s:,)]+):(?P<pos>\d+)")


def position_in(message: str) -> Position:
    """The ``position=FILE:POS`` an error names."""
    found = _POSITION.search(message)
    assert found is not None, message
    return Position(found["file"], int(found["pos"]))
