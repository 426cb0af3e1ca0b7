"""The bootstrap against real throwaway servers: exact copy, re-copy, errors, throttling."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_bootstrap_support import (
    AURORA,
    MAPPING,
    differences,
    make_aurora,
    progress,
    reset_targets,
    settings_for,
    source_counts,
)

from bootstrap.progress import NullReporter, TableSummary
from bootstrap.run import needs_bootstrap, run_bootstrap, safe_window
from sync.dev.localdb import LocalServer
from sync.errors import ApplyError, BootstrapError
from sync.settings import Settings
from sync.state import StateStore, Throttle

pytestmark = pytest.mark.integration


class Capture(NullReporter):
    def __init__(self) -> None:
        self.chunks: list[tuple[str, int, float]] = []
        self.throttles: list[str | None] = []

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        self.chunks.append((table, rows, time.monotonic()))

    def throttled(self, reason: str | None) -> None:
        self.throttles.append(reason)

    def finish(self, summaries: Sequence[TableSummary]) -> None:
        pass


@pytest.fixture(scope="module")
def aurora(source_server: LocalServer) -> LocalServer:
    make_aurora(source_server)
    return source_server


@pytest.fixture
def settings(aurora: LocalServer, target_server: LocalServer) -> Iterator[Settings]:
    s = settings_for(aurora, target_server, chunk_size=2000)
    reset_targets(s, target_server)
    yield s


def store(s: Settings, target: LocalServer) -> StateStore:
    return StateStore(target.connect, s.state_db, s.pipeline)


def test_copy_is_exact_and_records_the_window(settings: Settings, aurora: LocalServer,
                                              target_server: LocalServer) -> None:
    assert needs_bootstrap(settings)
    result = run_bootstrap(settings, workers=2, reporter=NullReporter())

    assert differences(settings) == []
    counts = source_counts(aurora)
    assert sum(counts.values()) > 25_000
    assert {t.table: t.rows for t in result.tables} == counts
    assert result.method == "consistent_snapshot"
    # Several workers, several snapshots: the window runs from the earliest to the latest.
    assert result.start <= result.end
    window = safe_window(settings)
    assert window is not None and (window.start, window.safe_until) == (result.start,
                                                                         result.end)
    checkpoint = store(settings, target_server).read_checkpoint()
    assert checkpoint is not None and checkpoint.position == result.start
    assert result.checkpoint == result.start
    rows = progress(target_server)
    assert rows and all(done == 1 for *_, done in rows)
    # syllabus is large enough to be sliced between the two workers
    assert any(name.startswith("syllabus[") for _, name, *_ in rows)
    assert not needs_bootstrap(settings)

    # A second full bootstrap has nothing to do; the diff sees a damaged row.
    again = run_bootstrap(settings, reporter=NullReporter())
    assert again.skipped and again.run_id == result.run_id
    target_server.execute("UPDATE bs_subject.subjects SET name = 'damaged' WHERE id = 3")
    target_server.execute("DELETE FROM bs_file.files LIMIT 1")
    found = differences(settings)
    assert any("subjects: row (3,) column name" in d for d in found), found
    assert any(d.startswith("file_db.files: missing row") for d in found), found


def test_recopy_of_tables_upserts_and_removes_what_aurora_lost(
        settings: Settings, aurora: LocalServer, target_server: LocalServer) -> None:
    run_bootstrap(settings, workers=2, reporter=NullReporter())
    # aurora moves on while nothing streams: a deleted subject (its syllabus rows cascade,
    # its repositories lose the link), deleted and changed syllabus rows, a new subject.
    subject = aurora.execute(f"SELECT MIN(subject_id) FROM {AURORA}.syllabus")[0][0]
    aurora.execute(f"DELETE FROM {AURORA}.subjects WHERE id = %s", [subject])
    aurora.execute(f"DELETE FROM {AURORA}.syllabus ORDER BY id DESC LIMIT 7")
    aurora.execute(f"UPDATE {AURORA}.syllabus SET title = 'retitled', file_url = NULL "
                   "WHERE id % 97 = 0")
    aurora.execute(f"INSERT INTO {AURORA}.subjects (id, semester_id, name) "
                   f"SELECT MAX(id) + 1, 1, 'new' FROM {AURORA}.subjects")
    # and a target row was damaged by hand
    target_server.execute("UPDATE bs_syllabus.syllabus SET title = 'x' WHERE id = 5")
    assert len(differences(settings)) > 10

    result = run_bootstrap(settings, tables=["subjects", "syllabus"], workers=2,
                           reporter=NullReporter())

    assert {t.table for t in result.tables} == {"subjects", "syllabus"}
    assert differences(settings) == []
    # The checkpoint of the first run stays: it is before the re-copy's window.
    window = safe_window(settings)
    assert window is not None and window.run_id == result.run_id


def test_table_without_primary_key_is_named(settings: Settings, aurora: LocalServer,
                                            tmp_path: Path) -> None:
    aurora.execute("CREATE DATABASE IF NOT EXISTS bs_extra")
    aurora.execute("CREATE OR REPLACE TABLE bs_extra.keyless (a INT, b VARCHAR(10))")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.read_text().replace(
        "routes: []", "routes:\n  - {schema: bs_extra, database: config_db, tables: '*'}"))
    with pytest.raises(BootstrapError) as caught:
        run_bootstrap(settings.model_copy(update={"mapping_file": mapping}),
                      reporter=NullReporter())
    assert caught.value.table == "bs_extra.keyless"
    assert "no primary key" in caught.value.reason
    assert caught.value.fix and "primary key" in caught.value.fix


def test_rows_per_second_cap_holds(settings: Settings, target_server: LocalServer) -> None:
    capped = settings.model_copy(update={"max_rows_per_second": 4000, "chunk_size": 250})
    capture = Capture()
    started = time.monotonic()
    result = run_bootstrap(capped, tables=["users", "semesters"], workers=2, reporter=capture)
    elapsed = time.monotonic() - started
    rows = result.rows
    assert rows > 2000
    # The first chunk goes at once; every later one waits for its share of the budget.
    assert elapsed >= (rows - 2 * 250) / 4000 * 0.9
    assert rows / elapsed <= 4000 * 1.2


def test_throttle_row_pauses_and_resumes_the_copy(settings: Settings,
                                                  target_server: LocalServer) -> None:
    states = store(settings, target_server)
    states.write_throttle(Throttle("bs", None, None, paused=True))
    capture = Capture()
    outcome: dict[str, Any] = {}

    def copy() -> None:
        outcome["result"] = run_bootstrap(settings, workers=2, reporter=capture)

    worker = threading.Thread(target=copy)
    worker.start()
    time.sleep(3)
    assert capture.chunks == []
    assert capture.throttles == ["paused by the throttle row"]
    assert all(r[2] == 0 for r in progress(target_server))

    states.write_throttle(Throttle("bs", None, None, paused=False))
    worker.join(60)
    assert not worker.is_alive()
    assert capture.throttles == ["paused by the throttle row", None]
    assert outcome["result"].rows > 25_000
    assert differences(settings) == []


def test_a_stop_lets_the_chunks_in_flight_commit_and_a_rerun_resumes(
        settings: Settings, aurora: LocalServer, target_server: LocalServer) -> None:
    stop = threading.Event()

    class StopAfterFirstChunk(Capture):
        def chunk(self, task: str, table: str, rows: int, last_key: Any,
                  seconds: float) -> None:
            super().chunk(task, table, rows, last_key, seconds)
            stop.set()

    capture = StopAfterFirstChunk()
    with pytest.raises(BootstrapError, match="stopped before it finished"):
        run_bootstrap(settings, workers=2, reporter=capture, stop=stop)
    copied = sum(rows for _, _, rows, _, _ in progress(target_server))
    assert 0 < copied < sum(source_counts(aurora).values())
    # Every chunk reported had committed with its progress row; none was left half done.
    assert copied == sum(rows for _, rows, _ in capture.chunks)

    result = run_bootstrap(settings, workers=2, reporter=NullReporter())
    assert result.resumed
    assert differences(settings) == []


def test_a_workers_error_reaches_the_caller_as_itself(settings: Settings,
                                                      target_server: LocalServer) -> None:
    target_server.execute("ALTER TABLE bs_syllabus.syllabus MODIFY title VARCHAR(2)")
    with pytest.raises(ApplyError) as caught:
        run_bootstrap(settings, workers=2, reporter=NullReporter())
    assert caught.value.table == "bs_syllabus.syllabus"
    # The chunk aurora's server rendered is refused as a whole; the Python path that takes
    # over names the row.
    assert isinstance(caught.value.key, dict) and set(caught.value.key) == {"id"}
    assert "error 1406" in caught.value.reason
    assert caught.value.fix and "widen the column" in caught.value.fix


def _worker_pids() -> list[int]:
    """This process's copy workers (not the throwaway servers it also started)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    children = [pid for task in tasks.iterdir() for pid in (task / "children").read_text().split()]
    return [int(pid) for pid in children
            if b"bootstrap.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_a_killed_worker_stops_the_run_resumably(settings: Settings, aurora: LocalServer,
                                                  target_server: LocalServer) -> None:
    class KillOneWorker(Capture):
        def chunk(self, task: str, table: str, rows: int, last_key: Any,
                  seconds: float) -> None:
            if not self.chunks:
                os.kill(_worker_pids()[0], signal.SIGKILL)
            super().chunk(task, table, rows, last_key, seconds)

    with pytest.raises(BootstrapError, match="died") as caught:
        run_bootstrap(settings, workers=2, reporter=KillOneWorker())
    assert caught.value.fix and "resumes" in caught.value.fix
    assert _worker_pids() == []  # the other worker finished its chunk and exited

    result = run_bootstrap(settings, workers=2, reporter=NullReporter())
    assert result.resumed
    assert {t.table: t.rows for t in result.tables} == source_counts(aurora)
    assert differences(settings) == []
