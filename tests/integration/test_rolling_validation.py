"""The daemon's light periodic validation: one target table per run, in turn; a difference
is logged and counted, and such partial runs never stand in for a full validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sync.dev.localdb import LocalServer
from sync.mapping.resolve import load_spec
from sync.monitor.metrics import Metrics
from sync.monitor.rolling import RollingValidation
from tests.e2e.conftest import Deployment, deployment_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synced(source_server: LocalServer, target_server: LocalServer) -> Iterator[Deployment]:
    d = Deployment(source_server, target_server,
                   deployment_settings(source_server, target_server, "rol"))
    d.reset()
    d.sync_quietly(users=15, seed=3)
    yield d


def test_each_run_validates_the_next_table_and_counts_differences(synced: Deployment) -> None:
    s = synced.settings
    metrics = Metrics.for_settings(s, heartbeat_table=False)
    job = RollingValidation(s, metrics)
    order = [str(t.ref) for t in load_spec(s).targets()]
    subjects = order.index("subject_db.subjects")
    for _ in range(subjects):
        assert job.run() is True
    synced.target.execute(f"UPDATE `{s.subject_db}`.subjects SET credits = credits + 1 "
                          "ORDER BY id LIMIT 1")
    assert job.run() is False
    assert 'aurora_sync_errors_total{kind="ValidationDifference"} 1.0' in \
        metrics.exposition().decode()
    runs = synced.target.execute(
        f"SELECT clean, JSON_KEYS(JSON_EXTRACT(summary, '$.tables')) FROM `{s.state_db}`."
        "validation_run ORDER BY id")
    assert len(runs) == subjects + 1
    assert [bool(clean) for clean, _ in runs] == [True] * subjects + [False]
    assert all(str(tables).count(".") == 1 for _, tables in runs)  # one table each
