"""What aurora's server is asked to render, and how rendered rows become statements (the
values themselves are compared with the Python mapping on real servers in
tests/integration/test_bootstrap_render.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from bootstrap.literals import ColumnType, LiteralQuery, spelled, statements_of
from sync.apply.batcher import StatementLimits
from sync.mapping.resolve import load_mapping
from sync.mapping.spec import MappingSpec
from sync.model import TableRef

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"


class Types(Mapping[tuple[str, str], ColumnType]):
    """Every column an INT UNSIGNED, or text, but those given."""

    def __init__(self, **given: ColumnType) -> None:
        self.given = given

    def __getitem__(self, key: tuple[str, str]) -> ColumnType:
        table, column = key
        found = self.given.get(f"{table}.{column}")
        if found is not None:
            return found
        return ColumnType("int", None) if column.endswith("id") else ColumnType("varchar",
                                                                                "utf8mb4")

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(MAPPING, source_schema="aurora")


def test_types_are_spelled_as_the_target_reads_them_back() -> None:
    assert spelled("t0.`id`", ColumnType("bigint", None)) == "IFNULL(t0.`id`, 'NULL')"
    assert spelled("t0.`d`", ColumnType("datetime", None)) == "QUOTE(t0.`d`)"
    assert spelled("t0.`n`", ColumnType("varchar", "utf8mb4")) == "QUOTE(t0.`n`)"
    assert spelled("t0.`n`", ColumnType("text", "latin1")) == \
        "QUOTE(CONVERT(t0.`n` USING utf8mb4))"
    for kind in ("float", "double", "blob", "varbinary", "bit", "json", "geometry"):
        assert spelled("t0.`x`", ColumnType(kind, None)) is None


def test_a_column_without_a_spelling_leaves_the_table_to_python(spec: MappingSpec) -> None:
    assert LiteralQuery.build(spec, spec.tables["subjects"], Types(), str) is not None
    types = Types(**{"subjects.name": ColumnType("varbinary", None)})
    assert LiteralQuery.build(spec, spec.tables["subjects"], types, str) is None
    # A lookup's type is its parent column's.
    types = Types(**{"semesters.user_id": ColumnType("double", None)})
    assert LiteralQuery.build(spec, spec.tables["subjects"], types, str) is None


def test_the_query_walks_parents_once_and_flags_orphans(spec: MappingSpec) -> None:
    query = LiteralQuery.build(spec, spec.tables["syllabus"], Types(), str)
    assert query is not None
    sql = query.select
    assert sql.count("LEFT JOIN") == 2  # subjects, then semesters: shared by both lookups
    assert "IS NULL" in sql
    # The upsert is the writer's: key guard first, owned columns written on insert only.
    head, tail = query.head.decode(), query.tail.decode()
    assert head.startswith("INSERT INTO `syllabus_db`.`syllabus` (`id`, `subject_id`")
    assert head.rstrip().endswith("`file_id`) VALUES")
    assert tail.startswith(" ON DUPLICATE KEY UPDATE `id` = IF(`id` <=> VALUES(`id`)")
    assert "`status` =" not in tail and "`title` = VALUES(`title`)" in tail


def test_rows_are_cut_into_statements_by_rows_and_bytes() -> None:
    target = TableRef("syllabus_db", "syllabus")
    rows = [b"(%d,'" % i + b"x" * 90 + b"')" for i in range(10)]  # 100 bytes each
    cut = statements_of
    by_rows = cut(target, b"HEAD ", b" TAIL", rows, StatementLimits(max_rows=4))
    assert [s.sql.count(b"'),(") + 1 for s in by_rows] == [4, 4, 2]
    by_bytes = cut(target, b"HEAD ", b" TAIL", rows, StatementLimits(max_bytes=350))
    assert all(len(s.sql) <= 350 for s in by_bytes)
    assert b"".join(s.sql.removeprefix(b"HEAD ").removesuffix(b" TAIL") + b","
                    for s in by_bytes) == b",".join(rows) + b","
    # A row larger than the bound still goes, alone.
    alone = cut(target, b"H", b"T", [b"(" + b"y" * 500 + b")"], StatementLimits(max_bytes=100))
    assert len(alone) == 1
