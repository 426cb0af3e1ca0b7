"""The bootstrap meets rows whose parent changed its key after the parent's table was copied.

aurora's ``ON UPDATE CASCADE`` moves the children without a binlog row of theirs, so the copy
of a child table read later refers to parent keys the copied parents lack; the stream's
replay of the re-key moves only children the targets already hold. A chunk rendered by
aurora's server reads the parents in its own read view, so the children are written under the
new keys and the replay brings the parents; the Python mapping reads such a parent from the
source and writes it with the child. Either way, after the stream catches up the targets are
exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bootstrap.progress import NullReporter
from bootstrap.run import run_bootstrap
from sync.daemon import StreamRun
from sync.dev.generate import generate
from sync.dev.localdb import LocalServer
from sync.mapping.resolve import load_spec
from sync.testing.reference import diff_targets, expected_state
from tests.e2e.conftest import Deployment, deployment_settings

pytestmark = pytest.mark.integration


class AfterTable(NullReporter):
    """Runs ``then`` once, when ``table``'s last chunk has committed: with one worker the
    next table's first read comes after it."""

    def __init__(self, table: str, chunk_size: int, then: Callable[[], None]) -> None:
        self.table_name = table
        self.chunk_size = chunk_size
        self.then = then
        self.ran = False

    def chunk(self, task: str, table: str, rows: int, last_key: Any, seconds: float) -> None:
        if table == self.table_name and rows < self.chunk_size and not self.ran:
            self.ran = True
            self.then()


def one(d: Deployment, sql: str, args: Sequence[Any] = ()) -> Any:
    rows = d.source.execute(sql, list(args))
    assert rows and rows[0][0] is not None, sql
    return rows[0][0]


def rekey_parents(d: Deployment, moved: dict[str, Any]) -> None:
    """New keys for a semester, a subject of it with syllabus rows, and a subject with
    repositories: each cascades to rows the copy has not read yet."""
    db = f"`{d.source_db}`"
    subject = one(d, f"SELECT MIN(subject_id) FROM {db}.syllabus")
    semester = one(d, f"SELECT semester_id FROM {db}.subjects WHERE id = %s", [subject])
    other = one(d, f"SELECT MIN(subject_id) FROM {db}.repositories "
                   f"WHERE subject_id NOT IN (SELECT id FROM {db}.subjects "
                   "WHERE semester_id = %s)", [semester])
    new_semester = one(d, f"SELECT MAX(id) + 1000 FROM {db}.semesters")
    new_subject = one(d, f"SELECT MAX(id) + 1000 FROM {db}.subjects")
    d.source.execute(f"UPDATE {db}.semesters SET id = %s WHERE id = %s", [new_semester, semester])
    d.source.execute(f"UPDATE {db}.subjects SET id = %s WHERE id = %s", [new_subject, subject])
    d.source.execute(f"UPDATE {db}.subjects SET id = %s WHERE id = %s",
                     [new_subject + 1, other])
    moved.update(semester=new_semester, subject=new_subject, other=new_subject + 1)


@pytest.mark.parametrize("render", ["aurora", "python"])
def test_children_of_parents_rekeyed_after_their_copy_end_exact(
        source_server: LocalServer, target_server: LocalServer, render: str) -> None:
    settings = deployment_settings(source_server, target_server, "bsrk")
    d = Deployment(source_server, target_server,
                   settings.model_copy(update={"bootstrap_render": render}))
    d.reset()
    generate(d.source_conn, database=d.source_db, users=40, seed=13, create=True)
    moved: dict[str, Any] = {}
    reporter = AfterTable("subjects", d.settings.chunk_size, lambda: rekey_parents(d, moved))

    run_bootstrap(d.settings, workers=1, reporter=reporter)

    assert reporter.ran
    # The copy wrote the children under their parents' new keys (the Python mapping wrote
    # those parents with them).
    subjects = f"`{d.settings.database('subject_db')}`.subjects"
    syllabus = f"`{d.settings.database('syllabus_db')}`.syllabus"
    repositories = f"`{d.settings.database('file_db')}`.repositories"
    parent = d.target.execute(f"SELECT semester_id FROM {subjects} WHERE id = %s",
                              [moved["subject"]])
    assert parent == ([] if render == "aurora" else [(moved["semester"],)])
    assert d.target.execute(f"SELECT semester_id FROM {syllabus} WHERE subject_id = %s LIMIT 1",
                            [moved["subject"]]) == [(moved["semester"],)]
    assert d.target.execute(f"SELECT 1 FROM {repositories} WHERE subject_id = %s LIMIT 1",
                            [moved["other"]]) == [(1,)]

    finish = d.start_stream(StreamRun())
    d.wait_applied(d.source_position(), timeout=60)
    finish()
    spec = load_spec(d.settings)
    with contextlib.closing(d.aurora_conn()) as src, contextlib.closing(d.target_conn()) as tgt:
        differences = diff_targets(expected_state(src, spec, d.source_db), tgt, spec,
                                   d.settings.database)
    assert differences == [], "\n".join(differences[:30])
