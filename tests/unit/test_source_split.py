"""The reader process's pure parts: which table specs cross the pipe, and the stream side's
decoding of what arrives (the real processes run in tests/integration and tests/e2e)."""

from __future__ import annotations

import os
import pickle
import site
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import errors
from sync.model import Op, Position
from sync.source import split
from sync.source.split import Expander, RawRowsRefusedError, _Specs

WRITE, UPDATE = 0x1E, 0x1F  # rows events v2


class FakeReader:
    """Stands for a compiled table: its one row names the spec it was compiled from."""

    def __init__(self, columns: list[Any], before: Any = None) -> None:
        self.columns = columns
        self.before = before

    def changes(self, data: bytes, pos: int, end: int, op: Op) -> list[dict[str, Any]]:
        image = {"spec": self.columns[0], "data": data[pos:end], "before": self.before}
        return [image, dict(image, after=True)] if op is Op.UPDATE else [image]


@pytest.fixture
def fake_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split, "compile_table", FakeReader)


def raw(serial: int, kind: int = WRITE, at: int = 100) -> tuple[Any, ...]:
    spec = ("db", f"t{serial}", [f"spec-{serial}"])
    return (serial, kind, b"..row..", 2, 5, at, spec)


def test_a_spec_crosses_once_while_held_and_again_once_dropped() -> None:
    specs = _Specs(kept=2)
    sent = [specs.once([raw(s)])[0][6] is not None for s in (0, 1, 0, 2, 0, 1)]
    # 2 drops 0 (the oldest held), 0 drops 1.
    assert sent == [True, True, False, True, True, True]


def test_rows_are_copied_only_when_a_spec_is_left_out() -> None:
    specs = _Specs()
    first = [raw(0)]
    assert specs.once(first) is first
    again = [raw(0)]
    out = specs.once(again)
    assert out is not again and again[0][6] is not None and out[0][6] is None


@settings(max_examples=200, deadline=None)
@given(serials=st.lists(st.integers(0, 6), max_size=60), kept=st.integers(1, 4))
def test_the_stream_side_always_holds_the_table_a_row_needs(serials: list[int],
                                                            kept: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(split, "compile_table", FakeReader)
        specs, expander = _Specs(kept), Expander(kept)
        for serial in serials:
            rows = specs.once([raw(serial)])
            tx = expander.transaction(pickle.loads(pickle.dumps(rows)), "binlog.000001", 200,
                                      None, 1_700_000_000)
            (change,) = tx.changes
            assert change.table == f"t{serial}"
            assert change.image["spec"] == f"spec-{serial}"


@pytest.mark.usefixtures("fake_tables")
def test_a_transaction_keeps_its_rows_order_positions_and_commit_time() -> None:
    at = Position("binlog.000001", 150)
    library_row = ("db", "lib", Op.DELETE, {"id": 9}, None, at)
    rows = [raw(0, WRITE, at=120), library_row, raw(1, UPDATE, at=180)]
    tx = Expander().transaction(rows, "binlog.000001", 200, "0-1-7", 1_700_000_000)
    assert [(c.table, c.op) for c in tx.changes] == [
        ("t0", Op.INSERT), ("lib", Op.DELETE), ("t1", Op.UPDATE)]
    assert [c.position for c in tx.changes] == [
        Position("binlog.000001", 120), at, Position("binlog.000001", 180)]
    assert tx.changes[2].before is not None and tx.changes[2].after == dict(
        tx.changes[2].before, after=True)
    assert tx.end == Position("binlog.000001", 200, "0-1-7")
    assert tx.commit_ts == datetime(2023, 11, 14, 22, 13, 20)
    assert {c.commit_ts for c in tx.changes} == {tx.commit_ts}


def test_a_table_the_stream_cannot_compile_is_refused_with_its_position(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split, "compile_table", lambda columns, before: None)
    with pytest.raises(RawRowsRefusedError) as caught:
        Expander().transaction([raw(0, at=120)], "binlog.000001", 200, None, 0)
    assert caught.value.position == Position("binlog.000001", 120)
    assert "db.t0" in caught.value.reason
    # A lost connection to the pipeline: it applies what it holds and reopens.
    assert isinstance(caught.value, errors.SourceConnectionLostError)


@pytest.mark.usefixtures("fake_tables")
def test_tables_are_compiled_with_the_before_columns_the_stream_reads() -> None:
    asked: list[tuple[str, str]] = []

    def before(schema: str, table: str) -> frozenset[str] | None:
        asked.append((schema, table))
        return frozenset({"id"}) if table == "t0" else None

    expander = Expander(before=before)
    again = (*raw(0, UPDATE)[:6], None)  # the spec crosses once
    tx = expander.transaction([raw(0, UPDATE), raw(1), again], "binlog.000001", 200, None, 0)
    assert [c.image["before"] for c in tx.changes] == [frozenset({"id"}), None, frozenset({"id"})]
    assert asked == [("db", "t0"), ("db", "t1")]  # once per table map
    assert Expander().transaction([raw(0)], "binlog.000001", 200, None, 0).changes[0].image[
        "before"] is None


@pytest.mark.usefixtures("fake_tables")
def test_rows_of_a_table_never_described_are_refused() -> None:
    orphan = (*raw(3)[:6], None)
    with pytest.raises(RawRowsRefusedError, match="table serial 3"):
        Expander().transaction([orphan], "binlog.000001", 200, None, 0)


@pytest.mark.parametrize("cls", [
    errors.SourceError, errors.BinlogPurgedError, errors.PartialRowImageError,
    errors.SchemaChangeError, errors.SourceConnectionLostError, errors.ConnectError,
    errors.ConfigError, RawRowsRefusedError,
])
def test_errors_cross_the_pipe_whole(cls: type[errors.AuroraSyncError]) -> None:
    error = cls("what went wrong", fix="how to fix it", table="db.t", key={"id": 7},
                position=Position("binlog.000003", 4, "0-1-2"))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert (copy.reason, copy.fix, copy.table, copy.key, copy.position) == (
        error.reason, error.fix, error.table, error.key, error.position)
    assert str(copy) == str(error)
    assert copy.exit_code == error.exit_code


def test_the_child_imports_this_checkout_but_never_puts_a_site_directory_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(split.__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setattr(site, "getsitepackages", lambda: ["/nowhere/site-packages"])
    assert split._child_environment()["PYTHONPATH"] == os.pathsep.join(
        [str(root), "/elsewhere"])
    # Installed: the site directory keeps its place after the standard library.
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(root)])
    assert split._child_environment()["PYTHONPATH"] == "/elsewhere"
