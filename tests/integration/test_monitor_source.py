"""Heartbeats and the position gap against a real throwaway source."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from structlog.testing import capture_logs

from sync.db import connect
from sync.dev.localdb import LocalServer
from sync.model import Checkpoint, SourceTransaction
from sync.monitor.health import HealthPolicy
from sync.monitor.heartbeat import HeartbeatWriter, ensure_heartbeat_table, heartbeat_ts
from sync.monitor.lag import position_gap, sample_gap
from sync.monitor.metrics import Metrics
from sync.monitor.scheduler import GapSampler, build_scheduler
from sync.settings import Settings, load_settings
from sync.source.binlog import open_binlog
from sync.source.position import current_position

pytestmark = pytest.mark.integration

HB = "mon_heartbeat"
LIMITED_USER = "mon_limited"
LIMITED_PASSWORD = "mon-limited-pw-1f3a"


def settings_for(server: LocalServer, user: str | None = None,
                 password: str | None = None, **extra: Any) -> Settings:
    return load_settings(None, source_host=server.host, source_port=server.port,
                         source_user=user or server.user,
                         source_password=password or server.password,
                         server_id=4_300_777, heartbeat_interval=0.2, **extra)


@pytest.fixture
def source(source_server: LocalServer) -> Iterator[LocalServer]:
    source_server.execute(f"DROP DATABASE IF EXISTS {HB}")
    source_server.execute(f"DROP USER IF EXISTS '{LIMITED_USER}'@'%'")
    yield source_server
    source_server.execute(f"DROP DATABASE IF EXISTS {HB}")
    source_server.execute(f"DROP USER IF EXISTS '{LIMITED_USER}'@'%'")


@pytest.fixture
def admin(source: LocalServer) -> Iterator[pymysql.Connection[Any]]:
    with contextlib.closing(connect(settings_for(source).source)) as conn:
        yield conn


def limited_user(server: LocalServer, *grants: str) -> Settings:
    server.execute(f"CREATE USER '{LIMITED_USER}'@'%' IDENTIFIED BY '{LIMITED_PASSWORD}'")
    for grant in grants:
        server.execute(f"GRANT {grant} TO '{LIMITED_USER}'@'%'")
    return settings_for(server, LIMITED_USER, LIMITED_PASSWORD)


def test_heartbeat_rows_are_written_and_come_back_through_the_binlog(
        source: LocalServer, admin: pymysql.Connection[Any]) -> None:
    assert ensure_heartbeat_table(admin, HB) is True
    settings = settings_for(source)
    start = current_position(admin)
    writer = HeartbeatWriter(lambda: connect(settings.source), HB)
    assert writer.beat() and writer.beat()
    writer.close()

    seq, ts = source.execute(f"SELECT seq, ts FROM {HB}.heartbeat WHERE id = 1")[0]
    assert seq == 2
    assert isinstance(ts, datetime)
    assert abs(datetime.now(UTC).replace(tzinfo=None) - ts).total_seconds() < 5

    with open_binlog(settings, start, schemas={HB}, blocking=False, progress_every=1e9) as r:
        changes = [c for e in r if isinstance(e, SourceTransaction) for c in e.changes]
    stamps = [heartbeat_ts(c, HB) for c in changes]
    assert len(stamps) == 2 and stamps[-1] == ts
    metrics = Metrics(policy=HealthPolicy(5, 10), heartbeat_interval=1, heartbeat_table=True)
    metrics.source_heartbeat(stamps[-1] or ts, changes[-1].commit_ts)
    lag = metrics.live().lag_seconds
    assert lag is not None and 0 <= lag < 5


def test_without_the_create_grant_the_table_falls_back_with_the_reason(
        source: LocalServer) -> None:
    settings = limited_user(source, "SELECT ON *.*", "REPLICATION CLIENT ON *.*")
    with contextlib.closing(connect(settings.source)) as conn, capture_logs() as logs:
        assert ensure_heartbeat_table(conn, HB) is False
    event = next(e for e in logs if e["event"].startswith("heartbeat table unavailable"))
    assert event["schema"] == HB and event["code"] == 1044
    assert "GRANT INSERT, UPDATE" in event["fix"]
    assert source.execute(f"SHOW DATABASES LIKE '{HB}'") == []


def test_a_table_made_by_an_administrator_is_used_without_the_create_grant(
        source: LocalServer, admin: pymysql.Connection[Any]) -> None:
    assert ensure_heartbeat_table(admin, HB)
    settings = limited_user(source, f"INSERT, UPDATE, SELECT ON {HB}.* ")
    with contextlib.closing(connect(settings.source)) as conn:
        assert ensure_heartbeat_table(conn, HB) is True


def test_the_writer_survives_a_source_it_cannot_write(source: LocalServer) -> None:
    settings = limited_user(source, "SELECT ON *.*")
    writer = HeartbeatWriter(lambda: connect(settings.source), HB)
    with capture_logs() as logs:
        assert writer.beat() is False
        assert writer.beat() is False
    assert writer.failures == 2
    levels = [e["log_level"] for e in logs if e["event"] == "heartbeat write failed"]
    assert levels == ["warning", "debug"]  # one warning per outage, not one per second


def binlog_size(server: LocalServer, name: str) -> int:
    return (server.datadir / name).stat().st_size


def test_position_gap_in_one_file_and_across_a_rotation(
        source: LocalServer, admin: pymysql.Connection[Any]) -> None:
    assert ensure_heartbeat_table(admin, HB)
    applied = current_position(admin)
    source.execute(f"INSERT INTO {HB}.heartbeat VALUES (2, UTC_TIMESTAMP(6), 1)")
    same = sample_gap(admin, applied)
    assert same.current.file == applied.file
    assert same.gap_bytes == same.current.pos - applied.pos > 0
    assert abs(same.clock_offset) < 2

    source.execute("FLUSH BINARY LOGS")
    source.execute(f"UPDATE {HB}.heartbeat SET seq = 2 WHERE id = 2")
    rotated = sample_gap(admin, applied)
    assert rotated.current.file != applied.file
    # Independent of SHOW BINARY LOGS: the files on disk.
    expected = binlog_size(source, applied.file) - applied.pos + rotated.current.pos
    assert rotated.gap_bytes == expected
    # Caught up: nothing between.
    assert position_gap(rotated.current, rotated.current) == 0
    assert sample_gap(admin, None).gap_bytes is None


def test_scheduler_writes_heartbeats_and_samples_the_gap(
        source: LocalServer, admin: pymysql.Connection[Any]) -> None:
    assert ensure_heartbeat_table(admin, HB)
    settings = settings_for(source)
    metrics = Metrics.for_settings(settings, heartbeat_table=True)
    applied = current_position(admin)
    metrics.resumed(Checkpoint(applied))
    writer = HeartbeatWriter(lambda: connect(settings.source), HB)
    gap = GapSampler(lambda: connect(settings.source), metrics)
    scheduler = build_scheduler(settings, metrics=metrics, heartbeat=writer, gap=gap,
                                gap_interval=0.2)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and writer.seq < 4:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        writer.close()
        gap.close()
    assert writer.seq >= 4
    assert source.execute(f"SELECT seq FROM {HB}.heartbeat WHERE id = 1")[0][0] == writer.seq
    live = metrics.live()
    assert live.source_position is not None and live.source_position != str(applied)
    # The heartbeats written since ``applied`` are the gap (nothing applied them).
    assert live.position_gap_bytes is not None and live.position_gap_bytes > 0


def test_catching_up_turns_to_streaming_once_the_lag_is_low(source: LocalServer) -> None:
    settings = settings_for(source, health_max_lag=5.0)
    metrics = Metrics.for_settings(settings, heartbeat_table=True)
    caught_up = threading.Event()
    scheduler = build_scheduler(settings, metrics=metrics, on_caught_up=caught_up.set)
    metrics.state("catching_up", "from binlog.000001:4")
    metrics.source_heartbeat(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=60))
    scheduler.start()
    try:
        assert not caught_up.wait(1.5)  # 60 s behind: not yet
        metrics.source_heartbeat(datetime.now(UTC).replace(tzinfo=None))
        assert caught_up.wait(3)
    finally:
        scheduler.shutdown(wait=True)
