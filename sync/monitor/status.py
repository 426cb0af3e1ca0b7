"""The status document: what ``aurora-sync status`` shows and ``/status`` serves.

It is gathered from what outlives the daemon (the state database and file_db on the target,
the source's binlog and tables), so it works whether or not the daemon runs; when the daemon
answers on ``AURORA_SYNC_HTTP_ADDR`` its live figures (measured lag, rates, health) are added
under ``live``. Each part is gathered on its own: a source that cannot be reached leaves its
part empty and says why under ``problems``, and the rest is still shown.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pymysql
import structlog

from sync.apply.sql import quote
from sync.db import connect
from sync.errors import AuroraSyncError
from sync.model import Position
from sync.monitor.lag import epoch, position_gap
from sync.monitor.metrics import LiveFigures
from sync.settings import Settings
from sync.source.position import current_position
from sync.state import StateStore

log = structlog.get_logger("aurora_sync.monitor.status")

DAEMON_TIMEOUT: Final = 2.0
CHECKSUM_STATUSES: Final = ("pending", "verified", "missing", "failed")
_ADVICE: Final[Mapping[str, str]] = {
    "bootstrapping": "wait: the snapshot is being copied (progress below); the stream "
    "starts by itself when it ends",
    "catching_up": "wait: the stream is applying the changes made since the snapshot; "
    "it is streaming once the lag stays under AURORA_SYNC_HEALTH_MAX_LAG",
    "streaming": "nothing: the targets follow aurora; validate and cut over when ready",
    "cut_over": "the migration is done: point the services at TiDB and stop the daemon",
    "stopped": "start the daemon again with `aurora-sync run`; it resumes at the checkpoint",
}


@dataclass
class Gathered:
    """The document as it is assembled; :meth:`document` gives the JSON shape."""

    pipeline: str
    state: dict[str, Any] | None = None
    positions: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    bootstrap_progress: list[dict[str, Any]] = field(default_factory=list)
    checksums: dict[str, int] | None = None
    daemon: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] | None = None
    problems: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "generated_at": _iso(datetime.now(UTC)),
            "state": self.state,
            "what_to_do": advice(self),
            "positions": self.positions,
            "lag": self.lag,
            "tables": self.tables,
            "bootstrap_progress": self.bootstrap_progress,
            "checksums": self.checksums,
            "daemon": self.daemon,
            "live": self.live,
            "problems": self.problems,
        }


def live_document(live: LiveFigures, pipeline: str = "") -> dict[str, Any]:
    """The status document of a daemon that only has its live figures."""
    gathered = Gathered(pipeline=pipeline, live=live.to_dict())
    _apply_live(gathered)
    return gathered.document()


def gather(
    settings: Settings,
    *,
    exact: bool = False,
    live: LiveFigures | None = None,
    ask_daemon: bool = True,
) -> dict[str, Any]:
    """The whole status document (see the module docstring)."""
    gathered = Gathered(pipeline=settings.pipeline)
    _guarded(gathered, "target", lambda: _from_target(settings, gathered, exact))
    _guarded(gathered, "source", lambda: _from_source(settings, gathered, exact))
    if live is not None:
        gathered.live = live.to_dict()
        gathered.daemon = {"running": True, "url": daemon_url(settings.http_addr)}
    elif ask_daemon:
        _from_daemon(settings.http_addr, gathered)
    _apply_live(gathered)
    return gathered.document()


def _guarded(gathered: Gathered, part: str, action: Callable[[], None]) -> None:
    try:
        action()
    except AuroraSyncError as exc:
        gathered.problems[part] = exc.describe()
    except pymysql.MySQLError as exc:
        reason = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        gathered.problems[part] = f"error {exc.args[0] if exc.args else '?'}: {reason}"
    if part in gathered.problems:
        log.warning("status part unavailable", part=part, reason=gathered.problems[part])


# --- the target: state database, service databases, file checksums ------------------------


def _from_target(settings: Settings, gathered: Gathered, exact: bool) -> None:
    with contextlib.closing(connect(settings.target)) as conn:
        store = StateStore(lambda: conn, settings.state_db, settings.pipeline)
        _guarded(gathered, "state", lambda: _state_part(store, gathered))
        names = [settings.database(logical) for logical in settings.databases]
        _guarded(gathered, "target_tables",
                 lambda: gathered.tables.update(targets=table_rows(conn, names, exact)))
        _guarded(gathered, "checksums",
                 lambda: setattr(gathered, "checksums",
                                 checksum_counts(conn, settings.file_db)))


def _state_part(store: StateStore, gathered: Gathered) -> None:
    state = store.read_state()
    if state is not None:
        gathered.state = {"name": state.state, "detail": state.detail,
                          "updated_at": _iso(state.updated_at), "last_error": state.last_error,
                          "fix": state.last_error_fix}
    checkpoint = store.read_checkpoint()
    if checkpoint is not None:
        gathered.positions["checkpoint"] = str(checkpoint.position)
        gathered.positions["checkpoint_commit_ts"] = _iso(checkpoint.commit_ts)
        if checkpoint.commit_ts is not None:
            # Without the daemon: the age of the newest applied source commit. With the
            # heartbeat table it moves every second, so it bounds the lag from above.
            gathered.lag = {"seconds": max(time.time() - epoch(checkpoint.commit_ts), 0.0),
                            "source": "checkpoint commit time"}
    run = store.latest_bootstrap()
    if run is not None:
        gathered.positions["bootstrap"] = {
            "id": run.id, "state": run.state, "method": run.method,
            "start": str(run.start), "end": None if run.end is None else str(run.end),
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at)}
        gathered.bootstrap_progress = [
            {"table": p.source_table, "rows_copied": p.rows_copied,
             "rows_estimated": p.rows_estimated, "done": p.done}
            for p in store.read_progress(run.id)]


def table_rows(conn: pymysql.Connection[Any], schemas: list[str],
               exact: bool) -> dict[str, int | None]:
    """Rows per ``schema.table``: information_schema's estimate, or COUNT(*) if ``exact``."""
    if not schemas:
        return {}
    marks = ", ".join(["%s"] * len(schemas))
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA IN ({marks}) AND TABLE_TYPE = 'BASE TABLE' "
                    "ORDER BY 1, 2", schemas)
        found = {f"{s}.{t}": None if n is None else int(n) for s, t, n in cur.fetchall()}
        if exact:
            for name in found:
                schema, _, table = name.partition(".")
                cur.execute(f"SELECT COUNT(*) FROM {quote(schema)}.{quote(table)}")
                row = cur.fetchone()
                found[name] = int(row[0]) if row else None
    return found


