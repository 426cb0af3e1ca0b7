"""The mapping as SQL on aurora's server hashes every chunk as the Python mapping does.

Validation trusts a chunk whose SQL hash (aurora's server, :mod:`sync.validation.pushdown`)
equals the target's, so the SQL twin must agree with the Python mapping on every row it does
not hand back: here both run over the same real aurora, edge rows included (URLs with escapes,
non-ASCII names, separators, blanks; rows whose parent is gone), chunk by chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from sync.db import connect
from sync.dev.localdb import LocalServer
from sync.mapping import files
from sync.mapping.resolve import load_spec
from sync.validate import plan, rendered
from sync.validation.compare import Digest
from sync.validation.expected import ChunkMapper, refresh_parents
from sync.validation.normal import UUID5, ColumnKind, render, row_hash, sql_hash, sql_text
from sync.validation.pushdown import PushdownQuery, chunk_bounds, prepare
from sync.validation.reading import read_chunk
from sync.validation.urlsql import present, uuid5, uuid5_text
from tests.e2e.conftest import Deployment, deployment_settings

pytestmark = pytest.mark.integration

EDGE_URLS = [
    "https://files.example.edu/cs/2024/%E8%AC%9B%E7%BE%A9%20notes.PDF?download=1#p2",
    "s3://bucket/k/100%25%20complete.pptx", "/srv/uploads/100% complete.pdf",
    "C:\\Users\\me\\notes.txt", "https://h/é%20x.pdf", "https://h/a\x1eb.pdf",
    "https://h/a\x1fb.md", "   ", "", None, "  https://x.s3.amazonaws.com/y/z.docx  ",
    "gs://b/o.tar.gz", "ftp://host/path/", "https://[::1]:8080/a%2", "noext", ".hidden",
]


@pytest.fixture(scope="module")
def aurora(source_server: LocalServer, target_server: LocalServer) -> Iterator[Deployment]:
    d = Deployment(source_server, target_server,
                   deployment_settings(source_server, target_server, "push"))
    d.reset()
    d.sync_quietly(users=12, seed=11)
    with contextlib.closing(d.aurora_conn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT MIN(id), MAX(id) FROM syllabus")
        low, high = cur.fetchone()
        for n, url in enumerate(EDGE_URLS):
            cur.execute("UPDATE syllabus SET file_url = %s WHERE id = %s", (url, low + n))
        # Rows whose parent aurora no longer holds: only the Python mapping decides them.
        cur.execute("SET SESSION foreign_key_checks = 0")
        cur.execute("INSERT INTO syllabus (id, subject_id, title, file_url, created_at, "
                    "updated_at) VALUES (%s, 999999, 'orphan', 'https://h/o.pdf', NOW(), NOW())",
                    (high + 1,))
        cur.execute("UPDATE repositories SET subject_id = 888888 ORDER BY id LIMIT 1")
        conn.commit()
    yield d


def expected_digests(d: Deployment, table: str, chunk: Any, targets: Any) -> list[Digest]:
    """What the Python mapping makes of ``chunk``, hashed as the target hashes its rows."""
    spec = load_spec(d.settings)
    mapper = ChunkMapper(spec)
    with contextlib.closing(connect(d.settings.source)) as conn:
        rows = read_chunk(conn, chunk, schema=spec.source_schema,
                          columns=mapper.source_columns(table), key=spec.tables[table].key,
                          limit=None)
        refresh_parents(conn, spec, mapper.state, table, rows)
    expected = mapper.map(table, rows)
    return [t.digest(rendered(t, expected).values()) for t in targets]


def test_every_chunk_hashes_as_the_python_mapping(aurora: Deployment) -> None:
    spec = load_spec(aurora.settings)
    compared = orphaned = 0
    with contextlib.closing(connect(aurora.settings.source)) as source, \
            contextlib.closing(connect(aurora.settings.target)) as target:
        prepare(source)
        for item in plan(target, aurora.settings, spec, ()):
            query = PushdownQuery(spec, item.source, item.targets)
            for chunk in chunk_bounds(source, spec.source_schema, item.source, 20):
                found = query.read(source, chunk)
                if found.orphans:
                    orphaned += 1
                    continue
                compared += 1
                assert list(found.digests) == expected_digests(
                    aurora, item.source.name, chunk, item.targets), (item.source.name, chunk)
    assert compared > 20
    assert orphaned == 2  # the orphaned syllabus row's chunk, the repository's


def as_text(value: str | bytes) -> str:
    # The hashes read bytes: a binary string (CHAR(30), SHA1 of bytes) hashes as its text.
    return value.decode() if isinstance(value, bytes) else value


def test_sql_twins_spell_values_as_python(aurora: Deployment) -> None:
    namespace = UUID("5b0f3c1e-8a4d-5d1b-9c0e-6a7f2d9e4b31")
    kind = ColumnKind("v", UUID5)
    texts = ["plain", "ünïcödé 講義 💻", "", "a\x1fb", "tab\tand\nnewline"]
    with contextlib.closing(connect(aurora.settings.source)) as conn, conn.cursor() as cur:
        for key in (*range(1, 40), 4294967295):  # every variant digit: 8, 9, a, b
            cur.execute(f"SELECT {uuid5(namespace, 'aurora.syllabus', 'k.v')}, "
                        f"{uuid5_text(namespace, 'aurora.syllabus', 'k.v')} "
                        "FROM (SELECT %s AS v) AS k", (key,))
            full, short = cur.fetchone()
            python = files.file_id(namespace, "aurora.syllabus", key)
            assert full == python
            assert as_text(short) == render(python, kind)
            cur.execute(f"SELECT {sql_text(kind)} FROM (SELECT %s AS v) AS k", (python,))
            assert as_text(cur.fetchone()[0]) == render(python, kind)
        for url in ("", "   ", "x", None):
            cur.execute(f"SELECT COALESCE({present('k.v')}, 0) FROM (SELECT %s AS v) AS k",
                        (url,))
            assert bool(cur.fetchone()[0]) == files.is_present(url)
        cur.execute(f"SELECT {sql_hash(['%s'] * len(texts))}", texts)
        assert cur.fetchone()[0] == row_hash(texts)
        cur.execute(f"SELECT {sql_hash(['%s', '%s'])}", (datetime(2020, 1, 2, 3, 4, 5), 7))
        assert cur.fetchone()[0] == row_hash(["2020-01-02 03:04:05", "7"])


def test_row_hash_sees_values_swapped_between_rows() -> None:
    # XOR of plain CRC-32s cannot: CRC-32 is linear, the swap cancels out.
    before = Digest.of([("1", "alice@example.com"), ("2", "bobby@example.com")])
    after = Digest.of([("1", "bobby@example.com"), ("2", "alice@example.com")])
    assert before.rows == after.rows and before.xor != after.xor
