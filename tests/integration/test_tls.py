"""TLS as the guide's VERIFY_IDENTITY: the right CA and host name connect, anything else fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.db import connect
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer, make_tls_files, start_server
from sync.errors import ConfigError, ConnectError
from sync.settings import Endpoint, load_settings
from tests.bad_input import BadInputRecorder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server() -> Iterator[LocalServer]:
    server = start_server("tls", server_id=321, tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_host_server() -> Iterator[LocalServer]:
    server = start_server("tls-other", server_id=322, tls=True,
                          tls_hostnames=("db.example.internal",))
    yield server
    server.stop()


def endpoint(server: LocalServer, ca: Path, host: str, role: str = "target") -> Endpoint:
    prefix = "TIDB" if role == "target" else "SOURCE_DB"
    settings = load_settings(None, **{
        f"{prefix}_HOST": host, f"{prefix}_PORT": server.port, f"{prefix}_USER": server.user,
        f"{prefix}_PASSWORD": server.password, f"{prefix}_SSL_CA": str(ca)})
    return settings.target if role == "target" else settings.source


@pytest.mark.parametrize("role", ["target", "source"])
def test_right_ca_and_host_name_connects_over_tls(tls_server: LocalServer, role: str) -> None:
    assert tls_server.tls is not None
    ep = endpoint(tls_server, tls_server.tls.ca_cert, "localhost", role)
    with contextlib.closing(connect(ep)) as conn, conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    assert row is not None
    assert row[1]


@pytest.mark.bad_input
def test_wrong_ca_fails_verification(tls_server: LocalServer, tmp_path: Path,
                                     bad_input: BadInputRecorder) -> None:
    other_ca = make_tls_files(tmp_path / "other", hostnames=("localhost",)).ca_cert
    with pytest.raises(ConnectError) as err:
        connect(endpoint(tls_server, other_ca, "localhost"))
    text = err.value.describe()
    assert "TLS verification failed" in text
    assert "TIDB_SSL_CA" in text
    assert tls_server.password not in text
    bad_input.record(category="TLS", given="`TIDB_SSL_CA` names a CA that did not sign the "
                     "server's certificate", outcome=text)


@pytest.mark.bad_input
def test_certificate_for_another_host_name_fails(other_host_server: LocalServer,
                                                 bad_input: BadInputRecorder) -> None:
    assert other_host_server.tls is not None
    with pytest.raises(ConnectError) as err:
        connect(endpoint(other_host_server, other_host_server.tls.ca_cert, "127.0.0.1"))
    text = err.value.describe()
    assert "TLS verification failed" in text
    assert "127.0.0.1" in text
    assert "match" in text.lower() or "not valid" in text.lower()
    bad_input.record(category="TLS", given="a certificate for `db.example.internal` reached "
                     "as `127.0.0.1` (`TIDB_HOST`)", outcome=text)


@pytest.mark.bad_input
def test_unreadable_ca_file_is_a_config_error(tls_server: LocalServer, tmp_path: Path,
                                              bad_input: BadInputRecorder) -> None:
    not_a_ca = tmp_path / "ca-cert.pem"
    not_a_ca.write_text("this is not a certificate\n")
    for ca, given in ((tmp_path / "missing.pem", "`TIDB_SSL_CA` names a missing file"),
                      (not_a_ca, "`TIDB_SSL_CA` names a file that is not a PEM certificate")):
        with pytest.raises(ConfigError) as err:
            connect(endpoint(tls_server, ca, "localhost"))
        text = err.value.describe()
        assert str(ca) in text and "TIDB_SSL_CA" in text
        assert err.value.exit_code == 2
        bad_input.record(category="TLS", given=given, outcome=text,
                         exit_code=err.value.exit_code)


@pytest.mark.bad_input
def test_check_reports_the_tls_failure(tls_server: LocalServer, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       bad_input: BadInputRecorder) -> None:
    for name in ("TIDB_HOST", "TIDB_PORT", "TIDB_SSL_CA", "TIDB_USER", "TIDB_PASSWORD",
                 "TIDB_PASSWORD_FILE", "SOURCE_DB_PORT", "SOURCE_DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    other_ca = make_tls_files(tmp_path / "other", hostnames=("localhost",)).ca_cert
    env_file = write_env_file(tmp_path / "tls.env", {
        "SOURCE_DB_PORT": "1", "TIDB_HOST": "localhost", "TIDB_PORT": str(tls_server.port),
        "TIDB_USER": tls_server.user, "TIDB_PASSWORD": tls_server.password,
        "TIDB_SSL_CA": str(other_ca)})
    result = CliRunner().invoke(app, ["--env-file", str(env_file), "check"])
    assert result.exit_code == 1
    assert "✗ target reachable: target TLS verification failed" in result.stdout
    shown = [line for line in result.stdout.splitlines() if "target reachable" in line]
    bad_input.record(category="TLS", given="`aurora-sync check` with a `TIDB_SSL_CA` of "
                     "another CA", outcome="\n".join(shown), exit_code=result.exit_code)