def checksum_counts(conn: pymysql.Connection[Any], file_db: str) -> dict[str, int]:
    """``files`` rows per checksum_status (every status present, 0 when none)."""
    counts = dict.fromkeys(CHECKSUM_STATUSES, 0)
    with conn.cursor() as cur:
        cur.execute(f"SELECT checksum_status, COUNT(*) FROM {quote(file_db)}.`files` "
                    "GROUP BY checksum_status")
        for status, count in cur.fetchall():
            counts[str(status)] = int(count)
    return counts


# --- the source: binlog end and table sizes ----------------------------------------------


def _from_source(settings: Settings, gathered: Gathered, exact: bool) -> None:
    with contextlib.closing(connect(settings.source)) as conn:
        current = current_position(conn)
        gathered.positions["source_current"] = str(current)
        applied = _parse_position(gathered.positions.get("checkpoint"))
        if applied is not None:
            with conn.cursor() as cur:
                cur.execute("SHOW BINARY LOGS")
                sizes = [(str(r[0]), int(r[1])) for r in cur.fetchall()]
            gathered.positions["gap_bytes"] = position_gap(applied, current, sizes)
        gathered.tables["source"] = table_rows(conn, [settings.source_db], exact)
        gathered.tables["exact"] = exact


def _parse_position(text: str | None) -> Position | None:
    if not text:
        return None
    file, _, rest = text.partition(":")
    pos = rest.split(" ", 1)[0]
    return Position(file, int(pos)) if pos.isdigit() else None


