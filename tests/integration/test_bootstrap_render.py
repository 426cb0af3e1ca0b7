"""Chunks rendered by aurora's server (bootstrap.literals) against the Python mapping, on real
servers: the same target rows, value for value, including the values that are hard to quote,
a column in another charset, zero dates, blank URLs and a row whose parent aurora lacks."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_bootstrap_support import (
    differences,
    make_aurora,
    reset_targets,
    settings_for,
    spec_of,
)

from bootstrap.progress import NullReporter
from bootstrap.run import run_bootstrap
from sync.apply.sql import quote
from sync.db import connect
from sync.dev.localdb import LocalServer
from sync.settings import Settings

pytestmark = pytest.mark.integration

DATABASE = "bs_render"
TRICKY = """
SET SESSION sql_mode = '', SESSION foreign_key_checks = 0;
ALTER TABLE subjects MODIFY teacher VARCHAR(255) CHARACTER SET latin1 NULL;
INSERT INTO users (id, email, password_hash, name, last_login_at) VALUES
  (900001, 'o''brien\\\\x@example.com', 'h', 'Zoë "Z" \\\\ O''Brien 😀\\n\\r\\0\\Z end',
   '2024-02-29 23:59:59'),
  (900002, 'blank@example.com', '', '', NULL);
INSERT INTO semesters (id, user_id, name, start_date, end_date, is_current) VALUES
  (900001, 900001, 'S\\\\1 ''quoted''', '0000-00-00', NULL, 1);
INSERT INTO subjects (id, semester_id, name, credits, color, teacher) VALUES
  (900001, 900001, 'Ünïcode ☃ %s %%', 255, NULL, 'Müller'),
  (900002, 900001, 'x', 0, '#ffffff', NULL);
INSERT INTO syllabus (id, subject_id, title, content, file_url, created_at, updated_at) VALUES
  (900001, 900001, 't''', 'c\\0\\\\ ''%', 'https://cdn.example.com/a%20b/R%C3%A9sum%C3%A9.pdf',
   '2024-02-29 23:59:59.999', '2024-03-01 00:00:00.001'),
  (900002, 900001, 'spaces', NULL, '   ', '2024-01-01', '2024-01-01'),
  (900003, 900002, 'none', '', NULL, '2024-01-01', '2024-01-01'),
  (900004, 999999, 'orphan', 'its subject is gone', 'https://x.example/o.pdf', '2024-01-01',
   '2024-01-01');
INSERT INTO repositories (id, user_id, subject_id, name, url, provider, is_private, stars)
  VALUES (900001, 900001, NULL, 'r''1', 'https://github.com/a/b', 'github', 1, 4294967295),
         (900002, 900001, 900001, 'r2', 'https://gitlab.com/a/b', 'gitlab', 0, 0);
"""


@pytest.fixture(scope="module")
def aurora(source_server: LocalServer) -> LocalServer:
    make_aurora(source_server, rows=4000, database=DATABASE)
    with contextlib.closing(source_server.connect()) as conn, conn.cursor() as cur:
        cur.execute(f"USE {DATABASE}")
        for statement in TRICKY.split(";\n"):
            if statement.strip():
                cur.execute(statement)
        conn.commit()
    return source_server


@pytest.fixture
def settings(aurora: LocalServer, target_server: LocalServer) -> Iterator[Settings]:
    s = settings_for(aurora, target_server, source_db=DATABASE, chunk_size=500,
                     log_level="debug")
    reset_targets(s, target_server)
    yield s


def target_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every target table's rows, all columns but those holding commit times."""
    spec = spec_of(settings)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with contextlib.closing(connect(settings.target)) as conn, conn.cursor() as cur:
        for ref, table in spec.target_tables.items():
            columns = [c for c in table.written_columns if c not in table.time_columns]
            keys = ", ".join(quote(k) for k in table.key_columns)
            cur.execute(f"SELECT {', '.join(quote(c) for c in columns)} FROM "
                        f"{quote(settings.database(ref.database))}.{quote(ref.table)} "
                        f"ORDER BY {keys}")
            out[str(ref)] = [tuple(row) for row in cur.fetchall()]
    return out


def events(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return [e for e in found if isinstance(e, dict) and "event" in e]


def copy(settings: Settings, target: LocalServer, capfd: pytest.CaptureFixture[str],
         render: str) -> tuple[dict[str, list[tuple[Any, ...]]], list[dict[str, Any]]]:
    reset_targets(settings, target)
    capfd.readouterr()
    run_bootstrap(settings.model_copy(update={"bootstrap_render": render}), workers=2,
                  reporter=NullReporter())
    return target_rows(settings), events(capfd.readouterr().err)


def test_rendered_chunks_write_what_the_python_mapping_writes(
    settings: Settings, aurora: LocalServer, target_server: LocalServer,
    capfd: pytest.CaptureFixture[str]
) -> None:
    python, _ = copy(settings, target_server, capfd, "python")
    rendered, logged = copy(settings, target_server, capfd, "aurora")

    assert rendered == python
    assert sum(len(rows) for rows in rendered.values()) > 4000
    # Every mapped table went through aurora's rendering; only the orphan's chunk did not.
    done = {e["task"].partition("[")[0] for e in logged if e["event"] == "bootstrap.chunk_rendered"}
    assert done == {"users", "semesters", "subjects", "syllabus", "repositories"}
    fallbacks = [e for e in logged if e["event"] == "bootstrap.chunk_mapped_in_python"]
    assert [(f["task"].partition("[")[0], f["reason"]) for f in fallbacks] == [
        ("syllabus", "a row misses a parent or is too large to render")]
    # The orphan is skipped (what safe mode makes of it; the reference refuses it): without
    # it, the targets are the mapping of aurora.
    assert 900004 not in {row[0] for row in rendered["syllabus_db.syllabus"]}
    aurora.execute(f"DELETE FROM {DATABASE}.syllabus WHERE id = 900004")
    assert differences(settings) == []
