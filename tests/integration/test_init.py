"""`aurora-sync init`: creates every database and table, is idempotent, and --dry-run is dry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync import schema
from sync.cli import app
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer
from tests.bad_input import BadInputRecorder

pytestmark = pytest.mark.integration

NAMES = {
    "GATEWAY_DB_NAME": "ini_gateway", "SYLLABUS_DB_NAME": "ini_syllabus",
    "SUBJECT_DB_NAME": "ini_subject", "FILE_DB_NAME": "ini_file", "CONFIG_DB_NAME": "ini_config",
    "AURORA_SYNC_STATE_DB": "ini_state",
}
LOGICAL = {"ini_gateway": "gateway_db", "ini_syllabus": "syllabus_db",
           "ini_subject": "subject_db", "ini_file": "file_db", "ini_config": "config_db",
           "ini_state": "state"}


@pytest.fixture(autouse=True)
def _isolated_env(clean_env: None) -> None:
    """No aurora-sync setting of the calling shell reaches the tests or their subprocesses."""


@pytest.fixture
def env_file(target_server: LocalServer, tmp_path: Path) -> Iterator[Path]:
    _drop_all(target_server)
    yield write_env_file(tmp_path / "init.env", {
        "TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(target_server.port),
        "TIDB_USER": target_server.user, "TIDB_PASSWORD": target_server.password, **NAMES,
    })
    _drop_all(target_server)


def _drop_all(server: LocalServer) -> None:
    for database in LOGICAL:
        server.execute(f"DROP DATABASE IF EXISTS {database}")


def snapshot(server: LocalServer) -> list[tuple[object, ...]]:
    """Every column of every table in our databases, as information_schema has it."""
    placeholders = ", ".join(["%s"] * len(LOGICAL))
    return server.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({placeholders}) "
        "ORDER BY 1, 2, ORDINAL_POSITION", list(LOGICAL))


def test_init_twice_creates_every_schema_table_once(env_file: Path,
                                                    target_server: LocalServer) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["--env-file", str(env_file), "init"])
    assert first.exit_code == 0, first.output
    after_first = snapshot(target_server)

    second = runner.invoke(app, ["--env-file", str(env_file), "init"])
    assert second.exit_code == 0, second.output
    assert snapshot(target_server) == after_first

    for physical, logical in LOGICAL.items():
        tables = {str(t) for _, t in {(r[0], r[1]) for r in after_first if r[0] == physical}}
        assert tables == set(schema.schema_tables(logical)), physical
        assert f"✓ {physical}: {len(tables)} tables" in second.stdout


def test_dry_run_prints_the_sql_and_touches_nothing(env_file: Path,
                                                    target_server: LocalServer) -> None:
    before = target_server.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                   "ORDER BY 1")
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "init", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "CREATE DATABASE IF NOT EXISTS `ini_gateway`" in result.stdout
    assert "CREATE TABLE IF NOT EXISTS checkpoint" in result.stdout
    assert target_server.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                 "ORDER BY 1") == before


def test_dry_run_needs_no_server(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "none.env", {"TIDB_HOST": "192.0.2.1",
                                                      "AURORA_SYNC_CONNECT_TIMEOUT": "0.2"})
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "init", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "USE `aurora_sync`;" in result.stdout


@pytest.mark.bad_input
def test_console_script_init_and_unreachable_target(env_file: Path, tmp_path: Path,
                                                    target_server: LocalServer,
                                                    bad_input: BadInputRecorder) -> None:
    script = str(Path(sys.executable).with_name("aurora-sync"))
    proc = subprocess.run([script, "--env-file", str(env_file), "init"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert target_server.execute("SHOW TABLES FROM ini_state LIKE 'checkpoint'")

    down = write_env_file(tmp_path / "down.env", {"TIDB_HOST": "127.0.0.1", "TIDB_PORT": "1"})
    proc = subprocess.run([script, "--env-file", str(down), "init"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "cannot connect to the target at 127.0.0.1:1" in proc.stderr
    assert "fix:" in proc.stderr
    bad_input.record(category="config", given="`TIDB_PORT=1`: nothing listens there "
                     "(`aurora-sync init`)", outcome=proc.stderr, exit_code=proc.returncode)