# --- the daemon -------------------------------------------------------------------------


def daemon_url(http_addr: str) -> str:
    """Where a local client reaches the daemon (a wildcard bind is reached on loopback)."""
    host, _, port = http_addr.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://{host}:{port}"


def fetch_daemon(http_addr: str, timeout: float = DAEMON_TIMEOUT) -> dict[str, Any] | None:
    """The daemon's live status document (``/status/live``), or None when none answers."""
    url = daemon_url(http_addr) + "/status/live"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            body = json.loads(response.read())
    except (OSError, ValueError) as exc:
        log.debug("daemon not answering", url=url, reason=str(exc))
        return None
    return body if isinstance(body, dict) else None


def _from_daemon(http_addr: str, gathered: Gathered) -> None:
    body = fetch_daemon(http_addr)
    live = body.get("live") if body else None
    gathered.daemon = {"running": isinstance(live, dict), "url": daemon_url(http_addr)}
    if isinstance(live, dict):
        gathered.live = live


def _apply_live(gathered: Gathered) -> None:
    """The daemon's figures win over the ones inferred from the stored state."""
    live = gathered.live
    if live is None:
        return
    gathered.lag = {"seconds": live.get("lag_seconds"), "source": live.get("lag_source"),
                    "last_event_age_seconds": live.get("last_event_age_seconds"),
                    "heartbeat_age_seconds": live.get("heartbeat_age_seconds")}
    gathered.daemon.setdefault("running", True)
    gathered.daemon["healthy"] = live.get("healthy")
    gathered.daemon["health_reason"] = live.get("health_reason")
    if gathered.state is None and live.get("state") is not None:
        gathered.state = {"name": live.get("state"), "detail": live.get("detail"),
                          "updated_at": None, "last_error": None, "fix": None}
    if "source_current" not in gathered.positions and live.get("source_position"):
        gathered.positions["source_current"] = live.get("source_position")
        gathered.positions["gap_bytes"] = live.get("position_gap_bytes")


def advice(gathered: Gathered) -> str:
    """One sentence: what the operator should do now."""
    state = gathered.state
    if state is None:
        if "target" in gathered.problems or "state" in gathered.problems:
            return "fix the target connection or run `aurora-sync init` (see problems)"
        return "nothing has run yet: run `aurora-sync check`, then `aurora-sync run`"
    name = str(state.get("name"))
    if name == "halted":
        fix = state.get("fix") or "read the last error, fix its cause, then restart the daemon"
        return str(fix)
    running = gathered.daemon.get("running")
    if running is False and name in ("bootstrapping", "catching_up", "streaming"):
        return (f"the state says {name} but no daemon answers at {gathered.daemon.get('url')}: "
                "start it with `aurora-sync run` (or check AURORA_SYNC_HTTP_ADDR)")
    if gathered.daemon.get("healthy") is False and name == "streaming":
        return f"look into: {gathered.daemon.get('health_reason')}"
    return _ADVICE.get(name, f"unknown state {name!r}")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.isoformat().replace("+00:00", "Z")


class DaemonStatus:
    """The daemon's ``/status`` provider: :func:`gather` with its live figures, cached for
    ``ttl`` seconds so that frequent polling costs the servers little."""

    def __init__(self, settings: Settings, live: Callable[[], LiveFigures],
                 ttl: float = 2.0) -> None:
        self._settings = settings
        self._live = live
        self._ttl = ttl
        self._cached: tuple[float, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self._ttl:
            return self._cached[1]
        document = gather(self._settings, live=self._live(), ask_daemon=False)
        self._cached = (now, document)
        return document
