"""Connection failures in the monitor's jobs and commands log what failed, never passwords."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.checksums import ChecksumJob, ChecksumOptions
from sync.cli import app
from sync.db import connect
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer, free_port
from sync.logging import configure_logging
from sync.monitor.heartbeat import HeartbeatWriter
from sync.monitor.metrics import Metrics
from sync.monitor.scheduler import GapSampler, log_summary
from sync.monitor.status import gather
from sync.settings import load_settings

pytestmark = pytest.mark.integration

SOURCE_PW = f"src-{uuid.uuid4().hex}"
TARGET_PW = f"tgt-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _isolated(clean_env: None) -> None:
    """Settings come from the test only (tests/conftest.py resets logging after each)."""


def env(source: LocalServer, target: LocalServer) -> dict[str, str]:
    """The real source with a wrong password; a target port where nothing listens."""
    return {
        "SOURCE_DB_HOST": "127.0.0.1", "SOURCE_DB_PORT": str(source.port),
        "SOURCE_DB_USER": source.user, "SOURCE_DB_PASSWORD": SOURCE_PW,
        "TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(free_port()), "TIDB_USER": target.user,
        "TIDB_PASSWORD": TARGET_PW, "AURORA_SYNC_HTTP_ADDR": f"127.0.0.1:{free_port()}",
        "AURORA_SYNC_LOG_FORMAT": "json", "AURORA_SYNC_LOG_LEVEL": "debug",
    }


def test_failing_jobs_and_status_log_no_password(source_server: LocalServer,
                                                 target_server: LocalServer,
                                                 tmp_path: Path) -> None:
    settings = load_settings(write_env_file(tmp_path / "bad.env",
                                            env(source_server, target_server)))
    out = io.StringIO()
    configure_logging(settings, stream=out)
    metrics = Metrics.for_settings(settings, heartbeat_table=True)

    HeartbeatWriter(lambda: connect(settings.source)).beat()
    GapSampler(lambda: connect(settings.source), metrics).sample()
    ChecksumJob(lambda: connect(settings.target, settings.file_db), settings.file_db,
                ChecksumOptions(storage_root=None)).run_quietly()
    document = gather(settings)
    log_summary(metrics)

    text = out.getvalue()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    names = {e["event"] for e in events}
    # The failures were logged (so the capture works) ...
    assert {"heartbeat write failed", "position gap not sampled", "checksums pass failed",
            "status part unavailable", "summary"} <= names
    assert any("access denied" in str(e.get("reason")) for e in events)
    assert "cannot connect to the target" in document["problems"]["target"]
    # ... and no password is anywhere in them or in the document.
    for secret in (SOURCE_PW, TARGET_PW):
        assert secret not in text
        assert secret not in json.dumps(document)


def test_status_command_with_failing_servers_prints_no_password(
        source_server: LocalServer, target_server: LocalServer, tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "bad.env", env(source_server, target_server))
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "status", "--json"])
    assert result.exit_code == 0, result.stderr
    problems = json.loads(result.stdout)["problems"]
    assert "access denied" in problems["source"]
    for secret in (SOURCE_PW, TARGET_PW):
        assert secret not in result.stdout
        assert secret not in result.stderr

