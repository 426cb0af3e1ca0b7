"""`aurora-sync check` against real servers: a good setup passes, each bad one fails clearly."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync import schema
from sync.checks import CheckResult, Status
from sync.cli import app
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer, start_server
from sync.preflight import render, run_checks
from sync.settings import Settings, load_settings
from tests.bad_input import BadInputRecorder

pytestmark = pytest.mark.integration

SOURCE_DB = "check_aurora"
REP_USER, REP_PASSWORD = "check_rep", "rep-Pw-7x1"
TARGET_NAMES = {
    "GATEWAY_DB_NAME": "chk_gateway", "SYLLABUS_DB_NAME": "chk_syllabus",
    "SUBJECT_DB_NAME": "chk_subject", "FILE_DB_NAME": "chk_file", "CONFIG_DB_NAME": "chk_config",
    "AURORA_SYNC_STATE_DB": "chk_state",
}


@pytest.fixture(autouse=True)
def _isolated_env(clean_env: None) -> None:
    """No aurora-sync setting of the calling shell reaches the tests or their subprocesses."""


def env_for(source: LocalServer, target: LocalServer, *, user: str = REP_USER,
            password: str = REP_PASSWORD, database: str = SOURCE_DB) -> dict[str, str]:
    return {
        "SOURCE_DB_HOST": "127.0.0.1", "SOURCE_DB_PORT": str(source.port),
        "SOURCE_DB_USER": user, "SOURCE_DB_PASSWORD": password, "SOURCE_DB_NAME": database,
        "TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(target.port), "TIDB_USER": target.user,
        "TIDB_PASSWORD": target.password, **TARGET_NAMES,
    }


def settings_for(source: LocalServer, target: LocalServer, **changes: str) -> Settings:
    return load_settings(None, **{**env_for(source, target), **changes})


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def prepared(source_server: LocalServer, target_server: LocalServer) -> tuple[LocalServer,
                                                                              LocalServer]:
    """The shared source with an aurora database and a least-privilege login; an initialised
    target under database names of this module's own."""
    source_server.execute(f"CREATE DATABASE IF NOT EXISTS {SOURCE_DB}")
    source_server.run_script(schema.schema_file("aurora").read_text(), database=SOURCE_DB)
    source_server.execute(f"CREATE USER IF NOT EXISTS '{REP_USER}'@'%' "
                          f"IDENTIFIED BY '{REP_PASSWORD}'")
    source_server.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* "
                          f"TO '{REP_USER}'@'%'")
    source_server.execute(f"GRANT SELECT ON {SOURCE_DB}.* TO '{REP_USER}'@'%'")
    schema.init_target(settings_for(source_server, target_server))
    return source_server, target_server


def test_check_passes_on_a_good_source_and_an_initialised_target(
        prepared: tuple[LocalServer, LocalServer]) -> None:
    results = run_checks(settings_for(*prepared))
    assert [r.line() for r in results if r.status is not Status.OK] == []
    names = by_name(results)
    for required in ("source reachable", "log_bin", "binlog_format", "binlog_row_image",
                     "binlog_row_metadata", "grant REPLICATION SLAVE", "grant SELECT",
                     "source database", "target reachable", "target chk_gateway",
                     "target chk_state"):
        assert names[required].status is Status.OK


def test_console_script_check_exits_zero(prepared: tuple[LocalServer, LocalServer],
                                         tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "check.env", env_for(*prepared))
    script = Path(sys.executable).with_name("aurora-sync")
    proc = subprocess.run([str(script), "--env-file", str(env_file), "check"],
                          capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ log_bin: ON" in proc.stdout
    assert REP_PASSWORD not in proc.stdout + proc.stderr


def test_uninitialised_target_says_run_init(prepared: tuple[LocalServer, LocalServer]) -> None:
    results = by_name(run_checks(settings_for(*prepared, GATEWAY_DB_NAME="chk_never_made")))
    missing = results["target chk_never_made"]
    assert missing.status is Status.FAIL
    assert "aurora-sync init" in (missing.fix or "")


@pytest.mark.bad_input
def test_user_without_replication_grants(prepared: tuple[LocalServer, LocalServer],
                                         bad_input: BadInputRecorder) -> None:
    source, target = prepared
    source.execute("CREATE USER IF NOT EXISTS 'only_select'@'%' IDENTIFIED BY 'sel-pw'")
    source.execute(f"GRANT SELECT ON {SOURCE_DB}.* TO 'only_select'@'%'")
    results = by_name(run_checks(settings_for(source, target, SOURCE_DB_USER="only_select",
                                              SOURCE_DB_PASSWORD="sel-pw")))
    slave = results["grant REPLICATION SLAVE"]
    assert slave.status is Status.FAIL
    assert slave.fix == "GRANT REPLICATION SLAVE ON *.* TO only_select@%;"
    assert results["grant REPLICATION CLIENT"].status is Status.FAIL
    assert results["grant SELECT"].status is Status.OK
    bad_input.record(category="credentials", given="a source user with SELECT on aurora only "
                     "(no REPLICATION SLAVE / CLIENT)", effect="`check` fails",
                     outcome=render([slave, results["grant REPLICATION CLIENT"]]),
                     secrets=["sel-pw"])


@pytest.mark.bad_input
def test_wrong_password_fails_without_showing_it(
        prepared: tuple[LocalServer, LocalServer], tmp_path: Path,
        bad_input: BadInputRecorder) -> None:
    wrong = "Wr0ng-Pa55-xyz"
    env_file = write_env_file(tmp_path / "bad.env",
                              env_for(*prepared, password=wrong))
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "check"])
    assert result.exit_code == 1
    output = result.stdout + result.stderr
    assert "✗ source reachable" in output
    assert "access denied" in output
    assert "SOURCE_DB_PASSWORD" in output
    assert wrong not in output
    shown = [line for line in output.splitlines() if "source reachable" in line or
             "SOURCE_DB_PASSWORD" in line]
    bad_input.record(category="credentials", given="a wrong `SOURCE_DB_PASSWORD`",
                     outcome="\n".join(shown), exit_code=result.exit_code, secrets=[wrong])


