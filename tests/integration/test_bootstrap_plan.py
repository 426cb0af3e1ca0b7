"""The pure parts of the bootstrap: slicing, keyset SQL, task order, throttle decisions."""

from __future__ import annotations

import threading

from bootstrap.chunks import (
    CopyTask,
    TableInfo,
    chunk_sql,
    plan_slices,
    ready,
    table_of,
    tasks_from_names,
)
from bootstrap.throttle import Limits, Override, Throttle
from sync.model import TableRef


def info(table: str = "syllabus", key: tuple[str, ...] = ("id",), rows: int = 100_000,
         parents: frozenset[str] = frozenset()) -> TableInfo:
    return TableInfo("aurora", table, table, ("id", "a", "b"), key, key,
                     TableRef("syllabus_db", table), parents, rows)


def test_slices_cover_every_key_and_round_trip_through_their_names() -> None:
    tasks = plan_slices(info(), 1, 1000, slices=3, chunk_size=100)
    assert [t.name for t in tasks] == ["syllabus[,335)", "syllabus[335,669)", "syllabus[669,)"]
    assert tasks_from_names(info(), [t.name for t in reversed(tasks)]) == tasks
    assert {table_of(t.name) for t in tasks} == {"syllabus"}
    # small, composite-keyed or empty tables stay whole
    small = info(rows=10)
    assert plan_slices(small, 1, 1000, slices=3, chunk_size=100) == (CopyTask(small),)
    assert len(plan_slices(info(key=("a", "b")), 1, 9, slices=3, chunk_size=1)) == 1
    assert len(plan_slices(info(), None, None, slices=3, chunk_size=1)) == 1


def test_keyset_sql_pages_after_the_last_key_within_the_slice() -> None:
    sql, args = chunk_sql(CopyTask(info(), 10, 20), None, 50)
    assert "`id` >= %s AND `id` < %s ORDER BY `id` LIMIT 50" in sql and args == [10, 20]
    sql, args = chunk_sql(CopyTask(info(key=("a", "b"))), (1, "x"), 5)
    assert "((`a` > %s) OR (`a` = %s AND `b` > %s))" in sql and args == [1, 1, "x"]


def test_children_wait_for_every_slice_of_their_parents() -> None:
    parent = plan_slices(info("subjects"), 1, 1000, slices=2, chunk_size=10)
    child = CopyTask(info("syllabus", parents=frozenset({"subjects"})))
    other = CopyTask(info("repositories"))
    tasks = [*parent, child, other]
    done = {t.name: False for t in tasks}
    done[parent[0].name] = True
    assert ready(tasks, done, frozenset({parent[1].name})) == other
    done[parent[1].name] = True
    assert ready(tasks, done, frozenset({other.name})) == child


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_waits_while_busy_paused_or_over_the_rate() -> None:
    clock, busy, reasons = Clock(), [50], []
    override: list[Override | None] = [None]
    stop = threading.Event()

    def seen(reason: str | None) -> None:
        reasons.append(reason)
        if reason is not None:
            stop.set()  # the test's way out of a blocked admit

    throttle = Throttle(Limits(max_rows_per_second=1000, max_threads_running=10),
                        read_override=lambda: override[0], threads_running=lambda: busy[0],
                        on_change=seen, refresh_seconds=0, probe_seconds=0, clock=clock)
    throttle.admit(100, stop)
    assert reasons == ["source busy: Threads_running 50 > 10"]
    busy[0] = 1
    throttle.toggle_pause()
    stop.clear()
    throttle.admit(100, stop)
    assert reasons[-1] == "paused by SIGUSR1"
    throttle.toggle_pause()
    override[0] = Override(paused=True)
    stop.clear()
    throttle.admit(100, stop)
    assert reasons[-1] == "paused by the throttle row"
    override[0] = Override(max_rows_per_second=500)
    stop.clear()
    assert throttle.admit(0, stop) == 0
    assert reasons[-1] is None and throttle.limits.max_rows_per_second == 500
    # the shared budget: 500 rows at 500 rows/s book the next second
    clock.now += 10
    assert throttle._reserve(500) == 0
    assert throttle._reserve(500) == 1.0
