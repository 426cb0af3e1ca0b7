"""Session-wide throwaway MariaDB servers: one as the aurora source, one as the target.

No test touches the machine's own MariaDB on port 3306.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from sync.dev.load import RunningLoad, WriteLoad
from sync.dev.localdb import LocalServer, start_server

# The bad_input fixture and the hooks that write docs/bad-inputs.md's records.
pytest_plugins = ["tests.bad_input"]


@pytest.fixture(scope="session")
def source_server() -> Iterator[LocalServer]:
    server = start_server("source", server_id=101)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def target_server() -> Iterator[LocalServer]:
    server = start_server("target", server_id=201)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts from structlog's defaults: a command a test ran configures logging
    for the whole process (its level, its output), which must not leak into the next test."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_aurora_sync", False):
            root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_write_load_outlives_its_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that fails before stopping its write load would leave it writing into the
    session's shared source server, and every later test reading that server would see
    positions move under it: the load is stopped when its test ends."""
    started: list[RunningLoad] = []
    start = WriteLoad.start

    def recorded(self: WriteLoad, *args: Any, **kwargs: Any) -> RunningLoad:
        running = start(self, *args, **kwargs)
        started.append(running)
        return running

    monkeypatch.setattr(WriteLoad, "start", recorded)
    yield
    for running in started:
        running.request_stop()
    for running in started:
        # The test already failed where it left its load running: its error is the one.
        with contextlib.suppress(Exception):
            running.wait(30)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No aurora-sync setting from the calling shell reaches the test."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("SOURCE_DB_", "TIDB_", "AURORA_SYNC_")) or \
                upper.endswith("_DB_NAME"):
            monkeypatch.delenv(name)
