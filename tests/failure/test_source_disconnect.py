"""The source ends the replication connection (KILL of its Binlog Dump thread) under load,
and again while the daemon is caught up: it reconnects from its checkpoint and ends exact."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, wait_for
from tests.failure.conftest import bootstrapped, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]

KILLS = 3


def dump_threads(d: Deployment) -> list[int]:
    rows = d.source.execute("SELECT ID FROM information_schema.PROCESSLIST "
                            "WHERE COMMAND = 'Binlog Dump' AND USER = %s", [d.source.user])
    return [int(str(r[0])) for r in rows]


def reconnects(daemon: Daemon) -> float:
    return daemon.metric("aurora_sync_retries_total", kind="source_reconnect") or 0.0


def test_killed_binlog_dump_thread_reconnects_from_checkpoint(
        deployment_factory: Callable[..., Deployment],
        daemon_factory: Callable[..., Daemon]) -> None:
    d = deployment_factory("fdump")
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    running = write_load(d, seed=47).start()
    for n in range(1, KILLS + 1):
        time.sleep(1.5)
        wait_for(lambda: len(dump_threads(d)) == 1, 30, "one Binlog Dump thread")
        d.source.execute(f"KILL {dump_threads(d)[0]}")
        wait_for(lambda n=n: reconnects(daemon) >= n, 30, f"reconnect {n}")  # type: ignore[misc]
    stats = running.stop()
    assert stats.committed > 100
    # Killed again with nothing in flight: an idle stream reconnects as well.
    daemon.wait_applied(d.source_position())
    d.source.execute(f"KILL {dump_threads(d)[0]}")
    wait_for(lambda: reconnects(daemon) >= KILLS + 1, 30, "reconnect while idle")
    drain(d, daemon)
    assert "reconnecting" in daemon.logs() or "reconnect" in daemon.logs()
    assert_exact(d)
