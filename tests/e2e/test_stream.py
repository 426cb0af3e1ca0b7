"""The stream end to end: real source binlog → mapping → real target, under a write load."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import pymysql
import pytest

from sync.apply.writer import SqlTargetWriter
from sync.daemon import StreamRun, build_mapper, load_spec
from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from sync.model import Checkpoint, Op, RowChange
from sync.testing.reference import diff_targets, expected_state
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.integration


def seed_targets(d: Deployment) -> None:
    """A plain, quiet copy of aurora into the targets with the checkpoint at its position
    (the source takes no writes meanwhile), so the stream starts from a known state."""
    position = d.source_position()
    spec = load_spec(d.settings)
    mapper = build_mapper(d.settings, spec)
    writer = SqlTargetWriter(d.settings)
    try:
        with contextlib.closing(d.aurora_conn()) as conn, \
                conn.cursor(pymysql.cursors.DictCursor) as cur:
            for table in spec.source_tables():
                cur.execute(f"SELECT * FROM `{table}` ORDER BY 1")
                ops = []
                for row in cur.fetchall():
                    change = RowChange(spec.source_schema, table, Op.INSERT, None, row,
                                       position_ts())
                    ops.extend(mapper.map_change(change))
                writer.apply(ops, None)
        writer.apply((), Checkpoint(position))
    finally:
        writer.close()


def position_ts() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def assert_exact(d: Deployment) -> None:
    spec = load_spec(d.settings)
    with contextlib.closing(d.aurora_conn()) as src, contextlib.closing(d.target_conn()) as tgt:
        expected = expected_state(src, spec, d.source_db)
        differences = diff_targets(expected, tgt, spec, d.settings.database)
    assert differences == [], "\n".join(differences[:30])


def test_stream_under_write_load_ends_exact(deployment_factory: Callable[..., Deployment]) -> None:
    d = deployment_factory("e2es")
    generate(d.source_conn, database=d.source_db, users=60, seed=11, create=True)
    seed_targets(d)
    finish = d.start_stream(StreamRun(heartbeat_schema=None))
    load = WriteLoad(d.source_conn, database=d.source_db, seed=5)
    stats = load.run(transactions=400)
    assert stats.committed > 300
    end = d.source_position()
    d.wait_applied(end)
    result = finish()
    assert result.transactions >= stats.committed
    assert_exact(d)
