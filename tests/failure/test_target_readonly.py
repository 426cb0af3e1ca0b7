"""The target refuses writes under load: read-only (``SET GLOBAL read_only = 1``; the daemon's
user lacks READ ONLY ADMIN, as an application user does), or a table full (a MEMORY table at
its MAX_ROWS, as an InnoDB tablespace at its size limit answers: error 1114).

A read-only target is a state that passes (a failover, maintenance): the daemon retries,
applies nothing meanwhile and resumes when it is writable again. When it stays read-only past
``AURORA_SYNC_RETRY_MAX_SECONDS``, or a table is full, the daemon halts with the checkpoint
before the change it could not apply and says what to do. Each case ends exact once the
condition is lifted (and the daemon restarted if it halted).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import pytest

from sync.dev.localdb import LocalServer
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, wait_for
from tests.failure.conftest import (
    bootstrapped,
    drain,
    position_in,
    seed,
    transactions_between,
    write_load,
)

pytestmark = [pytest.mark.integration, pytest.mark.failure]

READ_ONLY_SECONDS = 10
SYNC_PASSWORD = "sync-rw-pw-local"


def lag(daemon: Daemon) -> float:
    value = daemon.metric("aurora_sync_lag_seconds")
    return math.inf if value is None or math.isnan(value) else value


def health(daemon: Daemon) -> int:
    return daemon.scrape("/healthz").status_code


def sync_user(server: LocalServer, prefix: str) -> dict[str, str]:
    """Daemon settings for a target user with every privilege on the prefix's databases and
    none that passes read_only (no READ ONLY ADMIN, no SUPER)."""
    user = f"{prefix}_sync"
    server.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{SYNC_PASSWORD}'")
    server.execute(f"GRANT ALL PRIVILEGES ON `{prefix}\\_%`.* TO '{user}'@'%'")
    return {"TIDB_USER": user, "TIDB_PASSWORD": SYNC_PASSWORD}


@contextlib.contextmanager
def read_only(server: LocalServer) -> Iterator[None]:
    server.execute("SET GLOBAL read_only = 1")
    try:
        yield
    finally:
        server.execute("SET GLOBAL read_only = 0")


def test_read_only_target_holds_the_stream_then_it_resumes_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer) -> None:
    d = deployment_factory("fro", target=own_target)
    seed(d)
    daemon = daemon_factory(d, **sync_user(own_target, "fro"),
                            AURORA_SYNC_RETRY_MAX_SECONDS=READ_ONLY_SECONDS * 12,
                            AURORA_SYNC_HEALTH_MAX_LAG=5)
    bootstrapped(d, daemon)
    running = write_load(d, seed=73).start()
    wait_for(lambda: health(daemon) == 200, 30, "/healthz 200 before the target turns read-only")
    codes = []
    with read_only(own_target):
        time.sleep(1.0)  # a batch in flight commits or meets read_only
        frozen = daemon.checkpoint()
        for _ in range(READ_ONLY_SECONDS):
            codes.append(health(daemon))
            time.sleep(1.0)
        assert daemon.running, daemon.logs()[-3000:]
        assert daemon.checkpoint() == frozen, "a write passed read_only"
    assert 503 in codes, codes
    wait_for(lambda: health(daemon) == 200 and lag(daemon) < 3.0, 60,
             "/healthz 200 and the lag near zero once the target is writable")
    assert (daemon.metric("aurora_sync_retries_total", kind="apply") or 0) > 0
    assert '"code": 1290' in daemon.logs()
    stats = running.stop()
    assert stats.committed > READ_ONLY_SECONDS * 20
    drain(d, daemon)
    assert daemon.checkpoint() > frozen  # type: ignore[operator]
    assert_exact(d)


def test_read_only_target_past_the_retry_budget_halts_then_restarts_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer) -> None:
    d = deployment_factory("frox", target=own_target)
    seed(d)
    daemon = daemon_factory(d, **sync_user(own_target, "frox"), AURORA_SYNC_RETRY_MAX_SECONDS=4)
    bootstrapped(d, daemon)
    running = write_load(d, seed=75).start()
    time.sleep(1.0)
    with read_only(own_target):
        code = daemon.wait_exit(60)
        held = daemon.checkpoint()
    stats = running.stop()
    assert stats.committed > 20
    error = daemon.error()
    assert code == 1, daemon.logs()[-3000:]
    assert "retryable error 1290" in error and "read-only" in error, error
    assert "make it writable again" in error and "TIDB_HOST" in error
    assert SYNC_PASSWORD not in daemon.logs()
    assert held is not None and held < position_in(error)
    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    assert_exact(d)


def test_full_target_table_halts_before_the_change_then_restarts_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer) -> None:
    d = deployment_factory("ffull", target=own_target)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    semesters = f"`{d.settings.database('syllabus_db')}`.semesters"
    count = int(str(own_target.execute(f"SELECT COUNT(*) FROM {semesters}")[0][0]))
    # Room for a few more rows only: the load's new users bring semesters.
    own_target.execute(f"ALTER TABLE {semesters} ENGINE=MEMORY MAX_ROWS={count + 4}")
    running = write_load(d, seed=79).start()
    code = daemon.wait_exit(90)
    stats = running.stop()
    assert stats.committed > 10
    error = daemon.error()
    assert code == 1, daemon.logs()[-3000:]
    assert "error 1114" in error and "is full" in error and "give the target space" in error
    assert f"table={d.settings.database('syllabus_db')}.semesters" in error
    held, at = daemon.checkpoint(), position_in(error)
    assert held is not None and held < at
    assert transactions_between(d.source, held, at) == 1
    own_target.execute(f"ALTER TABLE {semesters} ENGINE=InnoDB MAX_ROWS=0")
    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    assert_exact(d)
