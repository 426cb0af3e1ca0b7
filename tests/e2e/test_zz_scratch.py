from __future__ import annotations
import time
import pytest
from sync.dev.generate import generate
from sync.dev.load import WriteLoad
from tests.e2e.daemon import assert_exact, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("variant", ["load_bootstrap_norestart", "quiet_bootstrap_restart", "quiet_bootstrap_norestart"])
def test_variant(deployment_factory, daemon_factory, variant):
    d = deployment_factory("zz" + variant[:5] + variant[-3:])
    generate(d.source_conn, database=d.source_db, users=200, seed=3, create=True)
    load = WriteLoad(d.source_conn, database=d.source_db, seed=31, rate=60)
    if variant.startswith("load"):
        running = load.start()
    daemon = daemon_factory(d, AURORA_SYNC_LOG_LEVEL="debug").start()
    daemon.wait_http()
    if not variant.startswith("load"):
        daemon.wait_applied(d.source_position())
        running = load.start()
    time.sleep(4)
    if variant.endswith("_restart"):
        daemon.sigterm(); assert daemon.wait_exit() == 0
        daemon.start()
    time.sleep(2)
    running.stop()
    daemon.wait_applied(d.source_position(), timeout=60)
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0
    assert_exact(d)
