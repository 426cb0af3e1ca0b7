"""DDL on a mapped table mid-stream: the daemon halts before it and says what to do; the
operator updates the mapping and continues with `run --accept-ddl FILE:POS`.

A new aurora column is a decision, not a silent loss: the mapping check refuses a source
column that is neither copied nor dropped. The operator here decides to leave it out of the
targets (``drop``), so no target schema change is needed; the same halt and continue hold for
``copy`` after the column is added to the service schema.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sync.dev.localenv import ROOT
from sync.model import Position
from tests.bad_input import BadInputRecorder
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, read_state
from tests.failure.conftest import bootstrapped, check_lines, drain, seed, write_load

pytestmark = [pytest.mark.integration, pytest.mark.failure]

ACCEPT = re.compile(r"--accept-ddl (?P<file>[^\s:]+):(?P<pos>\d+)")
MARKER_ID = 990_001


def mapping_dropping(column: str, directory: Path) -> Path:
    text = (ROOT / "config" / "mapping.yaml").read_text()
    copy = "    copy: [email, password_hash, name, last_login_at, created_at, updated_at]\n"
    assert copy in text
    path = directory / "mapping.yaml"
    path.write_text(text.replace(copy, f"{copy}    drop: [{column}]\n", 1))
    return path


def gateway_user(d: Deployment, user_id: int) -> bool:
    rows = d.target.execute(f"SELECT 1 FROM `{d.settings.database('gateway_db')}`.users "
                            "WHERE id = %s", [user_id])
    return bool(rows)


@pytest.mark.bad_input
def test_ddl_on_mapped_table_halts_then_accept_ddl_continues(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        tmp_path: Path, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fddl")
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    running = write_load(d, seed=59).start()
    time.sleep(2)
    d.source.execute(f"ALTER TABLE `{d.source_db}`.users ADD COLUMN nickname VARCHAR(40) NULL")
    d.source.execute(f"INSERT INTO `{d.source_db}`.users (id, email, password_hash, name, "
                     "nickname) VALUES (%s, 'after-ddl@example.org', 'x', 'After', 'nick')",
                     [MARKER_ID])
    code = daemon.wait_exit(60)
    stats = running.stop()
    assert stats.committed > 50

    assert code == 1, daemon.logs()[-3000:]
    message = daemon.logs()
    assert "ALTER TABLE" in message and f"{d.source_db}.users" in message
    accept = ACCEPT.search(message)
    assert accept is not None, message[-3000:]
    ddl_at = Position(accept["file"], int(accept["pos"]))
    assert f"position={ddl_at.file}:{ddl_at.pos}" in message
    checkpoint = daemon.checkpoint()
    assert checkpoint is not None and checkpoint < ddl_at
    assert not gateway_user(d, MARKER_ID)
    state = read_state(d)
    assert state is not None and state.state == "halted"
    assert state.last_error and "ALTER TABLE" in state.last_error
    assert state.last_error_fix and "--accept-ddl" in state.last_error_fix
    bad_input.record(category="schema drift", given="`ALTER TABLE users ADD COLUMN nickname` "
                     "on aurora under load", outcome=daemon.error(), exit_code=code,
                     effect="halted before the statement; checkpoint before it")

    # The mapping check names the new column until the operator decides about it.
    checked = daemon.cli("check")
    assert "nickname" in checked.stdout
    assert checked.returncode == 2
    bad_input.record(category="schema drift", given="`aurora-sync check` after aurora gained "
                     "a column the mapping neither copies nor drops",
                     outcome=check_lines(checked.stdout, "nickname"),
                     exit_code=checked.returncode)
    d.settings = d.settings.model_copy(
        update={"mapping_file": mapping_dropping("nickname", tmp_path)})
    decided = daemon_factory(d)
    assert "nickname" not in decided.cli("check").stdout

    decided.start("--accept-ddl", f"{ddl_at.file}:{ddl_at.pos}")
    decided.wait_http()
    drain(d, decided)
    assert gateway_user(d, MARKER_ID)
    assert decided.checkpoint() > ddl_at  # type: ignore[operator]
    assert_exact(d)
    # Past the statement, a plain restart no longer stops at it.
    decided.start()
    decided.wait_http()  # a SIGTERM before the daemon handles it would kill it
    drain(d, decided)
