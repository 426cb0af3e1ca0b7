"""Real checksums for migrated files (the guide's post-migration task 1).

The mapping writes ``file_db.files`` rows with ``checksum_status = 'pending'``. This job reads
each pending file once, streaming (never the whole file in memory), and records its sha256
and size:

- local files: a bare path or a ``file://`` URL, always relative to
  ``AURORA_SYNC_STORAGE_ROOT`` (``/uploads/a.pdf`` reads ``<root>/uploads/a.pdf``); a path
  that resolves outside the root (``..``, a symlink) is refused;
- ``http(s)://`` URLs, with a timeout; 5xx, 408, 429, timeouts and refused connections are
  retried a few times with backoff;
- ``s3://`` and other schemes are marked ``failed`` with what to configure instead.

Outcomes: ``verified`` (checksum and size), ``missing`` (404/410, no such file; not tried
again until someone sets the row back to ``pending``), ``failed`` (refused, or still failing
after the retries). A row whose ``file_url`` changed while its file was read is left alone:
the update is guarded by the URL read and by ``checksum_status = 'pending'``. Files are read
at most ``rate`` per second so the file servers are not flooded.

Logs name the file id and the URL without credentials or query string (presigned URLs carry
signatures there).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import unquote, urlsplit

import pymysql
import structlog

from sync.apply.sql import quote
from sync.db import connect
from sync.errors import AuroraSyncError
from sync.settings import Settings

log = structlog.get_logger("aurora_sync.checksums")

CHUNK: Final = 1024 * 1024
ERROR_MAX: Final = 512
TRANSIENT_HTTP: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
MISSING_HTTP: Final = frozenset({404, 410})
S3_FIX: Final = (
    "s3:// URLs are not read by aurora-sync (it holds no S3 credentials): mount the bucket "
    "under AURORA_SYNC_STORAGE_ROOT (e.g. mountpoint-s3) and store file:// paths, or serve "
    "it over https and store those URLs, then set checksum_status back to 'pending'"
)


class _Missing(Exception):  # noqa: N818 - internal outcome, becomes checksum_status
    pass


class _Transient(Exception):  # noqa: N818 - internal outcome: worth another try
    pass


class _Failed(Exception):  # noqa: N818 - internal outcome, becomes checksum_status
    pass


@dataclass(frozen=True, slots=True)
class ChecksumOptions:
    storage_root: Path | None
    rate: float = 10.0
    """Files per second at most; 0 for no limit."""
    attempts: int = 3
    """Tries per file for transient errors."""
    backoff: float = 0.5
    """Seconds before the second try; doubled for each further one."""
    timeout: float = 30.0
    """Seconds an HTTP connection may stay silent."""
    page: int = 100


@dataclass(frozen=True, slots=True)
class Digest:
    sha256: str
    size: int


@dataclass
class ChecksumReport:
    verified: int = 0
    missing: int = 0
    failed: int = 0
    skipped: int = 0
    """Rows whose URL changed (or that stopped being pending) while read."""
    backlog: int | None = None
    """Pending rows left after the run."""

    def line(self) -> str:
        return (f"verified {self.verified}, missing {self.missing}, failed {self.failed}, "
                f"skipped {self.skipped} (URL changed meanwhile), "
                f"pending {'?' if self.backlog is None else self.backlog}")


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: fit for logs."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url.partition("?")[0]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


# --- reading one file ---------------------------------------------------------------------


def _hash_stream(stream: IO[bytes]) -> Digest:
    sha = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return Digest(sha.hexdigest(), size)


def resolve_local(url: str, root: Path | None) -> Path:
    """The file a bare path or file:// URL names, under ``root``; raises _Failed if none."""
    if root is None:
        raise _Failed("a local path needs AURORA_SYNC_STORAGE_ROOT (the directory the paths "
                      "are relative to)")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _Failed(f"file URL on another host {parts.netloc!r}: serve it over https")
        relative = unquote(parts.path)
    else:
        relative = url
    base = root.resolve()
    path = (base / relative.lstrip("/")).resolve()
    if not path.is_relative_to(base):
        raise _Failed("the path leaves AURORA_SYNC_STORAGE_ROOT; refused")
    return path


def _digest_local(path: Path) -> Digest:
    try:
        with path.open("rb") as stream:
            return _hash_stream(stream)
    except FileNotFoundError:
        raise _Missing("no such file under AURORA_SYNC_STORAGE_ROOT") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise _Failed(f"cannot read the file: {exc.strerror}") from None
    except OSError as exc:
        raise _Transient(f"read error: {exc.strerror}") from None


