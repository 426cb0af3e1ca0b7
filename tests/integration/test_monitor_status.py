"""`aurora-sync status` against a real state schema and source, with and without a daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sync import schema
from sync.cli import app
from sync.db import connect
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer, free_port
from sync.model import Checkpoint, Position
from sync.monitor.http import MonitorServer
from sync.monitor.metrics import Metrics
from sync.monitor.status import DaemonStatus
from sync.settings import Settings, load_settings
from sync.source.position import current_position
from sync.state import StateStore, TableProgress

pytestmark = pytest.mark.integration

NAMES = {
    "GATEWAY_DB_NAME": "mon_gateway", "SYLLABUS_DB_NAME": "mon_syllabus",
    "SUBJECT_DB_NAME": "mon_subject", "FILE_DB_NAME": "mon_file", "CONFIG_DB_NAME": "mon_config",
    "AURORA_SYNC_STATE_DB": "mon_state", "SOURCE_DB_NAME": "mon_aurora",
}
FIX = "widen gateway_db.users.email, then restart the daemon"


@pytest.fixture(autouse=True)
def _isolated(clean_env: None) -> None:
    """Settings come from the test only (tests/conftest.py resets logging after each)."""


def env_values(source: LocalServer, target: LocalServer, http_port: int) -> dict[str, str]:
    return {
        "SOURCE_DB_HOST": "127.0.0.1", "SOURCE_DB_PORT": str(source.port),
        "SOURCE_DB_USER": source.user, "SOURCE_DB_PASSWORD": source.password,
        "TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(target.port), "TIDB_USER": target.user,
        "TIDB_PASSWORD": target.password, "AURORA_SYNC_HTTP_ADDR": f"127.0.0.1:{http_port}",
        "AURORA_SYNC_LOG_FORMAT": "json", **NAMES,
    }


@pytest.fixture(scope="module")
def world(source_server: LocalServer, target_server: LocalServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """A halted pipeline with a checkpoint, a finished bootstrap, files and source rows."""
    env = write_env_file(tmp_path_factory.mktemp("status") / "status.env",
                         env_values(source_server, target_server, free_port()))
    settings = load_settings(env)
    for name in NAMES.values():
        (source_server if name == "mon_aurora" else target_server).execute(
            f"DROP DATABASE IF EXISTS {name}")
    schema.init_target(settings)
    source_server.execute("CREATE DATABASE mon_aurora")
    source_server.execute("CREATE TABLE mon_aurora.users (id INT PRIMARY KEY)")
    source_server.execute("INSERT INTO mon_aurora.users VALUES (1), (2), (3)")
    _files(target_server)
    with connect(settings.source) as conn:
        checkpoint = current_position(conn)
    store = StateStore(lambda: connect(settings.target), "mon_state", settings.pipeline)
    run_id = store.start_bootstrap("consistent_snapshot", Position(checkpoint.file, 4), ["users"])
    store.write_progress(TableProgress(run_id, "aurora.users", (3,), 3, 1, True, 3))
    store.finish_bootstrap(run_id, "done", Position(checkpoint.file, 120))
    stamp = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=30)
    store.write_checkpoint(Checkpoint(checkpoint, stamp))
    store.write_state("halted", "ApplyError", error="error 1406 on mon_gateway.users", fix=FIX)
    store.close()
    source_server.execute("INSERT INTO mon_aurora.users VALUES (4)")  # the gap grows
    yield settings, env
    for name in NAMES.values():
        (source_server if name == "mon_aurora" else target_server).execute(
            f"DROP DATABASE IF EXISTS {name}")


def _files(target: LocalServer) -> None:
    for i, status in enumerate(("pending", "pending", "verified", "missing")):
        target.execute(
            "INSERT INTO mon_file.files (id, owner_id, file_name, file_url, checksum_status, "
            "created_at, updated_at) VALUES (%s, 1, 'f', %s, %s, NOW(), NOW())",
            (f"00000000-0000-0000-0000-00000000000{i}", f"/f{i}", status))


def invoke(env: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--env-file", str(env), "status", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_without_a_daemon_reads_the_state_and_the_source(
        world: tuple[Settings, Path]) -> None:
    _, env = world
    code, out, err = invoke(env, "--json", "--exact")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["state"]["name"] == "halted"
    assert doc["state"]["last_error"] == "error 1406 on mon_gateway.users"
    assert doc["what_to_do"] == FIX
    assert doc["daemon"]["running"] is False and doc["live"] is None
    positions = doc["positions"]
    assert positions["checkpoint"].startswith("binlog.")
    assert positions["gap_bytes"] > 0
    assert positions["bootstrap"]["state"] == "done"
    assert positions["bootstrap"]["end"].endswith(":120")
    assert doc["bootstrap_progress"] == [{"table": "aurora.users", "rows_copied": 3,
                                          "rows_estimated": 3, "done": True}]
    assert doc["tables"]["source"] == {"mon_aurora.users": 4}
    assert doc["tables"]["targets"]["mon_file.files"] == 4
    assert doc["checksums"] == {"pending": 2, "verified": 1, "missing": 1, "failed": 0}
    assert doc["lag"]["source"] == "checkpoint commit time"
    assert 29 < doc["lag"]["seconds"] < 120
    assert doc["problems"] == {}


def test_human_view_without_a_daemon_says_what_to_do(world: tuple[Settings, Path]) -> None:
    _, env = world
    code, out, err = invoke(env)
    assert code == 0, err
    assert "halted" in out
    assert f"what to do: {FIX}" in " ".join(out.split())
    assert "not answering at http://127.0.0.1:" in out
    assert "pending 2" in out


def test_with_a_daemon_its_live_figures_are_shown(world: tuple[Settings, Path]) -> None:
    settings, env = world
    metrics = Metrics.for_settings(settings, heartbeat_table=True)
    metrics.state("streaming")
    metrics.source_heartbeat(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=0.25))
    with MonitorServer(settings.http_addr, metrics):
        code, out, err = invoke(env, "--json")
        human_code, human, _ = invoke(env)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["daemon"]["running"] is True
    assert doc["daemon"]["healthy"] is True
    assert doc["live"]["state"] == "streaming"
    assert doc["lag"]["source"] == "heartbeat table"
    assert 0.2 < doc["lag"]["seconds"] < 3
    # The stored state still says halted (the daemon would rewrite it): both are shown.
    assert doc["state"]["name"] == "halted"
    assert human_code == 0
    assert "running (healthy" in human


def test_an_unreachable_source_is_a_problem_not_a_crash(
        world: tuple[Settings, Path], source_server: LocalServer, target_server: LocalServer,
        tmp_path: Path) -> None:
    values = env_values(source_server, target_server, free_port())
    values["SOURCE_DB_PORT"] = str(free_port())
    env = write_env_file(tmp_path / "nosource.env", values)
    code, out, err = invoke(env, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "cannot connect to the source" in doc["problems"]["source"]
    assert doc["state"]["name"] == "halted"
    assert "source_current" not in doc["positions"]


def test_watch_and_json_do_not_mix(world: tuple[Settings, Path]) -> None:
    _, env = world
    code, _, err = invoke(env, "--watch", "--json")
    assert code == 2
    assert "--watch is for people" in err


def test_the_daemons_status_route_serves_the_same_document(
        world: tuple[Settings, Path]) -> None:
    settings, env = world
    metrics = Metrics.for_settings(settings, heartbeat_table=True)
    metrics.state("catching_up", "from binlog.000001:4")
    with MonitorServer(settings.http_addr, metrics,
                       status=DaemonStatus(settings, metrics.live)) as server:
        served = httpx.get(f"{server.url}/status", timeout=10).json()
        code, out, err = invoke(env, "--json")
    assert code == 0, err
    printed = json.loads(out)
    assert set(served) == set(printed)
    for key in ("state", "positions", "bootstrap_progress", "checksums"):
        assert served[key] == printed[key], key
    assert served["live"]["state"] == printed["live"]["state"] == "catching_up"
    assert served["daemon"]["running"] is True
