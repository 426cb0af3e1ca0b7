"""The source restarts (clean shutdown, start) under load: the daemon keeps its checkpoint,
reconnects when the source is back, and ends exact."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sync.dev.localdb import LocalServer
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact
from tests.failure.conftest import bootstrapped, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]


def test_source_restart_under_load_reconnects_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_source: LocalServer) -> None:
    d = deployment_factory("fsrc", source=own_source)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    running = write_load(d, seed=53).start()
    time.sleep(2)
    before = daemon.checkpoint()
    own_source.shutdown()
    time.sleep(3)
    assert daemon.running, daemon.logs()[-3000:]
    own_source.start()
    # The load reconnects by itself; the daemon must follow into the new binlog file.
    time.sleep(3)
    stats = running.stop()
    assert stats.committed > 100
    drain(d, daemon)
    after = daemon.checkpoint()
    assert before is not None and after is not None and after.file > before.file
    assert "reconnect" in daemon.logs()
    assert_exact(d)