def _digest_http(url: str, timeout: float) -> Digest:
    # Only http(s) reaches here (see digest): no file: or custom schemes.
    request = urllib.request.Request(  # noqa: S310
        url, headers={"User-Agent": "aurora-sync-checksums"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _hash_stream(response)
    except urllib.error.HTTPError as exc:
        if exc.code in MISSING_HTTP:
            raise _Missing(f"HTTP {exc.code}") from None
        if exc.code in TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code}") from None
        raise _Failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Transient(f"cannot reach the server: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:
        raise _Transient(f"connection failed: {type(exc).__name__}") from None


def digest(url: str, options: ChecksumOptions) -> Digest:
    """One attempt at the sha256 and size of ``url``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _digest_http(url, options.timeout)
    if scheme in ("", "file"):
        return _digest_local(resolve_local(url, options.storage_root))
    if scheme == "s3":
        raise _Failed(S3_FIX)
    raise _Failed(f"unsupported URL scheme {scheme!r}: use https, file:// or a path under "
                  "AURORA_SYNC_STORAGE_ROOT")


# --- the job ----------------------------------------------------------------------------


class _Pacer:
    """At most ``rate`` starts per second; waits end early when ``stop`` is set."""

    def __init__(self, rate: float, stop: threading.Event) -> None:
        self._gap = 1.0 / rate if rate > 0 else 0.0
        self._stop = stop
        self._next = 0.0

    def wait(self) -> bool:
        """False when stopped."""
        now = time.monotonic()
        if self._next > now and self._stop.wait(self._next - now):
            return False
        self._next = max(self._next, now) + self._gap
        return not self._stop.is_set()


Connect = Callable[[], "pymysql.Connection[Any]"]


class ChecksumJob:
    """Fills checksums of pending ``files`` rows; :meth:`run_once` is one pass."""

    def __init__(
        self,
        connect: Connect,
        file_db: str,
        options: ChecksumOptions,
        *,
        stop: threading.Event | None = None,
        on_backlog: Callable[[int], None] | None = None,
    ) -> None:
        self._connect = connect
        self._files = f"{quote(file_db)}.`files`"
        self.options = options
        self._stop = stop or threading.Event()
        self._on_backlog = on_backlog

    def run_once(self, limit: int | None = None) -> ChecksumReport:
        """Check up to ``limit`` pending files (all of them when None)."""
        report = ChecksumReport()
        pacer = _Pacer(self.options.rate, self._stop)
        with contextlib.closing(self._connect()) as conn:
            after = ""
            while limit is None or _done(report) < limit:
                size = self.options.page if limit is None else \
                    min(self.options.page, limit - _done(report))
                rows = self._pending(conn, after, size)
                if not rows:
                    break
                for file_id, url in rows:
                    if not pacer.wait():
                        break
                    self._one(conn, file_id, url, report)
                    after = file_id
                if self._stop.is_set():
                    break
            report.backlog = self.backlog(conn)
        if self._on_backlog is not None:
            self._on_backlog(report.backlog)
        log.info("checksums pass done", verified=report.verified, missing=report.missing,
                 failed=report.failed, skipped=report.skipped, pending=report.backlog)
        return report

    def run_quietly(self) -> None:
        """One pass for the scheduler: a target outage is logged, not raised."""
        try:
            self.run_once()
        except (AuroraSyncError, pymysql.MySQLError) as exc:
            reason = exc.reason if isinstance(exc, AuroraSyncError) else _mysql_reason(exc)
            log.warning("checksums pass failed", error=type(exc).__name__, reason=reason)

    def backlog(self, conn: pymysql.Connection[Any]) -> int:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self._files} WHERE checksum_status = 'pending'")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def _pending(self, conn: pymysql.Connection[Any], after: str,
                 size: int) -> list[tuple[str, str]]:
        # Keyset order: rows left pending (URL changed meanwhile) are not read again this pass.
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, file_url FROM {self._files} WHERE checksum_status = "
                        "'pending' AND id > %s ORDER BY id LIMIT %s", (after, size))
            return [(str(i), str(u)) for i, u in cur.fetchall()]

    def _one(self, conn: pymysql.Connection[Any], file_id: str, url: str,
             report: ChecksumReport) -> None:
        outcome = self._attempts(file_id, url)
        if outcome is None:  # stopped while waiting to retry: stays pending
            return
        status, found, error = outcome
        with conn.cursor() as cur:
            cur.execute(
                f"UPDATE {self._files} SET checksum_status = %s, "
                "checksum_sha256 = COALESCE(%s, checksum_sha256), "
                "size_bytes = COALESCE(%s, size_bytes), checksum_error = %s, "
                "checksum_checked_at = UTC_TIMESTAMP() "
                "WHERE id = %s AND file_url = %s AND checksum_status = 'pending'",
                (status, found and found.sha256, found and found.size,
                 error and error[:ERROR_MAX], file_id, url))
            changed = cur.rowcount
        conn.commit()
        if not changed:
            report.skipped += 1
            log.info("checksum not stored: the row changed meanwhile", file_id=file_id)
            return
        setattr(report, status, getattr(report, status) + 1)
        if error:
            log.warning("file checksum not computed", file_id=file_id, url=safe_url(url),
                        status=status, reason=error)

    def _attempts(self, file_id: str, url: str) -> _Outcome | None:
        """The outcome for one file; None when stopped before it was known."""
        delay = self.options.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                return "verified", digest(url, self.options), None
            except _Missing as exc:
                return "missing", None, str(exc)
            except _Failed as exc:
                return "failed", None, str(exc)
            except _Transient as exc:
                if attempt >= self.options.attempts:
                    return "failed", None, f"{exc} (after {attempt} tries)"
                log.debug("file read failed; retrying", file_id=file_id, url=safe_url(url),
                          attempt=attempt, reason=str(exc))
            if self._stop.wait(delay):
                return None
            delay *= 2


_Outcome = tuple[str, Digest | None, str | None]


def _done(report: ChecksumReport) -> int:
    return report.verified + report.missing + report.failed + report.skipped


def _mysql_reason(exc: pymysql.MySQLError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def checksum_pass(settings: Settings, *, limit: int | None = None,
                  rate: float = 10.0) -> ChecksumReport:
    """``aurora-sync checksums``: one pass over the pending files with the settings' target."""
    job = ChecksumJob(lambda: connect(settings.target, settings.file_db), settings.file_db,
                      ChecksumOptions(storage_root=settings.storage_root, rate=rate))
    return job.run_once(limit)
