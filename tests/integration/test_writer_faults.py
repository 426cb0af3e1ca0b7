"""The writer under injected and real failures: retry what TiDB says to retry, halt on the
rest, and never leave a half-applied batch or a checkpoint ahead of the data."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog
from test_writer_support import (
    Faults,
    clear,
    faulty_connect,
    prepare,
    read_tables,
    writer_settings,
)

from sync.apply.retry import RETRYABLE_CODES, RetryPolicy
from sync.apply.sql import UPSERT, Statement, row_values, upsert_head
from sync.apply.writer import SqlTargetWriter
from sync.dev.localdb import LocalServer, start_server
from sync.errors import ApplyError, RetryableApplyError
from sync.model import Checkpoint, Position, TableRef, Upsert
from sync.state import TableProgress
from sync.testing.memtarget import MemoryTarget

pytestmark = pytest.mark.integration

DATA, STATE = "wf_data", "wf_state"
PEOPLE, PAIRS = TableRef(DATA, "people"), TableRef(DATA, "pairs")
BLANK = dict.fromkeys(("score", "data", "seen", "url", "checksum", "created"))
FAST = RetryPolicy(max_seconds=30, first_wait=0.01, max_wait=0.2)


def cp(n: int) -> Checkpoint:
    return Checkpoint(Position("binlog.000002", n), datetime(2024, 5, 1))


def batch(n: int) -> list[Upsert]:
    ops = []
    for k in range(n):
        person = {**BLANK, "id": k, "email": f"{k}@x", "name": "secret-value"}
        ops.append(Upsert(PEOPLE, ("id",), (k,), person, ("email", "name")))
        pair = {"a": k, "b": "x", "v": k, "note": None}
        ops.append(Upsert(PAIRS, ("a", "b"), (k, "x"), pair, ("v",)))
    return ops


def expected(ops: list[Upsert]) -> Any:
    memory = MemoryTarget()
    memory.apply(ops)
    return memory.snapshot()


@pytest.fixture(scope="module")
def prepared(target_server: LocalServer) -> LocalServer:
    prepare(target_server, DATA, STATE)
    return target_server


@pytest.fixture
def server(prepared: LocalServer) -> LocalServer:
    clear(prepared, DATA, STATE)
    return prepared


def faulty_writer(server: LocalServer, faults: Faults, policy: RetryPolicy = FAST,
                  **overrides: Any) -> SqlTargetWriter:
    settings = writer_settings(server, STATE, **overrides)
    return SqlTargetWriter(settings, connect=faulty_connect(settings, faults), policy=policy)


@pytest.mark.parametrize("code", sorted(RETRYABLE_CODES))
def test_a_retryable_error_mid_batch_applies_the_batch_once(server: LocalServer,
                                                           code: int) -> None:
    faults = Faults()
    # The second data statement fails, after the first ran in the same transaction.
    faults.raise_on("INSERT INTO `wf_data`.`pairs`", 1, code)
    writer = faulty_writer(server, faults)
    ops = batch(20)
    with structlog.testing.capture_logs() as logs:
        result = writer.apply(ops, cp(5))
    writer.close()
    assert result.retries == 1
    assert read_tables(server, DATA) == expected(ops)
    assert SqlTargetWriter(writer_settings(server, STATE)).read_checkpoint() == cp(5)
    retries = [e for e in logs if e["event"] == "apply.retry"]
    assert [e["code"] for e in retries] == [code]
    assert "secret-value" not in str(logs) and "@x" not in str(logs)


def test_a_retryable_error_at_commit_is_retried(server: LocalServer) -> None:
    faults = Faults()
    faults.raise_on("INSERT INTO `wf_state`.`checkpoint`", 1, 9007)
    writer = faulty_writer(server, faults)
    result = writer.apply(batch(3), cp(6))
    writer.close()
    assert result.retries == 1
    assert SqlTargetWriter(writer_settings(server, STATE)).read_checkpoint() == cp(6)


@pytest.mark.parametrize("code", [1366, 1062, 1146, 1105, 8004])
def test_any_other_error_halts_and_changes_nothing(server: LocalServer, code: int) -> None:
    plain = SqlTargetWriter(writer_settings(server, STATE))
    plain.apply(batch(2), cp(1))
    before = read_tables(server, DATA)
    faults = Faults()
    faults.raise_on("INSERT INTO `wf_data`.`pairs`", 1, code)
    writer = faulty_writer(server, faults)
    with pytest.raises(ApplyError) as caught:
        writer.apply(batch(10), cp(2))
    writer.close()
    assert not isinstance(caught.value, RetryableApplyError)
    assert f"error {code}" in caught.value.reason
    assert caught.value.table == "wf_data.pairs"
    assert read_tables(server, DATA) == before
    assert plain.read_checkpoint() == cp(1)
    plain.close()


def rendered(ops: list[Upsert]) -> list[Statement]:
    """``ops`` as statements rendered outside the writer (as bootstrap.literals does)."""
    out = []
    for target in (PEOPLE, PAIRS):
        mine = [op for op in ops if op.target == target]
        head, tail = upsert_head(mine[0], str)
        text = head + ",".join(row_values(op) for op in mine) + tail
        out.append(Statement(text.encode(), target, UPSERT, ()))
    return out


def progress_rows(server: LocalServer) -> list[tuple[object, ...]]:
    return server.execute(f"SELECT source_table, rows_copied FROM `{STATE}`.bootstrap_progress")


def test_rendered_statements_are_retried_and_commit_with_their_state(
        server: LocalServer) -> None:
    faults = Faults()
    faults.raise_on("INSERT INTO `wf_data`.`pairs`", 1, 9007)
    writer = faulty_writer(server, faults)
    ops = batch(5)
    result = writer.apply_statements(rendered(ops),
                                     state=[TableProgress(1, "people", (4,), 5, 1, True)])
    writer.close()
    assert result.retries == 1
    assert read_tables(server, DATA) == expected(ops)
    assert progress_rows(server) == [("people", 5)]


def test_rendered_statements_refused_change_nothing(server: LocalServer) -> None:
    faults = Faults()
    faults.raise_on("INSERT INTO `wf_data`.`pairs`", 1, 1366)
    writer = faulty_writer(server, faults, dead_letter=True)
    with pytest.raises(ApplyError) as caught:
        writer.apply_statements(rendered(batch(5)),
                                state=[TableProgress(1, "people", (4,), 5, 1, True)])
    writer.close()
    # The table is named; no row can be (the caller maps the chunk again to find it), and
    # nothing is dead-lettered.
    assert caught.value.table == "wf_data.pairs" and caught.value.key is None
    assert not isinstance(caught.value, RetryableApplyError)
    assert read_tables(server, DATA) == {}
    assert progress_rows(server) == []
    assert server.execute(f"SELECT COUNT(*) FROM `{STATE}`.dead_letter") == [(0,)]


def test_retrying_stops_after_the_time_budget(server: LocalServer) -> None:
    faults = Faults()
    for nth in range(1, 1000):
        faults.raise_on("INSERT INTO `wf_data`.`pairs`", nth, 1213, "Deadlock found")
    writer = faulty_writer(server, faults, RetryPolicy(max_seconds=0.5, first_wait=0.01,
                                                       max_wait=0.05))
    with pytest.raises(RetryableApplyError) as caught:
        writer.apply(batch(3), cp(7))
    writer.close()
    assert "1213" in caught.value.reason
    assert caught.value.position == cp(7).position
    assert read_tables(server, DATA) == {}


def test_a_killed_connection_is_reopened_and_the_batch_applied(server: LocalServer) -> None:
    faults = Faults()
    holder: dict[str, SqlTargetWriter] = {}

    def kill() -> None:
        thread = holder["writer"]._conn.thread_id()  # type: ignore[union-attr]
        server.execute(f"KILL CONNECTION {int(thread)}")

    faults.on("INSERT INTO `wf_data`.`pairs`", 1, kill)
    writer = holder["writer"] = faulty_writer(server, faults)
    ops = batch(50)
    result = writer.apply(ops, cp(8))
    writer.close()
    assert result.retries == 1
    assert read_tables(server, DATA) == expected(ops)
    assert SqlTargetWriter(writer_settings(server, STATE)).read_checkpoint() == cp(8)


@pytest.fixture
def own_server() -> Iterator[LocalServer]:
    server = start_server("writer-outage", server_id=311)
    prepare(server, DATA, STATE)
    yield server
    server.stop()


@pytest.mark.failure
def test_the_writer_waits_out_a_target_outage(own_server: LocalServer) -> None:
    faults = Faults()
    outage = 2.0
    restarts: list[threading.Timer] = []

    def stop_for_a_while() -> None:
        own_server.shutdown()
        restarts.append(threading.Timer(outage, own_server.start))
        restarts[-1].start()

    faults.on("INSERT INTO `wf_data`.`pairs`", 1, stop_for_a_while)
    writer = faulty_writer(own_server, faults, RetryPolicy(max_seconds=60, first_wait=0.05,
                                                           max_wait=0.5))
    ops = batch(30)
    started = time.monotonic()
    result = writer.apply(ops, cp(9))
    writer.close()
    # The writer may get in through the port before the restart sees the socket too: the
    # restart must finish before the fixture stops the server, or it fails in its thread.
    for restart in restarts:
        restart.join(timeout=60)
    assert time.monotonic() - started >= outage
    assert result.retries >= 2
    assert read_tables(own_server, DATA) == expected(ops)
    assert SqlTargetWriter(writer_settings(own_server, STATE)).read_checkpoint() == cp(9)
