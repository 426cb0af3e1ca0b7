"""Settings: the guide's variable names, precedence, password files, secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sync.errors import ConfigError
from sync.settings import Settings, load_settings
from tests.bad_input import BadInputRecorder

GUIDE_VARIABLES = (
    "SOURCE_DB_HOST", "SOURCE_DB_PORT", "SOURCE_DB_USER", "SOURCE_DB_PASSWORD",
    "SOURCE_DB_PASSWORD_FILE", "SOURCE_DB_NAME", "SOURCE_DB_SSL_CA",
    "SOURCE_DB_SSL_VERIFY_IDENTITY", "TIDB_HOST", "TIDB_PORT", "TIDB_USER", "TIDB_PASSWORD",
    "TIDB_PASSWORD_FILE", "TIDB_SSL_CA", "TIDB_SSL_VERIFY_IDENTITY", "GATEWAY_DB_NAME",
    "SYLLABUS_DB_NAME", "SUBJECT_DB_NAME", "FILE_DB_NAME", "CONFIG_DB_NAME",
)
SECRET = "s3cr3t-Pa55word!"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the machine running the tests may leak in; no stray .env either."""

    for name in list(os.environ):
        if name.upper() in GUIDE_VARIABLES or name.upper().startswith("AURORA_SYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_guide_variables_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DB_HOST", "gateway01.us-east-1.prod.aws.tidbcloud.com")
    monkeypatch.setenv("SOURCE_DB_PORT", "4000")
    monkeypatch.setenv("SOURCE_DB_USER", "3Eo7CXZzQYFQ3i5.root")
    monkeypatch.setenv("SOURCE_DB_SSL_CA", "ca-cert.pem")
    monkeypatch.setenv("TIDB_HOST", "tidb.example")
    monkeypatch.setenv("GATEWAY_DB_NAME", "gw_prod")
    monkeypatch.setenv("AURORA_SYNC_SERVER_ID", "777")

    s = load_settings(None)

    assert s.source.host == "gateway01.us-east-1.prod.aws.tidbcloud.com"
    assert s.source.port == 4000
    assert s.source.user == "3Eo7CXZzQYFQ3i5.root"
    assert s.source.ssl_ca == Path("ca-cert.pem")
    assert s.target.host == "tidb.example"
    assert s.database("gateway_db") == "gw_prod"
    assert s.server_id == 777


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / "custom.env"
    env.write_text("TIDB_HOST=from-file\nTIDB_PORT=4001\nFILE_DB_NAME=files_here\n")

    s = load_settings(env)

    assert (s.target.host, s.target.port, s.database("file_db")) == ("from-file", 4001,
                                                                      "files_here")


def test_environment_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("TIDB_HOST=from-file\nTIDB_USER=file-user\n")
    monkeypatch.setenv("TIDB_HOST", "from-env")

    s = load_settings(env)

    assert s.target.host == "from-env"
    assert s.target.user == "file-user"


def test_default_env_file_is_dot_env_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SOURCE_DB_NAME=aurora_copy\n")
    assert load_settings().source_db == "aurora_copy"


def test_password_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src.pw").write_text(SECRET + "\n")
    (tmp_path / "tidb.pw").write_text("other-secret")
    monkeypatch.setenv("SOURCE_DB_PASSWORD", "ignored-when-a-file-is-given")
    monkeypatch.setenv("SOURCE_DB_PASSWORD_FILE", str(tmp_path / "src.pw"))
    monkeypatch.setenv("TIDB_PASSWORD_FILE", str(tmp_path / "tidb.pw"))

    s = load_settings(None)

    assert s.source.password.get_secret_value() == SECRET
    assert s.target.password.get_secret_value() == "other-secret"


@pytest.mark.bad_input
def test_unreadable_password_file_is_a_config_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    bad_input: BadInputRecorder) -> None:
    monkeypatch.setenv("TIDB_PASSWORD_FILE", str(tmp_path / "missing.pw"))
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    assert "missing.pw" in err.value.describe()
    assert "TIDB_PASSWORD_FILE" in err.value.describe()
    assert err.value.exit_code == 2
    bad_input.record(category="config", given="`TIDB_PASSWORD_FILE` names a file that does "
                     "not exist", outcome=err.value.describe(), exit_code=err.value.exit_code)


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DB_PASSWORD", SECRET)
    monkeypatch.setenv("TIDB_PASSWORD", SECRET)
    s = load_settings(None)

    shown = [repr(s), str(s), s.model_dump_json(), str(s.model_dump()), str(s.source),
             repr(s.source), str(s.target), repr(s.target)]

    for text in shown:
        assert SECRET not in text
    assert s.source.password.get_secret_value() == SECRET


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("variable", "value"),
    [("SOURCE_DB_PORT", "not-a-port"), ("TIDB_PORT", "70000"),
     ("AURORA_SYNC_SERVER_ID", "0"), ("AURORA_SYNC_LOG_LEVEL", "chatty"),
     ("AURORA_SYNC_BATCH_MAX_BYTES", "100"), ("SOURCE_DB_SSL_VERIFY_IDENTITY", "maybe")],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                          value: str, bad_input: BadInputRecorder) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    assert variable in err.value.describe()
    assert err.value.fix
    assert err.value.exit_code == 2
    bad_input.record(category="config", given=f"`{variable}={value}`",
                     outcome=err.value.describe(), exit_code=err.value.exit_code)


def test_settings_class_reads_the_same_names_as_load_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_DB_NAME", "cfg")
    assert Settings(_env_file=None).database("config_db") == "cfg"  # type: ignore[call-arg]


def test_example_env_documents_every_setting_and_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "example.env"
    lines = example.read_text().splitlines()
    documented = {line.lstrip("# ").split("=", 1)[0] for line in lines if "=" in line}
    for name, field in Settings.model_fields.items():
        aliases = field.validation_alias.choices  # type: ignore[union-attr]
        assert set(aliases) & documented, f"{name} is not in config/example.env"
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), f"no comment above {line}"
    s = load_settings(example)
    assert s.target.host == "gateway01.us-east-1.prod.aws.tidbcloud.com"
    assert s.source.password.get_secret_value() == "[YOUR_PASSWORD]"
