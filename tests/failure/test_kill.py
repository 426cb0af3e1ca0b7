"""SIGKILL of the daemon at random moments under a write load, each followed by a restart:
the checkpoint only moves forward and the targets end exact, nothing lost or doubled."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, alive, assert_exact, reader_processes, wait_for
from tests.failure.conftest import bootstrapped, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]

# CI may ask for fewer kills when the suite gets slow.
KILLS = int(os.environ.get("AURORA_SYNC_TEST_KILLS", "10"))


def test_sigkill_at_random_moments_then_restart_ends_exact(
        deployment_factory: Callable[..., Deployment],
        daemon_factory: Callable[..., Daemon]) -> None:
    d = deployment_factory("fkill")
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    rng = random.Random(20240611)
    running = write_load(d, seed=41).start()
    checkpoints = [daemon.checkpoint()]
    orphans_checked = 0
    for _ in range(KILLS):
        # From just after the start (still importing, or rebuilding lookups) to mid-stream.
        time.sleep(rng.choice((0.05, 0.3)) + rng.uniform(0.0, 2.0))
        assert daemon.process is not None
        readers = reader_processes(daemon.process.pid)
        daemon.sigkill()
        assert daemon.wait_exit(30) != 0
        # The binlog reader process dies with the daemon: no orphan keeps reading under
        # the daemon's server id.
        wait_for(lambda: not any(alive(pid) for pid in readers), 10,  # noqa: B023
                 f"the reader processes {readers} to die with the daemon")
        orphans_checked += bool(readers)
        checkpoint = daemon.checkpoint()
        assert checkpoint is not None and checkpoints[-1] is not None
        assert checkpoint >= checkpoints[-1], f"checkpoint went back: {checkpoints}"
        checkpoints.append(checkpoint)
        daemon.start()
    stats = running.stop()
    assert orphans_checked, "no kill found a binlog reader process to check"
    assert stats.committed > 10 * KILLS
    assert checkpoints[-1] > checkpoints[0]  # type: ignore[operator]
    drain(d, daemon)
    assert_exact(d)
