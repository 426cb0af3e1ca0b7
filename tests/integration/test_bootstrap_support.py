"""Shared set-up of the bootstrap tests: an aurora of about 30k rows and clean targets."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sync import schema
from sync.db import connect
from sync.dev.generate import generate, users_for_rows
from sync.dev.localdb import LocalServer
from sync.mapping.resolve import load_mapping
from sync.mapping.spec import MappingSpec
from sync.settings import Settings, load_settings
from sync.testing.memtarget import MemoryTarget
from sync.testing.reference import diff_targets, expected_state

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "config" / "mapping.yaml"
AURORA = "bs_aurora"
NAMES = {"gateway_db": "bs_gateway", "syllabus_db": "bs_syllabus", "subject_db": "bs_subject",
         "file_db": "bs_file", "config_db": "bs_config", "state_db": "bs_state"}
ENV_NAMES = {"GATEWAY_DB_NAME": "bs_gateway", "SYLLABUS_DB_NAME": "bs_syllabus",
             "SUBJECT_DB_NAME": "bs_subject", "FILE_DB_NAME": "bs_file",
             "CONFIG_DB_NAME": "bs_config", "AURORA_SYNC_STATE_DB": "bs_state"}


def make_aurora(source: LocalServer, rows: int = 30_000, database: str = AURORA) -> None:
    generate(source.connect, database=database, users=users_for_rows(rows), seed=7,
             create=True, drop=True)


def settings_for(source: LocalServer, target: LocalServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "source_host": source.host, "source_port": source.port, "source_user": source.user,
        "source_password": source.password, "source_db": AURORA,
        "target_host": target.host, "target_port": target.port, "target_user": target.user,
        "target_password": target.password, "pipeline": "bs", "mapping_file": MAPPING,
        "log_format": "json", **NAMES,
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


def env_for(source: LocalServer, target: LocalServer, **extra: str) -> dict[str, str]:
    return {
        "SOURCE_DB_HOST": source.host, "SOURCE_DB_PORT": str(source.port),
        "SOURCE_DB_USER": source.user, "SOURCE_DB_PASSWORD": source.password,
        "SOURCE_DB_NAME": AURORA, "TIDB_HOST": target.host, "TIDB_PORT": str(target.port),
        "TIDB_USER": target.user, "TIDB_PASSWORD": target.password,
        "AURORA_SYNC_PIPELINE": "bs", "AURORA_SYNC_MAPPING": str(MAPPING),
        "AURORA_SYNC_LOG_FORMAT": "json", **ENV_NAMES, **extra,
    }


def reset_targets(settings: Settings, target: LocalServer) -> None:
    for name in NAMES.values():
        target.execute(f"DROP DATABASE IF EXISTS `{name}`")
    schema.init_target(settings)


def spec_of(settings: Settings) -> MappingSpec:
    return load_mapping(settings.mapping_file, source_schema=settings.source_db)


def expected(settings: Settings) -> MemoryTarget:
    with contextlib.closing(connect(settings.source)) as conn:
        return expected_state(conn, spec_of(settings), settings.source_db)


def differences(settings: Settings) -> list[str]:
    with contextlib.closing(connect(settings.target)) as conn:
        return diff_targets(expected(settings), conn, spec_of(settings), settings.database)


def source_counts(source: LocalServer, database: str = AURORA) -> dict[str, int]:
    tables = ("users", "semesters", "subjects", "syllabus", "repositories")
    return {t: int(source.execute(f"SELECT COUNT(*) FROM `{database}`.`{t}`")[0][0])  # type: ignore[call-overload]
            for t in tables}


def progress(target: LocalServer) -> list[tuple[Any, ...]]:
    """(run_id, source_table, rows_copied, chunks, done) of every progress row."""
    return target.execute("SELECT run_id, source_table, rows_copied, chunks, done FROM "
                          "bs_state.bootstrap_progress ORDER BY run_id, source_table")
