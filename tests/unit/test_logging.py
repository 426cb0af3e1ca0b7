"""Logging: JSON or console, levels, and secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging

import structlog

from sync.logging import MASK, RedactSecrets, configure_logging
from sync.settings import Settings, load_settings

SECRET = "hunter2-very-secret"


def settings(**values: str) -> Settings:
    return load_settings(None, SOURCE_DB_PASSWORD=SECRET, TIDB_PASSWORD="tidb-pw-42", **values)


def test_json_lines_when_not_a_terminal_and_secret_values_masked() -> None:
    out = io.StringIO()
    configure_logging(settings(), stream=out)

    structlog.get_logger().info("connected", dsn=f"mysql://u:{SECRET}@h/db", table="users",
                                nested={"inner": [f"x{SECRET}y", 3]})

    event = json.loads(out.getvalue())
    assert event["event"] == "connected"
    assert event["table"] == "users"
    assert event["dsn"] == f"mysql://u:{MASK}@h/db"
    assert event["nested"] == {"inner": [f"x{MASK}y", 3]}
    assert SECRET not in out.getvalue()


def test_secret_named_keys_are_masked_whatever_they_hold() -> None:
    out = io.StringIO()
    configure_logging(settings(), stream=out)

    structlog.get_logger().info("login", password="not-configured-anywhere", api_key="k",
                                auth_token="t", user="alice")

    event = json.loads(out.getvalue())
    assert event["password"] == event["api_key"] == event["auth_token"] == MASK
    assert event["user"] == "alice"


def test_exception_text_is_masked() -> None:
    out = io.StringIO()
    configure_logging(settings(), stream=out)

    def fail() -> None:
        raise RuntimeError(f"login failed with {SECRET}")

    try:
        fail()
    except RuntimeError:
        structlog.get_logger().exception("boom")

    assert "login failed with" in out.getvalue()
    assert SECRET not in out.getvalue()


def test_level_filters_and_console_format_is_selectable() -> None:
    out = io.StringIO()
    configure_logging(settings(AURORA_SYNC_LOG_LEVEL="warning",
                               AURORA_SYNC_LOG_FORMAT="console"), stream=out)

    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown", tidb="tidb-pw-42")

    text = out.getvalue()
    assert "hidden" not in text
    assert "shown" in text
    assert "tidb-pw-42" not in text
    assert not text.lstrip().startswith("{")


def test_replication_library_logger_stays_quiet_and_stdlib_records_are_masked() -> None:
    out = io.StringIO()
    configure_logging(settings(AURORA_SYNC_LOG_LEVEL="debug"), stream=out)

    logging.getLogger("pymysqlreplication.binlogstream").info("ctl conn %s", SECRET)
    logging.getLogger("some.lib").warning("password is %s", SECRET)

    assert logging.getLogger("pymysqlreplication").getEffectiveLevel() == logging.WARNING
    assert "ctl conn" not in out.getvalue()
    assert "password is " + MASK in out.getvalue()
    assert SECRET not in out.getvalue()


def test_empty_secrets_do_not_mangle_text() -> None:
    redact = RedactSecrets(["", "ab"])
    assert redact.redact_text("xaby") == f"x{MASK}y"
    assert redact(None, "info", {"event": "plain", "n": 3}) == {"event": "plain", "n": 3}
