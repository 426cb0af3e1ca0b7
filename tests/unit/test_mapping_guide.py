"""One row of the guide's "Data Mapping" per case: an aurora row in, the target row out."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.mapping import LookupState, Mapper, load_mapping
from sync.mapping.spec import MappingSpec
from sync.model import Op, RowChange, TableRef
from sync.testing.memtarget import MemoryTarget

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"
TS = datetime(2024, 5, 1, 8, 30)
AT = datetime(2023, 9, 1, 10, 0)
FILE_ID = "605c95b7-f047-5a18-9495-2282de9fa47e"
# One aurora syllabus row: the guide maps it to a syllabus row and to a files row.
SYLLABUS_ROW: dict[str, Any] = {
    "id": 21,
    "subject_id": 11,
    "title": "Plan",
    "content": "x",
    "file_url": "https://cdn.example.com/a/Week%201.pdf?x=1",
    "created_at": AT,
    "updated_at": AT,
}

PARENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "users",
        {
            "id": 7,
            "email": "ana@example.com",
            "password_hash": "h",
            "name": "Ana",
            "last_login_at": None,
            "created_at": AT,
            "updated_at": AT,
        },
    ),
    (
        "semesters",
        {
            "id": 3,
            "user_id": 7,
            "name": "Fall",
            "start_date": date(2023, 9, 1),
            "end_date": None,
            "is_current": 1,
        },
    ),
    (
        "subjects",
        {
            "id": 11,
            "semester_id": 3,
            "name": "Math",
            "credits": 5,
            "color": "#ff0000",
            "teacher": "Ms K",
        },
    ),
]

# (guide section, source table, source row, target table, expected target row)
CASES: list[tuple[str, str, dict[str, Any], TableRef, dict[str, Any]]] = [
    (
        "Users: profile, email verification, activity status added",
        "users",
        PARENTS[0][1],
        TableRef("gateway_db", "users"),
        {
            "id": 7,
            "email": "ana@example.com",
            "password_hash": "h",
            "name": "Ana",
            "last_login_at": None,
            "created_at": AT,
            "updated_at": AT,
            "display_name": None,
            "avatar_url": None,
            "bio": None,
            "timezone": "UTC",
            "locale": "en",
            "email_verified": 0,
            "email_verified_at": None,
            "email_verification_token": None,
            "is_active": 1,
            "status": "active",
        },
    ),
    (
        "Semesters: created_at/updated_at added",
        "semesters",
        PARENTS[1][1],
        TableRef("syllabus_db", "semesters"),
        {
            "id": 3,
            "user_id": 7,
            "name": "Fall",
            "start_date": date(2023, 9, 1),
            "end_date": None,
            "is_current": 1,
            "created_at": TS,
            "updated_at": TS,
        },
    ),
    (
        "Subjects: user_id from the semester; code, description, prerequisites, status added",
        "subjects",
        PARENTS[2][1],
        TableRef("subject_db", "subjects"),
        {
            "id": 11,
            "semester_id": 3,
            "user_id": 7,
            "name": "Math",
            "credits": 5,
            "color": "#ff0000",
            "teacher": "Ms K",
            "code": None,
            "description": None,
            "prerequisites": None,
            "status": "active",
            "created_at": TS,
            "updated_at": TS,
        },
    ),
    (
        "Syllabus: semester_id, user_id denormalised; file_id, status, version added",
        "syllabus",
        SYLLABUS_ROW,
        TableRef("syllabus_db", "syllabus"),
        {
            "id": 21,
            "subject_id": 11,
            "semester_id": 3,
            "user_id": 7,
            "title": "Plan",
            "content": "x",
            "file_id": FILE_ID,
            "status": "published",
            "version": 1,
            "created_at": AT,
            "updated_at": AT,
        },
    ),
    (
        "Files (new): syllabus.file_url becomes a files row",
        "syllabus",
        SYLLABUS_ROW,
        TableRef("file_db", "files"),
        {
            "id": FILE_ID,
            "owner_id": 7,
            "file_name": "Week 1.pdf",
            "file_url": "https://cdn.example.com/a/Week%201.pdf?x=1",
            "mime_type": "application/pdf",
            "storage_provider": "http",
            "source_table": "syllabus",
            "source_id": 21,
            "checksum_sha256": None,
            "size_bytes": None,
            "checksum_status": "pending",
            "checksum_checked_at": None,
            "checksum_error": None,
            "created_at": TS,
            "updated_at": TS,
        },
    ),
    (
        "Repositories: branch, sync status, metadata, encryption added",
        "repositories",
        {
            "id": 5,
            "user_id": 7,
            "subject_id": 11,
            "name": "notes",
            "url": "https://g/x",
            "provider": "gitlab",
            "is_private": 1,
            "stars": 4,
            "created_at": AT,
        },
        TableRef("file_db", "repositories"),
        {
            "id": 5,
            "user_id": 7,
            "subject_id": 11,
            "name": "notes",
            "url": "https://g/x",
            "provider": "gitlab",
            "is_private": 1,
            "stars": 4,
            "created_at": AT,
            "branch": "main",
            "sync_status": "pending",
            "last_synced_at": None,
            "metadata": None,
            "is_encrypted": 0,
            "encryption_key_id": None,
            "updated_at": TS,
        },
    ),
]


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(MAPPING, source_schema="aurora")


def _insert(table: str, row: dict[str, Any]) -> RowChange:
    return RowChange("aurora", table, Op.INSERT, None, row, TS)


@pytest.mark.parametrize(
    ("section", "table", "row", "target", "expected"),
    CASES,
    ids=[c[0].split(":")[0] for c in CASES],
)
def test_guide_data_mapping(
    spec: MappingSpec,
    section: str,
    table: str,
    row: dict[str, Any],
    target: TableRef,
    expected: dict[str, Any],
) -> None:
    mapper = Mapper(spec, LookupState(spec))
    memory = MemoryTarget()
    for parent, parent_row in PARENTS:
        if parent == table:
            break
        memory.apply(mapper.map_change(_insert(parent, parent_row)))
    memory.apply(mapper.map_change(_insert(table, row)))
    rows = list(memory.table(target).values())
    assert rows == [expected], section
