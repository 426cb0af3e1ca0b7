"""Splitting the schema files into statements, and finding them at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import schema
from sync.errors import ConfigError
from sync.settings import load_settings


def test_split_handles_comments_quotes_and_semicolons_inside_them() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x VARCHAR(3) DEFAULT ';', y INT) ; # trailing; comment\n"
        "/* block; comment */ CREATE TABLE `b;c` (z TEXT COMMENT 'it''s -- not; a comment');\n"
        "SELECT 1--1;\n"
        "   \n"
    )
    assert schema.split_statements(sql) == [
        "CREATE TABLE a (x VARCHAR(3) DEFAULT ';', y INT)",
        "CREATE TABLE `b;c` (z TEXT COMMENT 'it''s -- not; a comment')",
        "SELECT 1--1",
    ]


def test_every_schema_file_splits_into_its_create_tables() -> None:
    for name in (*schema.LOGICAL_DATABASES, "state", "aurora"):
        text = schema.schema_file(name).read_text()
        statements = schema.load_statements(name)
        assert len(statements) == text.count("CREATE TABLE"), name
        assert all(s.upper().startswith("CREATE TABLE IF NOT EXISTS") for s in statements)
    assert schema.schema_tables("aurora") == (
        "users", "semesters", "subjects", "syllabus", "repositories")


def test_plan_uses_physical_names_and_state_db() -> None:
    settings = load_settings(None, GATEWAY_DB_NAME="gw", AURORA_SYNC_STATE_DB="st")
    plans = schema.plan_init(settings)
    assert [(p.logical, p.physical) for p in plans] == [
        ("gateway_db", "gw"), ("syllabus_db", "syllabus_db"), ("subject_db", "subject_db"),
        ("file_db", "file_db"), ("config_db", "config_db"), ("state", "st")]
    rendered = schema.render_plan(plans)
    assert "CREATE DATABASE IF NOT EXISTS `gw`" in rendered
    assert "USE `st`;" in rendered


def test_schemas_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(schema.SCHEMAS_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=schema.SCHEMAS_DIR_ENV):
        schema.schemas_dir()
    (tmp_path / "aurora.sql").write_text("CREATE TABLE IF NOT EXISTS t (x INT);\n")
    assert schema.schemas_dir() == tmp_path
    assert schema.schema_tables("aurora") == ("t",)


def test_quote_identifier_escapes_backticks() -> None:
    assert schema.quote_identifier("we`ird") == "`we``ird`"