@pytest.mark.bad_input
def test_wrong_target_password_stops_run_before_it_writes(
        prepared: tuple[LocalServer, LocalServer], tmp_path: Path,
        bad_input: BadInputRecorder) -> None:
    source, target = prepared
    wrong = "N0t-the-Tidb-pw"
    env = {**env_for(source, target), "TIDB_PASSWORD": wrong}
    # `run` installs its SIGTERM/SIGINT handlers: pytest's own come back afterwards.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(
            app, ["--env-file", str(write_env_file(tmp_path / "r.env", env)), "run"])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert result.exit_code == 1
    assert "target refused the login" in result.stderr and "TIDB_PASSWORD" in result.stderr
    assert wrong not in result.stdout + result.stderr
    bad_input.record(category="credentials", given="a wrong `TIDB_PASSWORD` (`aurora-sync run`)",
                     outcome=result.stderr, exit_code=result.exit_code, secrets=[wrong])


@pytest.mark.bad_input
def test_our_server_id_equal_to_the_source_fails(
        prepared: tuple[LocalServer, LocalServer], bad_input: BadInputRecorder) -> None:
    source, target = prepared
    results = by_name(run_checks(settings_for(source, target,
                                              AURORA_SYNC_SERVER_ID=str(source.server_id))))
    assert results["server id"].status is Status.FAIL
    assert results["server id"].fix
    bad_input.record(category="binlog settings", given="`AURORA_SYNC_SERVER_ID` equal to the "
                     "source's own `server_id`", effect="`check` fails",
                     outcome=render([results["server id"]]))


@pytest.mark.bad_input
def test_invalid_setting_exits_2(tmp_path: Path, bad_input: BadInputRecorder) -> None:
    env_file = write_env_file(tmp_path / "x.env", {"TIDB_PORT": "four-thousand"})
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "check"])
    assert result.exit_code == 2
    assert "TIDB_PORT" in result.stderr
    bad_input.record(category="config", given="`TIDB_PORT=four-thousand` in the env file "
                     "(`aurora-sync check`)", outcome=result.stderr, exit_code=result.exit_code)


@pytest.fixture
def misconfigured(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    name, server_id, options = request.param
    server = start_server(name, server_id=server_id, options=options)
    yield server
    server.stop()


@pytest.mark.parametrize("misconfigured", [("nolog", 311, {"log_bin": None})],
                         indirect=True)
@pytest.mark.bad_input
def test_log_bin_off(misconfigured: LocalServer, target_server: LocalServer,
                     bad_input: BadInputRecorder) -> None:
    results = by_name(run_checks(settings_for(misconfigured, target_server,
                                              SOURCE_DB_USER=misconfigured.user,
                                              SOURCE_DB_PASSWORD=misconfigured.password)))
    log_bin = results["log_bin"]
    assert log_bin.status is Status.FAIL
    assert "OFF" in log_bin.detail
    assert "log_bin=binlog" in (log_bin.fix or "")
    bad_input.record(category="binlog settings", given="a source without a binlog (`log_bin` "
                     "OFF)", effect="`check` fails", outcome=render([log_bin]))


@pytest.mark.parametrize(
    "misconfigured",
    [("statement", 312, {"binlog_format": "STATEMENT", "binlog_row_image": "MINIMAL"})],
    indirect=True,
)
@pytest.mark.bad_input
def test_statement_format_and_minimal_image(misconfigured: LocalServer,
                                            target_server: LocalServer,
                                            bad_input: BadInputRecorder) -> None:
    results = by_name(run_checks(settings_for(misconfigured, target_server,
                                              SOURCE_DB_USER=misconfigured.user,
                                              SOURCE_DB_PASSWORD=misconfigured.password)))
    fmt, image = results["binlog_format"], results["binlog_row_image"]
    assert fmt.status is Status.FAIL
    assert "STATEMENT (must be ROW)" in fmt.detail
    assert "SET GLOBAL binlog_format='ROW'" in (fmt.fix or "")
    assert image.status is Status.FAIL
    assert "MINIMAL (must be FULL)" in image.detail
    assert "SET GLOBAL binlog_row_image='FULL'" in (image.fix or "")
    assert results["log_bin"].status is Status.OK
    bad_input.record(category="binlog settings", given="`binlog_format=STATEMENT`",
                     effect="`check` fails", outcome=render([fmt]))
    bad_input.record(category="binlog settings", given="`binlog_row_image=MINIMAL`",
                     effect="`check` fails", outcome=render([image]))
