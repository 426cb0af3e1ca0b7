"""Validation's first pass: both servers hash every chunk, in parallel, and Python compares.

The work is a list of units, each one query: an aurora chunk hashed as the mapping makes it
(:class:`~sync.validation.pushdown.PushdownQuery`), a target chunk hashed as stored
(:func:`~sync.validation.reading.target_digest`), or a whole target table grouped into
chunks by one scan where its rows are not stored in aurora's key order (the ``files`` rows:
a range through a secondary index costs a random read per row). A few threads each hold
one aurora connection, inside its own consistent snapshot, and one target connection, and
take units from a shared queue, so both servers work at once while Python hashes the file
rows. The snapshots differ by the moments they were opened: a chunk that changed between
them and the target's read differs here and is read again (:mod:`sync.validate`).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from sync.model import Position
from sync.validation.compare import Digest
from sync.validation.pushdown import PushdownQuery, SourceDigest, integer_bounds, prepare
from sync.validation.reading import Chunk, TargetRange, open_snapshot, target_digest, target_digests

Connect = Callable[[], "pymysql.Connection[Any]"]
SWITCH_INTERVAL = 0.0005


@dataclass
class TableScan:
    """One aurora table's chunks, its query, and the target ranges it fills."""

    query: PushdownQuery
    chunks: list[Chunk]
    grouped: set[str] = field(default_factory=set)
    """Labels of target ranges read by one grouped scan instead of a query per chunk."""

    @property
    def targets(self) -> tuple[TargetRange, ...]:
        return self.query.targets


@dataclass
class ScanResult:
    """Per table name and chunk index, what each side hashed."""

    source: dict[tuple[str, int], SourceDigest] = field(default_factory=dict)
    target: dict[tuple[str, str, int], Digest] = field(default_factory=dict)
    positions: list[Position] = field(default_factory=list)

    def want(self, scan: TableScan, index: int, target: TargetRange) -> tuple[Digest, int]:
        """The expected digest of ``target`` in chunk ``index`` and the chunk's orphans."""
        found = self.source.get((scan.query.table.name, index))
        if found is None:
            return Digest(), 0
        return found.digests[scan.targets.index(target)], found.orphans

    def have(self, scan: TableScan, index: int, target: TargetRange) -> Digest:
        return self.target.get((scan.query.table.name, target.label, index), Digest())


Unit = Callable[["_Worker"], None]


class _Worker:
    def __init__(self, source: pymysql.Connection[Any], target: pymysql.Connection[Any]) -> None:
        self.source = source
        self.target = target


def units(scans: Sequence[TableScan], result: ScanResult,
          lock: threading.Lock) -> list[Unit]:
    """Every query of the pass, largest tables first so the last units are small."""
    out: list[Unit] = []
    for scan in sorted(scans, key=lambda s: -len(s.chunks)):
        name = scan.query.table.name
        bounds = integer_bounds(scan.chunks)
        for target in scan.targets:
            if bounds is not None and target.label in scan.grouped:
                out.append(_grouped_unit(name, target, bounds, result, lock))
        for index, chunk in enumerate(scan.chunks):
            out.append(_source_unit(scan, index, chunk, result, lock))
            for target in scan.targets:
                if bounds is None or target.label not in scan.grouped:
                    out.append(_target_unit(name, target, index, chunk, result=result, lock=lock))
    return out


def _source_unit(scan: TableScan, index: int, chunk: Chunk, result: ScanResult,
                 lock: threading.Lock) -> Unit:
    def run(worker: _Worker) -> None:
        found = scan.query.read(worker.source, chunk)
        with lock:
            result.source[(scan.query.table.name, index)] = found
    return run


def _target_unit(name: str, target: TargetRange, index: int, chunk: Chunk, *,
                 result: ScanResult, lock: threading.Lock) -> Unit:
    def run(worker: _Worker) -> None:
        found = target_digest(worker.target, target, chunk)
        with lock:
            result.target[(name, target.label, index)] = found
    return run


def _grouped_unit(name: str, target: TargetRange, bounds: list[int], result: ScanResult,
                  lock: threading.Lock) -> Unit:
    def run(worker: _Worker) -> None:
        found = target_digests(worker.target, target, bounds)
        with lock:
            for index, digest in found.items():
                result.target[(name, target.label, index)] = digest
    return run


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def short_switch_interval() -> Iterator[None]:
    """:data:`SWITCH_INTERVAL` while at least one scan runs, the interval before after.

    A thread hashing file rows would hold the GIL for the whole default 5 ms while the others
    wait to send their next query: the servers would idle. The interval is process-wide and
    scans may overlap (the daemon's periodic run and a cutover's): the first to enter saves
    it, the last to leave puts it back."""
    global _switch_users, _switch_saved  # noqa: PLW0603 - the interval is process-wide too
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def run_scan(scans: Sequence[TableScan], *, connect_source: Connect, connect_target: Connect,
             threads: int, before_target: Callable[[list[Position]], None]) -> ScanResult:
    """Run every unit of ``scans`` on ``threads`` workers; ``before_target`` is called with
    the workers' snapshot positions before any target read (to wait for the stream)."""
    result = ScanResult()
    lock = threading.Lock()
    work: queue.SimpleQueue[Unit] = queue.SimpleQueue()
    for unit in units(scans, result, lock):
        work.put(unit)
    errors: list[BaseException] = []
    count = max(threads, 1)
    # Every worker opens its connections and snapshot at once (a connection costs tens of
    # milliseconds); the last to arrive waits for the stream to reach their positions.
    ready = threading.Barrier(count, action=lambda: before_target(list(result.positions)))

    def work_on() -> None:
        conns: list[pymysql.Connection[Any]] = []
        try:
            source = connect_source()
            conns.append(source)
            prepare(source)
            position = open_snapshot(source)
            with lock:
                result.positions.append(position)
            conns.append(connect_target())
            ready.wait()
            worker = _Worker(source, conns[1])
            while not errors:
                try:
                    unit = work.get_nowait()
                except queue.Empty:
                    return
                unit(worker)
        except threading.BrokenBarrierError:
            return  # another worker failed; its error is raised below
        except Exception as error:  # noqa: BLE001 - any failure is raised in the caller
            errors.append(error)
            ready.abort()
        finally:
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()

    pool = [threading.Thread(target=work_on, name=f"validate-{i}", daemon=True)
            for i in range(count)]
    with short_switch_interval():
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    if errors:
        raise errors[0]
    return result


__all__ = ["ScanResult", "TableScan", "run_scan", "short_switch_interval", "units"]
