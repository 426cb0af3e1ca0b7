"""docs/bad-inputs.md names every test tagged ``bad_input`` and no other, so the page cannot
go stale silently; and how its records are cleaned, merged and rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.dev import bad_inputs
from sync.dev.bad_inputs import DOC, BadInput, cell, documented_tests, merge, normalize, render

REGENERATE = "run `python -m sync.dev.bad_inputs` and commit docs/bad-inputs.md"


def test_every_tagged_test_is_on_the_page_and_no_other() -> None:
    tagged = bad_inputs.tagged_tests()
    documented = documented_tests(DOC.read_text(encoding="utf-8"))
    assert tagged, "no test is marked bad_input"
    missing = sorted(tagged - documented)
    assert not missing, f"docs/bad-inputs.md lacks {missing}: {REGENERATE}"
    gone = sorted(documented - tagged)
    assert not gone, f"docs/bad-inputs.md names tests no longer tagged {gone}: {REGENERATE}"


def test_the_page_covers_every_category() -> None:
    text = DOC.read_text(encoding="utf-8")
    for category in bad_inputs.CATEGORIES:
        section = text.split(f"\n## {category}\n", 1)
        assert len(section) == 2, f"no section {category!r}: {REGENERATE}"
        assert "| input tried |" in section[1].split("\n## ", 1)[0], \
            f"no bad input of {category!r} is tried"


def record(test: str = "tests/unit/x.py::test_x", given: str = "g", outcome: str = "o",
           category: str = "config") -> BadInput:
    return BadInput(category=category, test=test, given=given, outcome=outcome)


def test_run_specific_text_is_replaced() -> None:
    text = ("cannot read /tmp/pytest-of-root/pytest-12/test_x0/missing.pw at "
            "127.0.0.1:41234 (position=binlog.000003:1234 (gtid 0-101-22)) in "
            "/tmp/aurora-sync-source-ab12cd34/data")
    assert normalize(text) == ("cannot read <tmp>/missing.pw at 127.0.0.1:<port> "
                               "(position=<binlog file>:<pos> (gtid <gtid>)) in "
                               "<server dir>/data")
    assert normalize("cannot connect to the target at 127.0.0.1:1") == \
        "cannot connect to the target at 127.0.0.1:1"


def test_secrets_are_masked_and_leaks_named() -> None:
    assert bad_inputs.redact("password pw-123 and pw-1234", ["pw-123", "pw-1234"]) == \
        "password ********** and **********"
    assert bad_inputs.leaked("said hunter2", ["hunter2", "other"]) == ["hu…(7 chars)"]


def test_unknown_category_and_empty_outcome_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown bad-input category"):
        record(category="misc")
    with pytest.raises(ValueError, match="outcome"):
        record(outcome="  ")


def test_a_rerun_replaces_the_records_of_its_tests_only() -> None:
    old = [record("t::a", "first"), record("t::b", "kept")]
    new = [record("t::a", "second")]
    assert [r.given for r in merge(old, new, ran={"t::a"})] == ["second", "kept"]


def test_cells_keep_tables_intact() -> None:
    assert cell("a | b\n  fix: *x* <tmp>") == "a \\| b<br>  fix: \\*x\\* &lt;tmp&gt;"


def test_the_page_has_a_table_per_category_with_the_test_named(tmp_path: Path) -> None:
    records = [record("tests/a.py::test_one", "`X=1`", "error: bad\n  fix: do y"),
               BadInput("TLS", "tests/b.py::test_two", "wrong CA", "failed", exit_code=1,
                        effect="refused")]
    page = render(records)
    assert "| `X=1` | error: bad<br>  fix: do y | `tests/a.py::test_one` |" in page
    assert "| wrong CA | **exit 1; refused**<br>failed | `tests/b.py::test_two` |" in page
    assert documented_tests(page) == {"tests/a.py::test_one", "tests/b.py::test_two"}
    assert page.count("No test tries this yet.") == len(bad_inputs.CATEGORIES) - 2
    path = tmp_path / "records.json"
    bad_inputs.save(path, records)
    assert bad_inputs.load(path) == records
