"""Contract: the SQL writer on real MariaDB and the MemoryWriter end in the same rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_writer_support import clear, prepare, read_tables, writer_settings

from sync.apply.writer import SqlTargetWriter
from sync.dev.localdb import LocalServer
from sync.model import (
    Checkpoint,
    Delete,
    DeleteWhere,
    Eq,
    InSelect,
    Position,
    Reset,
    TableRef,
    UpdateWhere,
    Upsert,
)
from sync.testing.memwriter import MemoryWriter

pytestmark = pytest.mark.integration

DATA, STATE = "wc_data", "wc_state"
PEOPLE, PAIRS, CHILDREN = (TableRef(DATA, t) for t in ("people", "pairs", "children"))
# Equal under utf8mb4_unicode_ci, different for the reference: the writer compares exactly.
NAMES = ["a", "ä", "Ä", "Ünïcødé ☃", "emoji 😀", "", " trailing ", None]
URLS = ["http://a", "http://A", "http://b", None]
B_KEYS = ["x", "y", "ü", "日本"]

texts = st.sampled_from(NAMES)
scores = st.one_of(st.none(), st.decimals(-999, 999, places=2, allow_nan=False))
blobs = st.one_of(st.none(), st.binary(max_size=8))
times = st.one_of(st.none(), st.datetimes(datetime(1970, 1, 2), datetime(2037, 12, 31)))


@st.composite
def people_upsert(draw: st.DrawFn) -> Upsert:
    pid = draw(st.integers(1, 4))
    row = {"id": pid, "email": f"{pid}.{draw(st.integers(0, 2))}@x", "name": draw(texts),
           "score": draw(scores), "data": draw(blobs), "seen": draw(times),
           "url": draw(st.sampled_from(URLS)),
           "checksum": draw(st.sampled_from(["c1", "c2", None])), "created": "t0"}
    updates = ("email", "name", "score", "data", "seen", "url")
    return Upsert(PEOPLE, ("id",), (pid,), row, updates, (Reset("url", {"checksum": None}),))


@st.composite
def pairs_upsert(draw: st.DrawFn) -> Upsert:
    a, b = draw(st.integers(1, 3)), draw(st.sampled_from(B_KEYS))
    row = {"a": a, "b": b, "v": draw(st.one_of(st.none(), st.integers(-5, 5))),
           "note": draw(texts)}
    return Upsert(PAIRS, ("a", "b"), (a, b), row, ("v", "note"))


@st.composite
def child_upsert(draw: st.DrawFn) -> Upsert:
    cid = draw(st.integers(1, 4))
    row = {"id": cid, "person_id": draw(st.one_of(st.none(), st.integers(1, 4))),
           "flag": draw(st.one_of(st.none(), st.integers(0, 2))), "label": draw(texts)}
    return Upsert(CHILDREN, ("id",), (cid,), row, ("person_id", "flag", "label"))


deletes = st.one_of(
    st.builds(lambda k: Delete(PEOPLE, ("id",), (k,)), st.integers(1, 4)),
    st.builds(lambda a, b: Delete(PAIRS, ("a", "b"), (a, b)), st.integers(1, 3),
              st.sampled_from(B_KEYS)),
    st.builds(lambda k: Delete(CHILDREN, ("id",), (k,)), st.integers(1, 4)),
)
barriers = st.one_of(
    st.builds(lambda name, flag: UpdateWhere(
        CHILDREN, (InSelect("person_id", PEOPLE, "id", (Eq("name", name),)),), {"flag": flag}),
        texts, st.integers(0, 2)),
    st.builds(lambda flag: DeleteWhere(CHILDREN, (Eq("flag", flag),)),
              st.one_of(st.none(), st.integers(0, 2))),
    st.builds(lambda label: DeleteWhere(PAIRS, (InSelect("a", CHILDREN, "id", (
        InSelect("person_id", PEOPLE, "id", (Eq("url", label),)),)),)),
        st.sampled_from(URLS)),
    st.builds(lambda note, v: UpdateWhere(PAIRS, (Eq("note", note),), {"v": v}),
              texts, st.integers(0, 3)),
)
one_op = st.one_of(people_upsert(), people_upsert(), pairs_upsert(), child_upsert(), deletes,
                   barriers)
batches = st.lists(st.lists(one_op, max_size=15), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def server(target_server: LocalServer) -> LocalServer:
    prepare(target_server, DATA, STATE)
    return target_server


def _checkpoint(n: int) -> Checkpoint:
    return Checkpoint(Position("binlog.000003", n), datetime(2024, 6, 1, 0, 0, n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches)
def test_sql_writer_and_memory_writer_agree(server: LocalServer, batches: Any) -> None:
    clear(server, DATA, STATE)
    sql_writer = SqlTargetWriter(writer_settings(server, STATE))
    memory = MemoryWriter()
    try:
        for n, ops in enumerate(batches, start=1):
            sql_writer.apply(ops, _checkpoint(n))
            memory.apply(ops, _checkpoint(n))
            assert read_tables(server, DATA) == memory.target.snapshot()
        assert sql_writer.read_checkpoint() == memory.read_checkpoint()
    finally:
        sql_writer.close()


def test_memory_writer_fails_the_nth_apply_as_told() -> None:
    writer = MemoryWriter()
    op = Upsert(PAIRS, ("a", "b"), (1, "x"), {"a": 1, "b": "x", "v": 1, "note": None}, ("v",))
    writer.fail_apply(2, 1062)
    writer.fail_apply(3, 9007)
    writer.apply([op], _checkpoint(1))
    with pytest.raises(Exception, match="1062"):
        writer.apply([Delete(PAIRS, ("a", "b"), (1, "x"))], _checkpoint(2))
    assert writer.read_checkpoint() == _checkpoint(1)
    assert writer.target.snapshot() != {}
    assert writer.apply([op], _checkpoint(3)).retries == 1
    assert writer.read_checkpoint() == _checkpoint(3)
