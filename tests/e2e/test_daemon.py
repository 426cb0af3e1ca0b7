"""`aurora-sync run` as a subprocess under a steady write load, from an empty target through
bootstrap and streaming to SIGTERM, watched the way an operator watches it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import pytest

from sync.dev.generate import generate
from sync.dev.load import DEFAULT_WEIGHTS, LoadMix, WriteLoad
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, read_state, wait_for

pytestmark = pytest.mark.integration

# Primary key changes while the bootstrap copies (children moved by ON UPDATE CASCADE, which
# the binlog does not show) have the test below to themselves: the main one is about streaming
# and stopping.
WITHOUT_REKEYS = LoadMix(weights={k: 0 if k.startswith("rekey_") else w
                                  for k, w in DEFAULT_WEIGHTS.items()})

STOPPED = re.compile(r"stopped \((?P<by>\w+)\) at (?P<file>[^\s:]+):(?P<pos>\d+)")


def healthy(daemon: Daemon) -> bool:
    return daemon.scrape("/healthz").status_code == 200


def status_json(daemon: Daemon) -> dict[str, object]:
    done = daemon.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, object] = json.loads(done.stdout)
    return document


def test_daemon_bootstraps_streams_and_stops_on_sigterm(
        deployment_factory: Callable[..., Deployment],
        daemon_factory: Callable[..., Daemon]) -> None:
    d = deployment_factory("e2ed")
    generate(d.source_conn, database=d.source_db, users=200, seed=3, create=True)
    running = WriteLoad(d.source_conn, database=d.source_db, seed=31, rate=60,
                        mix=WITHOUT_REKEYS).start()
    daemon = daemon_factory(d).start()
    daemon.wait_http()

    # The load ran through the bootstrap; the stream catches up and /healthz turns 200.
    wait_for(lambda: healthy(daemon), 60, "/healthz 200")
    wait_for(lambda: daemon.metric_sum("aurora_sync_rows_applied_total") > 0, 20,
             "rows applied in /metrics")
    lag = daemon.metric("aurora_sync_lag_seconds")
    assert lag is not None and not math.isnan(lag) and 0 <= lag < 10
    assert (daemon.metric("aurora_sync_transactions_applied_total") or 0) > 0
    assert daemon.metric("aurora_sync_state", state="streaming") == 1
    assert daemon.metric("aurora_sync_healthy") == 1

    live = status_json(daemon)
    assert live["daemon"]["running"] is True  # type: ignore[index]
    assert live["daemon"]["healthy"] is True  # type: ignore[index]
    assert live["state"]["name"] == "streaming"  # type: ignore[index]
    assert live["positions"]["checkpoint"]  # type: ignore[index]

    # SIGTERM under load: the open batch commits and the checkpoint is where it says it stopped.
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0, daemon.logs()[-3000:]
    stopped = STOPPED.search(daemon.stdout())
    assert stopped is not None and stopped["by"] == "stop", daemon.stdout()
    checkpoint = daemon.checkpoint()
    assert checkpoint is not None
    assert (checkpoint.file, checkpoint.pos) == (stopped["file"], int(stopped["pos"]))

    after = status_json(daemon)
    assert after["daemon"]["running"] is False  # type: ignore[index]
    assert after["state"]["name"] == "stopped"  # type: ignore[index]
    state = read_state(d)
    assert state is not None and state.state == "stopped"

    # A restart resumes at the checkpoint; once the writer stops and the stream catches up
    # the targets are exact.
    daemon.start()
    stats = running.stop()
    assert stats.committed > 100
    daemon.wait_applied(d.source_position(), timeout=60)
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0, daemon.logs()[-3000:]
    assert_exact(d)


def test_daemon_bootstrap_under_rekeying_load_ends_exact(
        deployment_factory: Callable[..., Deployment],
        daemon_factory: Callable[..., Daemon]) -> None:
    d = deployment_factory("e2edk")
    generate(d.source_conn, database=d.source_db, users=200, seed=3, create=True)
    running = WriteLoad(d.source_conn, database=d.source_db, seed=31, rate=60).start()
    daemon = daemon_factory(d).start()
    daemon.wait_http()
    wait_for(lambda: healthy(daemon), 60, "/healthz 200")
    running.stop()
    daemon.wait_applied(d.source_position(), timeout=60)
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0
    assert_exact(d)
