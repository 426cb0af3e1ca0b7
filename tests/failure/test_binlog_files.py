"""Binlog files come and go: rotations under load are followed exactly; a binlog purged past
the checkpoint while the daemon is down stops it with the demand for a new bootstrap, never
a silent jump over the lost changes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sync.dev.localdb import LocalServer
from sync.model import Position
from tests.bad_input import BadInputRecorder
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, read_state, wait_for
from tests.failure.conftest import bootstrapped, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]

ROTATIONS = 5


def purged(server: LocalServer, file: str) -> bool:
    """Purge up to a fresh binlog file; MariaDB keeps a file until its binlog checkpoint
    passed, so this may take another round."""
    server.execute("FLUSH BINARY LOGS")
    newest = str(server.execute("SHOW BINARY LOGS")[-1][0])
    server.execute(f"PURGE BINARY LOGS TO '{newest}'")
    return file not in {str(row[0]) for row in server.execute("SHOW BINARY LOGS")}


def test_rotations_under_load_end_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_source: LocalServer) -> None:
    d = deployment_factory("frot", source=own_source)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    first = daemon.checkpoint()
    running = write_load(d, seed=61).start()
    for _ in range(ROTATIONS):
        time.sleep(0.7)
        own_source.execute("FLUSH BINARY LOGS")
    stats = running.stop()
    assert stats.committed > 100
    drain(d, daemon)
    last = daemon.checkpoint()
    assert first is not None and last is not None
    assert int(last.file.rsplit(".", 1)[1]) >= int(first.file.rsplit(".", 1)[1]) + ROTATIONS
    assert_exact(d)


def purged_while_down(d: Deployment, daemon: Daemon, server: LocalServer) -> Position:
    """Stop the caught-up daemon, write changes it never saw, then purge their binlog."""
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0
    stopped_at = daemon.checkpoint()
    assert stopped_at is not None
    write_load(d, seed=67).run(transactions=40)
    wait_for(lambda: purged(server, stopped_at.file), 30, f"{stopped_at.file} purged")
    return stopped_at


@pytest.mark.bad_input
def test_binlog_purged_past_checkpoint_demands_a_bootstrap(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_source: LocalServer, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fpurge", source=own_source)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    stopped_at = purged_while_down(d, daemon, own_source)

    daemon.start()
    code = daemon.wait_exit(60)
    message = daemon.logs()
    assert code != 0, message[-3000:]
    assert "no longer has the binlog" in message and "bootstrap" in message, message[-3000:]
    assert daemon.checkpoint() == stopped_at
    state = read_state(d)
    assert state is not None and state.state == "halted"
    assert state.last_error_fix and "bootstrap" in state.last_error_fix
    bad_input.record(category="binlog settings", given="`aurora-sync run` after the binlog "
                     "holding its checkpoint was purged", outcome=daemon.error(), exit_code=code,
                     effect="halted; checkpoint unchanged")


def test_bootstrap_force_after_purge_streams_again(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_source: LocalServer) -> None:
    d = deployment_factory("fpurge2", source=own_source)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    purged_while_down(d, daemon, own_source)
    again = daemon.cli("bootstrap", "--force", timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    assert_exact(d)
