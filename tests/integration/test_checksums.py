"""The file checksum job: real files over real HTTP on 127.0.0.1 and on disk, real file_db."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from sync import schema
from sync.checksums import ChecksumJob, ChecksumOptions, safe_url
from sync.cli import app
from sync.dev.demo import write_env_file
from sync.dev.localdb import LocalServer

pytestmark = pytest.mark.integration

DB = "ck_file"
BIG = os.urandom(3 * 1024 * 1024 + 17)  # several read chunks
SMALL = b"syllabus v1\n"


class FileServer:
    """A local HTTP file server whose routes can fail, count requests and act meanwhile."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.flaky_failures = 2
        self.during: dict[str, Callable[[], None]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                outer.hits[path] += 1
                status, body = outer.answer(path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, path: str) -> tuple[int, bytes]:
        if path in self.during:
            self.during[path]()
        if path == "/big.bin":
            return 200, BIG
        if path in ("/small.txt", "/changed.txt"):
            return 200, SMALL
        if path == "/flaky.txt":
            if self.hits[path] <= self.flaky_failures:
                return 503, b"busy"
            return 200, SMALL
        if path == "/broken.txt":
            return 500, b"boom"
        if path == "/forbidden.txt":
            return 403, b"no"
        return 404, b"not found"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def files_db(target_server: LocalServer) -> Iterator[LocalServer]:
    target_server.execute(f"DROP DATABASE IF EXISTS {DB}")
    target_server.execute(f"CREATE DATABASE {DB}")
    with contextlib.closing(target_server.connect(DB)) as conn, conn.cursor() as cur:
        for statement in schema.load_statements("file_db"):
            cur.execute(statement)
    yield target_server
    target_server.execute(f"DROP DATABASE IF EXISTS {DB}")


@pytest.fixture
def http() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "storage"
    (base / "docs").mkdir(parents=True)
    (base / "docs" / "a.txt").write_bytes(SMALL)
    (base / "docs" / "b b.bin").write_bytes(BIG)
    (tmp_path / "secret.txt").write_bytes(b"outside the root")
    (base / "docs" / "link.txt").symlink_to(tmp_path / "secret.txt")
    return base


def add_files(server: LocalServer, urls: list[str]) -> dict[str, str]:
    """One pending row per URL; returns url → id."""
    ids = {}
    for i, url in enumerate(urls):
        file_id = f"00000000-0000-0000-0000-{i:012d}"
        server.execute(
            f"INSERT INTO {DB}.files (id, owner_id, file_name, file_url, created_at, updated_at) "
            "VALUES (%s, 1, 'f', %s, NOW(), NOW())", (file_id, url))
        ids[url] = file_id
    return ids


def rows(server: LocalServer) -> dict[str, tuple[Any, ...]]:
    found = server.execute(f"SELECT file_url, checksum_status, checksum_sha256, size_bytes, "
                           f"checksum_error, checksum_checked_at FROM {DB}.files")
    return {str(r[0]): tuple(r[1:]) for r in found}


def job(server: LocalServer, root: Path | None = None,
        on_backlog: Callable[[int], None] | None = None, **options: Any) -> ChecksumJob:
    options.setdefault("backoff", 0.01)
    options.setdefault("rate", 0)
    return ChecksumJob(lambda: server.connect(DB), DB,
                       ChecksumOptions(storage_root=root, **options), on_backlog=on_backlog)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_http_files_get_real_checksums_and_failures_their_status(
        files_db: LocalServer, http: FileServer) -> None:
    names = ["/big.bin", "/small.txt", "/flaky.txt", "/broken.txt", "/gone.txt",
             "/forbidden.txt"]
    add_files(files_db, [http.base + n for n in names])
    backlog: list[int] = []
    report = job(files_db, on_backlog=backlog.append).run_once()

    found = rows(files_db)
    assert found[http.base + "/big.bin"][:3] == ("verified", sha(BIG), len(BIG))
    assert found[http.base + "/small.txt"][:3] == ("verified", sha(SMALL), len(SMALL))
    assert found[http.base + "/flaky.txt"][:3] == ("verified", sha(SMALL), len(SMALL))
    broken = found[http.base + "/broken.txt"]
    assert broken[0] == "failed" and broken[3] == "HTTP 500 (after 3 tries)"
    assert found[http.base + "/gone.txt"][0] == "missing"
    assert found[http.base + "/gone.txt"][3] == "HTTP 404"
    assert found[http.base + "/forbidden.txt"][0] == "failed"
    assert all(r[4] is not None for r in found.values())
    assert http.hits["/flaky.txt"] == 3 and http.hits["/broken.txt"] == 3
    assert http.hits["/gone.txt"] == 1 and http.hits["/forbidden.txt"] == 1
    assert (report.verified, report.missing, report.failed, report.backlog) == (3, 1, 2, 0)
    assert backlog == [0]

    # Missing and failed files are not tried again by later passes.
    again = job(files_db).run_once()
    assert (again.verified, again.missing, again.failed) == (0, 0, 0)
    assert http.hits["/gone.txt"] == 1


def test_local_files_are_read_under_the_storage_root_only(
        files_db: LocalServer, root: Path) -> None:
    urls = ["/docs/a.txt", "file:///docs/b%20b.bin", "docs/a.txt", "/docs/nope.txt",
            "/../secret.txt", "docs/link.txt", "s3://bucket/docs/a.txt", "ftp://h/a.txt"]
    add_files(files_db, urls)

    job(files_db, root).run_once()

    found = rows(files_db)
    assert found["/docs/a.txt"][:3] == ("verified", sha(SMALL), len(SMALL))
    assert found["file:///docs/b%20b.bin"][:3] == ("verified", sha(BIG), len(BIG))
    assert found["docs/a.txt"][0] == "verified"
    assert found["/docs/nope.txt"][0] == "missing"
    assert found["/../secret.txt"][0] == "failed"
    assert "leaves AURORA_SYNC_STORAGE_ROOT" in found["/../secret.txt"][3]
    assert found["docs/link.txt"][0] == "failed"  # a symlink out of the root
    assert found["s3://bucket/docs/a.txt"][0] == "failed"
    assert "mount the bucket under AURORA_SYNC_STORAGE_ROOT" in found["s3://bucket/docs/a.txt"][3]
    assert "unsupported URL scheme 'ftp'" in found["ftp://h/a.txt"][3]


def test_local_paths_without_a_root_fail_with_the_setting_to_configure(
        files_db: LocalServer) -> None:
    add_files(files_db, ["/docs/a.txt"])
    job(files_db, None).run_once()
    status, _, _, error, _ = rows(files_db)["/docs/a.txt"]
    assert status == "failed" and "AURORA_SYNC_STORAGE_ROOT" in error


def test_a_url_changed_meanwhile_is_not_overwritten(files_db: LocalServer,
                                                    http: FileServer) -> None:
    old = http.base + "/changed.txt"
    ids = add_files(files_db, [old])
    new = http.base + "/small.txt"

    def change() -> None:  # the sync applies a new URL while the old file is read
        files_db.execute(f"UPDATE {DB}.files SET file_url = %s, checksum_status = 'pending' "
                         "WHERE id = %s", (new, ids[old]))

    http.during["/changed.txt"] = change
    with structlog.testing.capture_logs() as logs:
        report = job(files_db).run_once()

    assert report.skipped == 1 and report.verified == 0 and report.backlog == 1
    assert rows(files_db)[new][:3] == ("pending", None, None)
    assert any(e["event"].startswith("checksum not stored") for e in logs)
    del http.during["/changed.txt"]
    assert job(files_db).run_once().verified == 1
    assert rows(files_db)[new][:3] == ("verified", sha(SMALL), len(SMALL))


def test_rate_limit_and_limit(files_db: LocalServer, http: FileServer) -> None:
    add_files(files_db, [f"{http.base}/small.txt?n={i}" for i in range(5)])
    started = time.monotonic()
    report = job(files_db, rate=20).run_once(limit=4)
    elapsed = time.monotonic() - started
    assert report.verified == 4 and report.backlog == 1
    assert elapsed >= 3 / 20 * 0.95  # four starts: three gaps of 1/20 s


@pytest.mark.usefixtures("clean_env")
def test_the_cli_runs_one_pass(files_db: LocalServer, root: Path, tmp_path: Path) -> None:
    add_files(files_db, ["/docs/a.txt", "/docs/nope.txt", "docs/a.txt"])
    env = write_env_file(tmp_path / "ck.env", {
        "TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(files_db.port), "TIDB_USER": files_db.user,
        "TIDB_PASSWORD": files_db.password, "FILE_DB_NAME": DB,
        "AURORA_SYNC_STORAGE_ROOT": str(root), "AURORA_SYNC_LOG_FORMAT": "json"})
    result = CliRunner().invoke(app, ["--env-file", str(env), "checksums", "--limit", "2",
                                      "--rate", "0"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == ("verified 1, missing 1, failed 0, skipped 0 "
                                     "(URL changed meanwhile), pending 1")


def test_logged_urls_carry_no_credentials_or_query() -> None:
    assert safe_url("https://u:p4ss@cdn.example.com:8443/a/b.pdf?X-Amz-Signature=abc#f") == \
        "https://cdn.example.com:8443/a/b.pdf"
    assert safe_url("/docs/a.txt?token=1") == "/docs/a.txt"
