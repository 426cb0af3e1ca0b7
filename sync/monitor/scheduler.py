"""The daemon's periodic work on APScheduler 3's BackgroundScheduler.

==================  ==========================  ===========================================
job id              every                       does
==================  ==========================  ===========================================
``heartbeat``       ``heartbeat_interval``      writes the heartbeat row on the source
``position_gap``    ``gap_interval`` (5 s)      samples the source's binlog end → gap bytes
``summary``         ``summary_interval`` (60 s) one info log line: state, lag, rates
``checksums``       ``checksum_interval`` (60)  one pass of the file checksum job
``caught_up``       1 s                         catching_up with lag under the limit →
                                                ``on_caught_up()`` (records streaming)
==================  ==========================  ===========================================

Each job runs at most once at a time and skips missed runs (``coalesce``): a slow source
delays heartbeats, it does not queue a burst of them. The checksum job has its own thread so
that a long pass never holds up a heartbeat. Jobs never raise: a failure is logged and the
next run tries again. The daemon starts the scheduler after the monitor server and shuts it
down (``shutdown(wait=True)``) before closing its connections.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import pymysql
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from sync.checksums import ChecksumJob
from sync.db import error_code
from sync.errors import AuroraSyncError
from sync.monitor.heartbeat import HeartbeatWriter
from sync.monitor.lag import sample_gap
from sync.monitor.metrics import Metrics
from sync.settings import Settings

log = structlog.get_logger("aurora_sync.monitor.scheduler")

GAP_SECONDS: Final = 5.0
SUMMARY_SECONDS: Final = 60.0
CHECKSUM_SECONDS: Final = 60.0

Connect = Callable[[], "pymysql.Connection[Any]"]


class GapSampler:
    """Samples the position gap into ``metrics``; keeps one source connection."""

    def __init__(self, connect: Connect, metrics: Metrics) -> None:
        self._connect = connect
        self._metrics = metrics
        self._conn: pymysql.Connection[Any] | None = None

    def sample(self) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._metrics.gap_sampled(sample_gap(self._conn, self._metrics.applied_position()))
        except (pymysql.MySQLError, AuroraSyncError) as exc:
            self.close()
            reason = exc.reason if isinstance(exc, AuroraSyncError) else str(exc.args[-1])
            log.warning("position gap not sampled", error=type(exc).__name__,
                        code=error_code(exc), reason=reason,
                        fix=exc.fix if isinstance(exc, AuroraSyncError) else None)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()


def log_summary(metrics: Metrics) -> None:
    """The periodic one-line summary an operator tails."""
    live = metrics.live()
    log.info("summary", state=live.state, healthy=live.healthy, health=live.health_reason,
             lag_s=None if live.lag_seconds is None else round(live.lag_seconds, 3),
             lag_source=live.lag_source, gap_bytes=live.position_gap_bytes,
             rows_per_s=round(live.rows_per_second, 1),
             txn_per_s=round(live.transactions_per_second, 1),
             applied=live.applied_position, checksum_backlog=live.checksum_backlog)


def _promote(metrics: Metrics, on_caught_up: Callable[[], None]) -> None:
    if metrics.caught_up():
        log.info("caught up: streaming", lag_s=metrics.live().lag_seconds)
        on_caught_up()


def build_scheduler(
    settings: Settings,
    *,
    metrics: Metrics,
    heartbeat: HeartbeatWriter | None = None,
    gap: GapSampler | None = None,
    checksums: ChecksumJob | None = None,
    on_caught_up: Callable[[], None] | None = None,
    gap_interval: float = GAP_SECONDS,
    summary_interval: float = SUMMARY_SECONDS,
    checksum_interval: float = CHECKSUM_SECONDS,
) -> BackgroundScheduler:
    """The scheduler with its jobs, not started; ``None`` leaves a job out.

    ``on_caught_up`` is called (from a scheduler thread) when the state is ``catching_up``
    and the measured lag is under ``health_max_lag``: the daemon records ``streaming`` there.
    """
    # APScheduler logs every run at INFO: once a second with heartbeats.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(4), "slow": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    now = datetime.now(UTC)
    if heartbeat is not None:
        _every(scheduler, "heartbeat", heartbeat.beat, settings.heartbeat_interval, now)
    if gap is not None:
        _every(scheduler, "position_gap", gap.sample, gap_interval, now)
    if on_caught_up is not None:
        _every(scheduler, "caught_up", lambda: _promote(metrics, on_caught_up),
               min(gap_interval, 1.0), None)
    _every(scheduler, "summary", lambda: log_summary(metrics), summary_interval, None)
    if checksums is not None:
        _every(scheduler, "checksums", checksums.run_quietly, checksum_interval, now,
               executor="slow")
    return scheduler


def _every(scheduler: BackgroundScheduler, job_id: str, func: Callable[[], Any],
           seconds: float, first: datetime | None, *, executor: str = "default") -> None:
    kwargs: dict[str, Any] = {"next_run_time": first} if first is not None else {}
    scheduler.add_job(func, "interval", seconds=seconds, id=job_id, name=job_id,
                      executor=executor, misfire_grace_time=max(int(seconds), 1), **kwargs)

