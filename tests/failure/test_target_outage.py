"""The target goes away for 20 s under load: the writer retries, the lag rises and /healthz
says 503; when it is back the daemon resumes, the lag falls and the targets end exact."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest

from sync.dev.localdb import LocalServer
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, wait_for
from tests.failure.conftest import bootstrapped, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]

OUTAGE_SECONDS = 20.0
MAX_LAG = 5.0


def lag(daemon: Daemon) -> float:
    value = daemon.metric("aurora_sync_lag_seconds")
    return math.inf if value is None or math.isnan(value) else value


def health(daemon: Daemon) -> int:
    return daemon.scrape("/healthz").status_code


def test_target_outage_waits_and_resumes_exact(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer) -> None:
    d = deployment_factory("ftgt", target=own_target)
    seed(d)
    # The writer must outlast the outage rather than halt.
    daemon = daemon_factory(d, AURORA_SYNC_RETRY_MAX_SECONDS=OUTAGE_SECONDS * 6,
                            AURORA_SYNC_HEALTH_MAX_LAG=MAX_LAG)
    bootstrapped(d, daemon)
    running = write_load(d, seed=43).start()
    wait_for(lambda: health(daemon) == 200, 30, "/healthz 200 before the outage")

    own_target.shutdown()
    down_at = time.monotonic()
    lags, codes = [], []
    while time.monotonic() - down_at < OUTAGE_SECONDS:
        lags.append(lag(daemon))
        codes.append(health(daemon))
        time.sleep(1.0)
    own_target.start()

    assert daemon.running, daemon.logs()[-3000:]
    assert max(lags) > MAX_LAG, lags
    assert lags[-1] > OUTAGE_SECONDS / 2, lags
    assert 503 in codes, codes
    # Back: the daemon catches up under the still running load.
    try:
        wait_for(lambda: health(daemon) == 200 and lag(daemon) < 3.0, 60,
                 "/healthz 200 and the lag near zero after the outage")
    except AssertionError as missed:
        summaries = [line for line in daemon.logs().splitlines() if '"summary"' in line]
        raise AssertionError("\n".join([str(missed), *summaries[-5:]])) from None
    assert (daemon.metric("aurora_sync_retries_total", kind="apply") or 0) > 0 or \
        "retry" in daemon.logs()
    stats = running.stop()
    assert stats.committed > OUTAGE_SECONDS * 30
    drain(d, daemon)
    assert_exact(d)
