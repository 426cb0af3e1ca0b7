"""One source transaction larger than the batch limits is applied whole and exact.

Over ``AURORA_SYNC_BATCH_MAX_ROWS`` it stays one target transaction: nothing of it shows
before all of it does. Over ``AURORA_SYNC_BATCH_MAX_BYTES`` (TiDB caps a transaction's size)
it is cut into target transactions and only the last carries the checkpoint: its first parts
show before the last commits, a crash in between leaves the checkpoint before it, and the
restart replays it whole. A row lock held on the target row its last change writes holds the
daemon in the middle of it, so each test looks at that moment instead of guessing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from sync.model import Position
from tests.bad_input import BadInputRecorder
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, wait_for
from tests.failure.conftest import bootstrapped, drain, seed

pytestmark = [pytest.mark.integration, pytest.mark.failure]

ROWS = 3000
ROW_LIMIT = 100
BYTE_LIMIT = 64 * 1024


def huge_transaction(d: Deployment, tag: str, user_id: int) -> Position:
    """``ROWS`` syllabus rows of about 300 bytes, then a change of one user, in one source
    transaction; the source position after it."""
    with contextlib.closing(d.aurora_conn()) as conn, conn.cursor() as cur:
        conn.begin()
        cur.execute("INSERT INTO syllabus (subject_id, title, content) "
                    "SELECT (SELECT MIN(id) FROM subjects), CONCAT(%s, seq), REPEAT('h', 300) "
                    f"FROM seq_1_to_{ROWS}", [f"{tag}-"])
        cur.execute("UPDATE users SET name = %s WHERE id = %s", [f"{tag} user", user_id])
        conn.commit()
    return d.source_position()


@contextlib.contextmanager
def target_row_locked(d: Deployment, user_id: int) -> Iterator[None]:
    """The target's row of ``user_id`` locked for the block, as a long transaction would."""
    conn = d.target_conn()
    try:
        conn.autocommit(False)
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM `{d.settings.database('gateway_db')}`.users "
                        "WHERE id = %s FOR UPDATE", [user_id])
        yield
    finally:
        conn.rollback()
        conn.close()


def lock_waits(d: Deployment) -> int:
    rows = d.target.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                            "WHERE trx_state = 'LOCK WAIT'")
    return int(str(rows[0][0]))


def visible(d: Deployment, tag: str) -> int:
    rows = d.target.execute(f"SELECT COUNT(*) FROM `{d.settings.database('syllabus_db')}`"
                            ".syllabus WHERE title LIKE %s", [f"{tag}-%"])
    return int(str(rows[0][0]))


def first_user(d: Deployment) -> int:
    return int(str(d.source.execute(f"SELECT MIN(id) FROM `{d.source_db}`.users")[0][0]))


@contextlib.contextmanager
def held_back(d: Deployment, daemon: Daemon,
              kind: str) -> Iterator[tuple[Position, int, Position | None]]:
    """A huge transaction written while the daemon waits on a locked target row: its end,
    how many of its rows the target shows, and the checkpoint, all while the lock holds."""
    user = first_user(d)
    with target_row_locked(d, user):
        end = huge_transaction(d, kind, user)
        wait_for(lambda: lock_waits(d) > 0, 60, "the daemon waiting for the locked row")
        yield end, visible(d, kind), daemon.checkpoint()


@pytest.mark.bad_input
def test_a_transaction_over_the_row_limit_is_one_target_transaction(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fhugerows")
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d, AURORA_SYNC_BATCH_MAX_ROWS=ROW_LIMIT))
    with held_back(d, daemon, "rows") as (end, seen, held):
        assert seen == 0, f"{seen} rows of an open transaction are visible"
        assert held is not None and held < end
    applied = daemon.wait_applied(end, 60)
    assert visible(d, "rows") == ROWS
    drain(d, daemon)
    assert_exact(d)
    bad_input.record(
        category="huge transactions",
        given=f"one source transaction of {ROWS + 1} row changes with "
        f"`AURORA_SYNC_BATCH_MAX_ROWS={ROW_LIMIT}`",
        outcome=f"one target transaction: while it waited for a locked target row {seen} of "
        f"its {ROWS} syllabus rows were visible and the checkpoint stayed at {held}; then all "
        f"{ROWS} and the checkpoint at {applied} (diff_targets: no differences)",
        effect="applied whole and exact")


@pytest.mark.bad_input
def test_a_transaction_over_the_byte_limit_survives_a_kill_between_its_parts(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fhugebytes")
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d, AURORA_SYNC_BATCH_MAX_BYTES=BYTE_LIMIT))
    with held_back(d, daemon, "bytes") as (end, seen, held):
        # Its first parts are committed; the checkpoint is never inside it.
        assert 0 < seen < ROWS, seen
        assert held is not None and held < end
        daemon.sigkill()
        assert daemon.wait_exit(30) != 0
    assert daemon.checkpoint() == held
    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    assert visible(d, "bytes") == ROWS
    assert_exact(d)
    bad_input.record(
        category="huge transactions",
        given=f"one source transaction of about {ROWS * 320 // 1024} KiB with "
        f"`AURORA_SYNC_BATCH_MAX_BYTES={BYTE_LIMIT}`, the daemon killed (SIGKILL) before its "
        "last part",
        outcome=f"cut into target transactions of at most {BYTE_LIMIT // 1024} KiB; before the "
        f"last one {seen} of {ROWS} rows were visible and the checkpoint stayed at {held} "
        "(before the transaction); after the kill and a restart it was replayed whole: "
        f"{ROWS} rows (diff_targets: no differences)",
        effect="applied whole and exact after the restart")
