"""The mapping checked against real schemas read from information_schema (MariaDB)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.dev.localdb import LocalServer
from sync.mapping import load_mapping
from sync.mapping.catalog import (
    read_columns,
    read_foreign_keys,
    read_primary_keys,
    read_target_columns,
)
from sync.mapping.check import check_mapping
from sync.mapping.spec import MappingSpec
from sync.model import TableRef

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SOURCE_DB = "aurora_catalog"
# Physical names differ from the logical ones, as *_DB_NAME allows.
TARGETS = {
    db: f"{db}_catalog"
    for db in ("gateway_db", "syllabus_db", "subject_db", "file_db", "config_db")
}


@pytest.fixture(scope="module")
def servers(
    source_server: LocalServer, target_server: LocalServer
) -> Iterator[tuple[LocalServer, LocalServer]]:
    source_server.execute(f"DROP DATABASE IF EXISTS {SOURCE_DB}")
    source_server.execute(f"CREATE DATABASE {SOURCE_DB}")
    source_server.run_script((ROOT / "schemas" / "aurora.sql").read_text(), SOURCE_DB)
    for logical, physical in TARGETS.items():
        target_server.execute(f"DROP DATABASE IF EXISTS {physical}")
        target_server.execute(f"CREATE DATABASE {physical}")
        target_server.run_script((ROOT / "schemas" / f"{logical}.sql").read_text(), physical)
    yield source_server, target_server
    source_server.execute(f"DROP DATABASE IF EXISTS {SOURCE_DB}")
    for physical in TARGETS.values():
        target_server.execute(f"DROP DATABASE IF EXISTS {physical}")


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(ROOT / "config" / "mapping.yaml", source_schema=SOURCE_DB)


def _check(servers: tuple[LocalServer, LocalServer], spec: MappingSpec) -> list[str]:
    source, target = servers
    with contextlib.closing(source.connect()) as s, contextlib.closing(target.connect()) as t:
        problems = check_mapping(
            spec,
            read_columns(s, SOURCE_DB),
            read_foreign_keys(s, SOURCE_DB),
            read_target_columns(t, TARGETS),
        )
    return [str(p) for p in problems]


def test_the_shipped_mapping_fits_the_shipped_schemas(servers, spec) -> None:
    assert _check(servers, spec) == []


def test_catalog_reads_keys_foreign_keys_and_types(servers) -> None:
    source, target = servers
    with contextlib.closing(source.connect()) as s, contextlib.closing(target.connect()) as t:
        keys = read_primary_keys(s, [SOURCE_DB])
        fks = read_foreign_keys(s, SOURCE_DB)
        columns = read_target_columns(t, TARGETS)
    assert keys[(SOURCE_DB, "syllabus")] == ("id",)
    assert fks[("repositories", "subject_id")].on_delete == "set_null"
    assert fks[("semesters", "user_id")].on_update == "cascade"
    files = columns[TableRef("file_db", "files")]
    assert files["id"].primary and files["checksum_status"].data_type == "enum"
    assert not files["owner_id"].nullable and not files["owner_id"].has_default


def test_schema_drift_is_reported(servers, spec) -> None:
    source, target = servers
    source.execute(f"ALTER TABLE {SOURCE_DB}.subjects ADD COLUMN room VARCHAR(20) NULL")
    source.execute(f"ALTER TABLE {SOURCE_DB}.users MODIFY name VARCHAR(500) NOT NULL")
    target.execute(f"ALTER TABLE {TARGETS['file_db']}.files DROP COLUMN checksum_error")
    try:
        problems = "\n".join(_check(servers, spec))
    finally:
        source.execute(f"ALTER TABLE {SOURCE_DB}.subjects DROP COLUMN room")
        source.execute(f"ALTER TABLE {SOURCE_DB}.users MODIFY name VARCHAR(255) NOT NULL")
        target.execute(
            f"ALTER TABLE {TARGETS['file_db']}.files ADD COLUMN checksum_error VARCHAR(512) NULL"
        )
    assert f"{SOURCE_DB}.subjects.room: source column is neither copied nor dropped" in problems
    assert "gateway_db.users.name: varchar(255) is shorter than varchar(500)" in problems
    assert "file_db.files.checksum_error: written column does not exist" in problems
    assert problems.count("\n") == 2
