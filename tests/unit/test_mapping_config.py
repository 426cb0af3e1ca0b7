"""Broken mapping files: each stops with a MappingConfigError naming file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sync.errors import MappingConfigError
from sync.mapping import load_mapping
from tests.bad_input import BadInputRecorder

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"


def _write(tmp_path: Path, edit: object) -> Path:
    raw = yaml.safe_load(MAPPING.read_text())
    edit(raw)  # type: ignore[operator]
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _unknown_table(raw: dict) -> None:
    """A foreign key whose parent is a table the mapping does not list."""
    raw["tables"]["subjects"]["foreign_keys"][0]["parent"] = "terms"


def _unknown_column(raw: dict) -> None:
    """A lookup reading a column the mapping does not copy."""
    raw["tables"]["syllabus"]["lookups"]["semester_id"]["from"] = "subjects.term_id"


def _bad_type(raw: dict) -> None:
    """`key: id` where a list is expected."""
    raw["tables"]["users"]["key"] = "id"


def _bad_action(raw: dict) -> None:
    """`on_delete: explode`."""
    raw["tables"]["semesters"]["foreign_keys"][0]["on_delete"] = "explode"


def _cycle(raw: dict) -> None:
    """Two lookups that read each other."""
    lookups = raw["tables"]["syllabus"]["lookups"]
    lookups["semester_id"] = {"from": "semesters.id", "via": "user_id"}
    lookups["user_id"] = {"from": "semesters.user_id", "via": "semester_id"}


def _missing_key(raw: dict) -> None:
    """A table without its `target`."""
    del raw["tables"]["repositories"]["target"]


def _unknown_key(raw: dict) -> None:
    """An unknown key (`copy_columns`) under a table."""
    raw["tables"]["users"]["copy_columns"] = ["x"]


def _via_not_fk(raw: dict) -> None:
    """A lookup `via` a column that is not a foreign key."""
    raw["tables"]["subjects"]["lookups"]["user_id"]["via"] = "name"


def _twice(raw: dict) -> None:
    """A source column both copied and dropped."""
    raw["tables"]["users"]["drop"] = ["email"]


CASES = [
    (
        _unknown_table,
        "tables.subjects.foreign_keys.0.parent",
        "unknown table `terms`",
        "name a table listed under `tables`",
    ),
    (
        _unknown_column,
        "tables.syllabus.lookups.semester_id.from",
        "unknown column `term_id` of `subjects`",
        "name a column mapped under `tables.subjects`",
    ),
    (
        _bad_type,
        "tables.users.key",
        "Input should be a valid list",
        "give `key` a value of the type the message names",
    ),
    (
        _bad_action,
        "tables.semesters.foreign_keys.0.on_delete",
        "Input should be 'cascade'",
        "use one of the values",
    ),
    (
        _cycle,
        "tables.syllabus.lookups.semester_id",
        "cycle in lookups: syllabus.semester_id -> syllabus.user_id -> syllabus.semester_id",
        "read a copied column",
    ),
    (
        _missing_key,
        "tables.repositories.target",
        "Field required",
        "add `target:` under `tables.repositories`",
    ),
    (
        _unknown_key,
        "tables.users.copy_columns",
        "Extra inputs are not permitted",
        "remove `copy_columns`",
    ),
    (
        _via_not_fk,
        "tables.subjects.lookups.user_id.via",
        "`subjects.name` is not a foreign key to `semesters`",
        "declare it under",
    ),
    (_twice, "tables.users", "source column `email` is mapped twice", "list each source column"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("edit", "key", "reason", "fix"), CASES, ids=[c[0].__name__.strip("_") for c in CASES]
)
def test_broken_mapping_is_refused_precisely(
    tmp_path: Path, edit: object, key: str, reason: str, fix: str,
    bad_input: BadInputRecorder,
) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(path, source_schema="aurora")
    error = caught.value
    assert error.exit_code == 2
    assert str(path) in error.reason
    assert f"key `{key}`" in error.reason
    assert reason in error.reason
    assert error.fix is not None and fix in error.fix
    bad_input.record(category="mapping", given=(edit.__doc__ or "").strip().rstrip("."),
                     outcome=error.describe(), exit_code=error.exit_code)


@pytest.mark.bad_input
def test_unreadable_and_non_yaml_files(tmp_path: Path, bad_input: BadInputRecorder) -> None:
    with pytest.raises(MappingConfigError, match="cannot read") as absent:
        load_mapping(tmp_path / "absent.yaml", source_schema="aurora")
    bad_input.record(category="mapping", given="`AURORA_SYNC_MAPPING` names a missing file",
                     outcome=absent.value.describe(), exit_code=absent.value.exit_code)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables: [\n")
    with pytest.raises(MappingConfigError, match="not valid YAML") as broken:
        load_mapping(bad, source_schema="aurora")
    bad_input.record(category="mapping", given="a mapping file that is not YAML (`tables: [`)",
                     outcome=broken.value.describe(), exit_code=broken.value.exit_code)


def test_the_shipped_mapping_loads() -> None:
    spec = load_mapping(MAPPING, source_schema="aurora")
    assert spec.source_tables() == ("users", "semesters", "subjects", "syllabus", "repositories")
    assert {s.table for s in spec.lookup_sources()} == {"semesters", "subjects"}
