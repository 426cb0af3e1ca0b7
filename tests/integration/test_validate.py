"""`aurora-sync validate` on real servers: clean after a sync; rows changed, deleted and added
in the target behind aurora-sync's back are each reported with their key; owned columns are
not compared; --tables narrows the run; each run is recorded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_validate_support import env_file_for
from typer.testing import CliRunner

from bootstrap.run import run_bootstrap
from sync.cli import app
from sync.db import connect
from sync.dev.localdb import LocalServer
from sync.state import StateStore
from sync.validate import ValidateOptions, validate
from tests.e2e.conftest import Deployment, deployment_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synced(source_server: LocalServer, target_server: LocalServer) -> Iterator[Deployment]:
    d = Deployment(source_server, target_server,
                   deployment_settings(source_server, target_server, "val"))
    d.reset()
    d.sync_quietly(users=25, seed=7)
    yield d


def cli(d: Deployment, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = env_file_for(d.settings, tmp_path / "val.env")
    result = CliRunner().invoke(app, ["--env-file", str(env), "validate", *args])
    return result.exit_code, result.output


def test_clean_after_sync_and_recorded(synced: Deployment, tmp_path: Path) -> None:
    code, out = cli(synced, tmp_path, "--chunk-size", "37", "--threads", "2")
    assert code == 0, out
    assert "clean" in out and "syllabus_db.syllabus" in out and "file_db.files" in out
    store = StateStore(lambda: connect(synced.settings.target), synced.settings.state_db,
                       synced.settings.pipeline)
    with contextlib.closing(store):
        run = store.latest_validation()
    assert run is not None and run.clean is True and run.position is not None
    assert run.summary["tables"]["subject_db.subjects"]["expected_rows"] > 0
    # The SQL hash spells every value as the Python one does: no clean chunk is re-read.
    assert {t: v["rechecked_chunks"] for t, v in run.summary["tables"].items()} == \
        dict.fromkeys(run.summary["tables"], 0)


def tamper(d: Deployment, sql: str) -> None:
    with contextlib.closing(d.target_conn()) as conn, conn.cursor() as cur:
        cur.execute(sql)


def test_changed_deleted_and_added_rows_are_named(synced: Deployment, tmp_path: Path) -> None:
    s = synced.settings
    rows = synced.target.execute(f"SELECT id FROM `{s.subject_db}`.subjects ORDER BY id")
    changed, deleted = int(rows[3][0]), int(rows[10][0])  # type: ignore[call-overload]
    extra = int(rows[-1][0]) + 1000  # type: ignore[call-overload]
    owned = synced.target.execute(f"SELECT id FROM `{s.gateway_db}`.users LIMIT 1")[0][0]
    tamper(synced, f"UPDATE `{s.subject_db}`.subjects SET credits = credits + 1, "
                   f"teacher = 'behind your back' WHERE id = {changed}")
    tamper(synced, f"DELETE FROM `{s.subject_db}`.subjects WHERE id = {deleted}")
    tamper(synced, f"INSERT INTO `{s.subject_db}`.subjects (id, semester_id, user_id, name, "
                   f"created_at, updated_at) SELECT {extra}, semester_id, user_id, 'x', "
                   f"created_at, updated_at FROM `{s.subject_db}`.subjects WHERE id = {changed}")
    # A column the services own differs legitimately: never reported.
    tamper(synced, f"UPDATE `{s.gateway_db}`.users SET bio = 'mine' WHERE id = {owned}")
    try:
        code, out = cli(synced, tmp_path, "--chunk-size", "50", "--settle-timeout", "1")
        assert code == 1, out
        assert f"subject_db.subjects (id={changed}): different in credits, teacher" in out
        assert f"subject_db.subjects (id={deleted}): missing" in out
        assert f"subject_db.subjects (id={extra}): extra" in out
        assert "gateway_db.users" in out and "bio" not in out
        report = validate(s, ValidateOptions(tables=("gateway_db.users",), settle_timeout=1))
        assert report.clean and [t.table for t in report.tables] == ["gateway_db.users"]
    finally:
        run_bootstrap(s, tables=["subjects"])
    assert validate(s, ValidateOptions(tables=("subjects",), settle_timeout=1)).clean


def test_file_rows_made_by_the_split_are_checked(synced: Deployment) -> None:
    s = synced.settings
    victim = synced.target.execute(f"SELECT id, source_id FROM `{s.file_db}`.files LIMIT 1")[0]
    tamper(synced, f"UPDATE `{s.file_db}`.files SET mime_type = 'x/y' WHERE id = '{victim[0]}'")
    try:
        report = validate(s, ValidateOptions(tables=("file_db.files",), settle_timeout=1))
        assert not report.clean
        (tally,) = report.tables
        assert [(d.kind, d.key, d.columns) for d in tally.differences] == [
            ("different", (victim[0],), ("mime_type",))]
    finally:
        run_bootstrap(s, tables=["syllabus"])


def test_unknown_table_is_refused(synced: Deployment, tmp_path: Path) -> None:
    code, out = cli(synced, tmp_path, "--tables", "nope")
    assert code == 1 and "does not write" in out
