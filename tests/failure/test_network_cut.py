"""The network between the daemon and its servers fails under load, through TCP proxies on
loopback that only the daemon uses: connections reset for a few seconds (both servers,
twice), or left half-open and silent while new ones pass. The daemon recovers, exact."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from sync.dev.localdb import LocalServer
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact
from tests.failure.conftest import bootstrapped, drain, seed, write_load
from tests.failure.proxy import CuttableProxy

pytestmark = [pytest.mark.integration, pytest.mark.failure]

CUT_SECONDS = 4.0
READ_TIMEOUT = 4


@pytest.fixture
def proxies(source_server: LocalServer,
            target_server: LocalServer) -> Iterator[tuple[CuttableProxy, CuttableProxy]]:
    to_source, to_target = CuttableProxy(source_server.port), CuttableProxy(target_server.port)
    yield to_source, to_target
    to_source.close()
    to_target.close()


def through(d: Deployment, daemon_factory: Callable[..., Daemon],
            proxies: tuple[CuttableProxy, CuttableProxy]) -> Daemon:
    to_source, to_target = proxies
    # The load and the test's checks connect directly.
    return daemon_factory(d, SOURCE_DB_PORT=to_source.port, TIDB_PORT=to_target.port,
                          AURORA_SYNC_READ_TIMEOUT=READ_TIMEOUT,
                          AURORA_SYNC_TARGET_TIMEOUT=READ_TIMEOUT)


def test_connections_reset_to_both_servers_recover_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        proxies: tuple[CuttableProxy, CuttableProxy]) -> None:
    d = deployment_factory("fnet")
    seed(d)
    daemon = bootstrapped(d, through(d, daemon_factory, proxies))
    running = write_load(d, seed=71).start()
    for _ in range(2):
        time.sleep(2)
        for proxy in proxies:
            proxy.cut()
        time.sleep(CUT_SECONDS)
        assert daemon.running, daemon.logs()[-3000:]
        for proxy in proxies:
            proxy.restore()
    time.sleep(2)
    stats = running.stop()
    assert stats.committed > 100
    drain(d, daemon)
    logs = daemon.logs()
    assert "reconnecting" in logs and "apply.retry" in logs
    assert_exact(d)


def test_half_open_source_connection_times_out_and_reconnects_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        proxies: tuple[CuttableProxy, CuttableProxy]) -> None:
    d = deployment_factory("fnetsrc")
    seed(d)
    daemon = bootstrapped(d, through(d, daemon_factory, proxies))
    running = write_load(d, seed=73).start()
    time.sleep(2)
    proxies[0].strand()
    time.sleep(READ_TIMEOUT * 2)
    stats = running.stop()
    assert stats.committed > 100
    drain(d, daemon, timeout=60)
    assert "went silent" in daemon.logs()
    assert_exact(d)


def test_half_open_target_connection_times_out_and_reconnects_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        proxies: tuple[CuttableProxy, CuttableProxy]) -> None:
    d = deployment_factory("fnettgt")
    seed(d)
    daemon = bootstrapped(d, through(d, daemon_factory, proxies))
    running = write_load(d, seed=79).start()
    time.sleep(2)
    proxies[1].strand()
    time.sleep(2)
    stats = running.stop()
    assert stats.committed > 50
    drain(d, daemon, timeout=20)
    assert_exact(d)
