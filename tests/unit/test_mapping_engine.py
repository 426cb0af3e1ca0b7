"""The engine's behaviour around the edges: missing parents, routes, checksums, op order."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sync.errors import MappingError
from sync.mapping import LookupState, Mapper, load_mapping
from sync.mapping import files as f
from sync.mapping.check import Column, type_problem
from sync.mapping.spec import MappingSpec
from sync.model import (
    DeleteWhere,
    Eq,
    InSelect,
    Op,
    Position,
    RowChange,
    TableRef,
    UpdateWhere,
)
from sync.testing.memtarget import MemoryTarget

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"
TS = datetime(2024, 5, 1)
FILES = TableRef("file_db", "files")


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(MAPPING, source_schema="aurora")


def ins(table: str, **row: Any) -> RowChange:
    return RowChange("aurora", table, Op.INSERT, None, row, TS, Position("b.1", 4))


def upd(table: str, before: dict[str, Any], **values: Any) -> RowChange:
    return RowChange("aurora", table, Op.UPDATE, before, {**before, **values}, TS)


def dele(table: str, **row: Any) -> RowChange:
    return RowChange("aurora", table, Op.DELETE, row, None, TS)


SYLLABUS = {
    "id": 9,
    "subject_id": 2,
    "title": "t",
    "content": None,
    "file_url": "s3://b/x.pdf",
    "created_at": TS,
    "updated_at": TS,
}


def _world(spec: MappingSpec) -> tuple[Mapper, MemoryTarget]:
    mapper, target = Mapper(spec, LookupState(spec)), MemoryTarget()
    for change in (
        ins(
            "users",
            id=1,
            email="a",
            password_hash="h",
            name="n",
            last_login_at=None,
            created_at=TS,
            updated_at=TS,
        ),
        ins("semesters", id=1, user_id=1, name="s", start_date=None, end_date=None, is_current=0),
        ins("subjects", id=2, semester_id=1, name="m", credits=1, color=None, teacher=None),
        ins("syllabus", **SYLLABUS),
    ):
        target.apply(mapper.map_change(change))
    return mapper, target


def test_missing_parent_stops_with_context_unless_safe_mode(spec: MappingSpec) -> None:
    mapper = Mapper(spec, LookupState(spec))
    orphan = ins("subjects", id=5, semester_id=99, name="m", credits=1, color=None, teacher=None)
    with pytest.raises(MappingError) as caught:
        mapper.map_change(orphan)
    assert caught.value.table == "aurora.subjects"
    assert caught.value.key == {"id": 5}
    assert str(caught.value.position) == "b.1:4"
    assert "semesters 99" in caught.value.reason
    assert mapper.map_change(orphan, safe_mode=True) == []
    assert mapper.lookups.get("subjects", 5) is None


def test_checksum_kept_unless_the_url_changes(spec: MappingSpec) -> None:
    mapper, target = _world(spec)
    fid = f.file_id(uuid.UUID("5b0f3c1e-8a4d-5d1b-9c0e-6a7f2d9e4b31"), "aurora.syllabus", 9)
    row = target.table(FILES)[(fid,)]
    row.update(checksum_sha256="ab" * 32, checksum_status="verified", size_bytes=10)

    target.apply(mapper.map_change(upd("syllabus", SYLLABUS, title="new")))
    assert target.table(FILES)[(fid,)]["checksum_status"] == "verified"

    moved = {**SYLLABUS, "title": "new"}
    target.apply(mapper.map_change(upd("syllabus", moved, file_url="s3://b/y.pdf")))
    after = target.table(FILES)[(fid,)]
    assert (after["checksum_status"], after["checksum_sha256"], after["size_bytes"]) == (
        "pending",
        None,
        None,
    )
    assert after["file_name"] == "y.pdf"

    cleared = {**moved, "file_url": "s3://b/y.pdf"}
    target.apply(mapper.map_change(upd("syllabus", cleared, file_url="  ")))
    assert target.table(FILES) == {}
    assert target.table(TableRef("syllabus_db", "syllabus"))[(9,)]["file_id"] is None


def test_subject_delete_reaches_files_before_deleting_syllabus(spec: MappingSpec) -> None:
    mapper, _ = _world(spec)
    ops = mapper.map_change(
        dele("subjects", id=2, semester_id=1, name="m", credits=1, color=None, teacher=None)
    )
    syllabus = TableRef("syllabus_db", "syllabus")
    files_op = next(o for o in ops if o.target == FILES)
    syllabus_op = next(o for o in ops if o.target == syllabus)
    assert isinstance(files_op, DeleteWhere) and isinstance(syllabus_op, DeleteWhere)
    assert ops.index(files_op) < ops.index(syllabus_op)
    assert files_op.where == (
        Eq("source_table", "syllabus"),
        InSelect("id", syllabus, "file_id", (Eq("subject_id", 2),)),
    )
    repos = next(o for o in ops if o.target == TableRef("file_db", "repositories"))
    assert repos == UpdateWhere(
        TableRef("file_db", "repositories"), (Eq("subject_id", 2),), {"subject_id": None}
    )


def test_semester_moving_to_another_user_updates_every_child(spec: MappingSpec) -> None:
    mapper, target = _world(spec)
    target.apply(
        mapper.map_change(
            ins(
                "users",
                id=2,
                email="b",
                password_hash="h",
                name="n",
                last_login_at=None,
                created_at=TS,
                updated_at=TS,
            )
        )
    )
    before = {
        "id": 1,
        "user_id": 1,
        "name": "s",
        "start_date": None,
        "end_date": None,
        "is_current": 0,
    }
    target.apply(mapper.map_change(upd("semesters", before, user_id=2)))
    assert target.table(TableRef("subject_db", "subjects"))[(2,)]["user_id"] == 2
    assert target.table(TableRef("syllabus_db", "syllabus"))[(9,)]["user_id"] == 2
    assert next(iter(target.table(FILES).values()))["owner_id"] == 2


def test_routes_copy_rows_as_they_are(tmp_path: Path) -> None:
    text = MAPPING.read_text().replace(
        "routes: []", 'routes:\n  - {schema: sbtest, database: bench_db, tables: "*"}'
    )
    path = tmp_path / "m.yaml"
    path.write_text(text)
    spec = load_mapping(path, source_schema="aurora")
    mapper = Mapper(spec, LookupState(spec), {("sbtest", "t1"): ("id",)})
    target = MemoryTarget()
    row = {"id": 1, "k": 5, "c": "x"}
    target.apply(mapper.map_change(RowChange("sbtest", "t1", Op.INSERT, None, row, TS)))
    target.apply(mapper.map_change(RowChange("sbtest", "t1", Op.UPDATE, row, {**row, "id": 2}, TS)))
    assert target.table(TableRef("bench_db", "t1")) == {(2,): {"id": 2, "k": 5, "c": "x"}}
    with pytest.raises(MappingError, match="no primary key known"):
        mapper.map_change(RowChange("sbtest", "nokey", Op.INSERT, None, row, TS))
    assert mapper.map_change(RowChange("other", "t1", Op.INSERT, None, row, TS)) == []
    # A routed table's before images need only its key; a table with no key known, all.
    assert mapper.before_columns("sbtest", "t1") == frozenset({"id"})
    assert mapper.before_columns("sbtest", "nokey") is None
    assert mapper.before_columns("other", "t1") is None


def test_before_images_need_the_key_and_the_columns_children_look_up(
        spec: MappingSpec) -> None:
    mapper = Mapper(spec, LookupState(spec))
    kept = {t: sorted(mapper.before_columns("aurora", t) or ()) for t in spec.tables}
    assert kept == {"users": ["id"], "semesters": ["id", "user_id"],
                    "subjects": ["id", "semester_id"], "syllabus": ["id"], "repositories": ["id"]}
    # Anything the mapping does not know is read whole (and refused or ignored as before).
    assert mapper.before_columns("aurora", "audit_log") is None


def test_unmapped_aurora_table_is_a_decision(spec: MappingSpec, tmp_path: Path) -> None:
    change = RowChange("aurora", "audit_log", Op.INSERT, None, {"id": 1}, TS)
    with pytest.raises(MappingError, match="not in the mapping"):
        Mapper(spec, LookupState(spec)).map_change(change)
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING.read_text().replace("ignore: []", "ignore: [audit_log]"))
    ignoring = load_mapping(path, source_schema="aurora")
    assert Mapper(ignoring, LookupState(ignoring)).map_change(change) == []


def test_lookup_state_rebuilt_from_target_continues_the_same(spec: MappingSpec) -> None:
    mapper, target = _world(spec)
    rows = {s.table: list(target.table(s.target).values()) for s in spec.lookup_sources()}
    rebuilt = LookupState.rebuild(spec, rows)
    assert (
        rebuilt.dump() == mapper.lookups.dump() == {"semesters": {1: (1,)}, "subjects": {2: (1,)}}
    )


@pytest.mark.parametrize(
    ("url", "name", "mime", "provider"),
    [
        (
            "https://cdn.example.com/a/Intro%20Math.pdf?sig=1#p2",
            "Intro Math.pdf",
            "application/pdf",
            "http",
        ),
        ("https://bucket.s3.eu-west-1.amazonaws.com/k/plan.txt", "plan.txt", "text/plain", "s3"),
        (
            "s3://bucket/plans/week.docx",
            "week.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "s3",
        ),
        ("https://storage.googleapis.com/b/img.PNG", "img.PNG", "image/png", "gcs"),
        ("/srv/files/notes", "notes", "application/octet-stream", "local"),
        ("https://example.com/", "", "application/octet-stream", "http"),
    ],
)
def test_file_description(url: str, name: str, mime: str, provider: str) -> None:
    assert f.describe(url) == (name, mime, provider)


def test_file_id_is_uuid5() -> None:
    ns = uuid.uuid4()
    assert f.file_id(ns, "aurora.syllabus", 42) == str(uuid.uuid5(ns, "aurora.syllabus:42"))


def _col(dtype: str, ctype: str, length: int | None = None) -> Column:
    return Column("c", dtype, ctype, True, False, length)


@pytest.mark.parametrize(
    ("source", "target", "fits"),
    [
        (_col("int", "int(10) unsigned"), _col("int", "int(10) unsigned"), True),
        (_col("int", "int(10) unsigned"), _col("int", "int(11)"), False),
        (_col("int", "int(10) unsigned"), _col("bigint", "bigint(20)"), True),
        (_col("varchar", "varchar(255)", 255), _col("varchar", "varchar(100)", 100), False),
        (_col("enum", "enum('a','b')"), _col("enum", "enum('a','b','c')"), True),
        (_col("enum", "enum('a','z')"), _col("enum", "enum('a','b')"), False),
        (_col("timestamp", "timestamp"), _col("datetime", "datetime"), True),
        (_col("date", "date"), _col("datetime", "datetime"), True),
        (_col("datetime", "datetime"), _col("int", "int(11)"), False),
    ],
)
def test_type_compatibility(source: Column, target: Column, fits: bool) -> None:
    assert (type_problem(source, target) is None) is fits
