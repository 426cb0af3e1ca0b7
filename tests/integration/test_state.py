"""StateStore round-trips every state row on a real target."""

from __future__ import annotations

from datetime import datetime

import pytest
from test_writer_support import prepare

from sync.dev.localdb import LocalServer
from sync.model import Checkpoint, Position
from sync.state import StateStore, TableProgress, Throttle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(target_server: LocalServer) -> StateStore:
    prepare(target_server, "st_data", "st_state")
    return StateStore(target_server.connect, "st_state", "p1")


def test_checkpoint_round_trip(store: StateStore) -> None:
    assert store.read_checkpoint() is None
    first = Checkpoint(Position("binlog.000009", 4, "0-101-7"), datetime(2024, 1, 2, 3, 4, 5, 6))
    store.write_checkpoint(first)
    assert store.read_checkpoint() == first
    assert store.read_checkpoint().position.gtid == "0-101-7"  # type: ignore[union-attr]
    later = Checkpoint(Position("binlog.000010", 99), None)
    store.write_checkpoint(later)
    assert store.read_checkpoint() == later


def test_pipeline_state(store: StateStore) -> None:
    store.write_state("streaming", "caught up")
    store.write_state("halted", error="boom at t", fix="do x")
    state = store.read_state()
    assert state is not None
    assert (state.state, state.detail, state.last_error, state.last_error_fix) == (
        "halted", None, "boom at t", "do x")
    with pytest.raises(ValueError, match="unknown pipeline state"):
        store.write_state("sleeping")


def test_promotion_to_streaming_never_replaces_a_halt(store: StateStore) -> None:
    store.write_state("catching_up", "from b.1:4")
    assert store.promote_state("catching_up", "streaming", "caught up")
    state = store.read_state()
    assert state is not None and (state.state, state.detail) == ("streaming", "caught up")
    # The stream halts from its thread just before the scheduler promotes: the halt stays.
    store.write_state("halted", "refused", error="error 1153", fix="raise max_allowed_packet")
    assert not store.promote_state("catching_up", "streaming", "caught up")
    state = store.read_state()
    assert state is not None and (state.state, state.last_error) == ("halted", "error 1153")


def test_bootstrap_run_and_progress(store: StateStore) -> None:
    run_id = store.start_bootstrap("consistent_snapshot", Position("b.1", 10), ["users", "files"])
    run = store.latest_bootstrap()
    assert run is not None and run.id == run_id and run.state == "running"
    assert run.tables == ("users", "files") and run.end is None
    store.write_progress(TableProgress(run_id, "users", (5, "ü"), 5, 1))
    store.write_progress(TableProgress(run_id, "users", (9, "z"), 9, 2, done=True,
                                       rows_estimated=9))
    assert store.read_progress(run_id) == [
        TableProgress(run_id, "users", (9, "z"), 9, 2, done=True, rows_estimated=9)]
    store.finish_bootstrap(run_id, "done", Position("b.2", 20))
    finished = store.latest_bootstrap()
    assert finished is not None and finished.end == Position("b.2", 20)
    assert finished.finished_at is not None


def test_throttle_validation_cutover(store: StateStore) -> None:
    assert store.read_throttle() is None
    store.write_throttle(Throttle("p1", 500, None, True))
    assert store.read_throttle() == Throttle("p1", 500, None, True)
    vid = store.start_validation(Position("b.3", 1))
    store.finish_validation(vid, True, {"tables": 5})
    run = store.latest_validation()
    assert run is not None and run.clean is True and run.summary == {"tables": 5}
    cid = store.start_cutover("read_only")
    store.finish_cutover(cid, "done", Position("b.4", 2), summary={"ms": 800})
    cut = store.latest_cutover()
    assert cut is not None and cut.state == "done" and cut.final == Position("b.4", 2)
