"""The stream with its binlog reader in a child process (:mod:`sync.source.split`): the
reader process killed under load, and rows the stream's process refuses to decode. Both end
exact, through the pipeline's reconnect at its committed checkpoint."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sync.daemon import StreamRun
from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from sync.source import split
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import reader_processes
from tests.e2e.test_stream import assert_exact, seed_targets

pytestmark = pytest.mark.integration


def test_reader_process_killed_under_load_is_replaced_and_the_targets_end_exact(
        deployment_factory: Callable[..., Deployment]) -> None:
    d = deployment_factory("e2erp")
    assert d.settings.stream_reader == "process"
    generate(d.source_conn, database=d.source_db, users=60, seed=12, create=True)
    seed_targets(d)
    finish = d.start_stream(StreamRun(heartbeat_schema=None))
    killed: list[int] = []
    done = threading.Event()

    def kill_readers() -> None:
        # Twice, each time the reader that replaced the last one.
        while len(killed) < 2 and not done.is_set():
            for pid in reader_processes(os.getpid()):
                if pid not in killed:
                    time.sleep(0.3)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_readers, daemon=True)
    killer.start()
    load = WriteLoad(d.source_conn, database=d.source_db, seed=6)
    stats = load.run(transactions=400)
    killer.join(30)
    done.set()
    assert len(killed) == 2, killed
    end = d.source_position()
    d.wait_applied(end)
    result = finish()
    assert stats.committed > 300
    assert result.reconnects >= 2
    assert not reader_processes(os.getpid())  # the last reader went with the stream
    assert_exact(d)


def test_rows_the_stream_cannot_decode_are_read_in_process_from_the_checkpoint(
        deployment_factory: Callable[..., Deployment], monkeypatch: pytest.MonkeyPatch) -> None:
    d = deployment_factory("e2erf")
    generate(d.source_conn, database=d.source_db, users=40, seed=13, create=True)
    seed_targets(d)
    # The child still compiles its tables (it is another process): only the stream's
    # decoding refuses, as it would for bytes the compiled readers cannot take.
    refused: list[Any] = []

    def refuse(columns: Any, before: Any = None) -> None:
        refused.append(columns)

    monkeypatch.setattr(split, "compile_table", refuse)
    finish = d.start_stream(StreamRun(heartbeat_schema=None))
    load = WriteLoad(d.source_conn, database=d.source_db, seed=7)
    stats = load.run(transactions=200)
    d.wait_applied(d.source_position())
    result = finish()
    assert stats.committed > 150
    assert refused, "no rows event reached the stream's decoder"
    # One refusal moves the reader in-process for good: more would be a reconnect loop.
    assert result.reconnects == 1
    assert_exact(d)
