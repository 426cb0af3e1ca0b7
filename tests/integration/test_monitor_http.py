"""The monitor endpoint over real HTTP on 127.0.0.1: /metrics, /healthz, /status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sync.apply.writer import ApplyResult
from sync.errors import ConfigError
from sync.model import Checkpoint, Position
from sync.monitor.health import HealthPolicy
from sync.monitor.http import MonitorServer
from sync.monitor.metrics import Metrics
from sync.source.events import Heartbeat

pytestmark = pytest.mark.integration


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(policy=HealthPolicy(max_lag=5.0, stale_after=10.0),
                   heartbeat_interval=1.0, heartbeat_table=True)


@pytest.fixture
def server(metrics: Metrics) -> Iterator[MonitorServer]:
    with MonitorServer("127.0.0.1:0", metrics) as running:
        yield running


def apply_batch(metrics: Metrics) -> None:
    result = ApplyResult(rows={("gateway_db.users", "upsert"): 3,
                               ("syllabus_db.syllabi", "delete"): 1},
                         statements=2, seconds=0.02, retries=1)
    metrics.batch_applied(result, 2, Checkpoint(Position("binlog.000001", 900), utc_now()))


def test_a_scrape_gets_every_metric_family(server: MonitorServer, metrics: Metrics) -> None:
    metrics.state("streaming")
    apply_batch(metrics)
    metrics.source_heartbeat(utc_now() - timedelta(milliseconds=300))
    metrics.error("ApplyError")
    metrics.bootstrap_progress("aurora.users", 40, 100)
    metrics.checksum_backlog(7)

    response = httpx.get(f"{server.url}/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    for line in (
        'aurora_sync_rows_applied_total{operation="upsert",table="gateway_db.users"} 3.0',
        'aurora_sync_rows_applied_total{operation="delete",table="syllabus_db.syllabi"} 1.0',
        "aurora_sync_transactions_applied_total 2.0",
        'aurora_sync_retries_total{kind="apply"} 1.0',
        'aurora_sync_errors_total{kind="ApplyError"} 1.0',
        'aurora_sync_state{state="streaming"} 1.0',
        'aurora_sync_state{state="halted"} 0.0',
        'aurora_sync_bootstrap_rows_copied{table="aurora.users"} 40.0',
        'aurora_sync_bootstrap_rows_estimated{table="aurora.users"} 100.0',
        "aurora_sync_checksum_backlog_files 7.0",
        "aurora_sync_batch_rows_count 1.0",
        "aurora_sync_batch_seconds_count 1.0",
        "aurora_sync_lag_observed_seconds_count 1.0",
        "aurora_sync_lag_from_heartbeat 1.0",
        "aurora_sync_healthy 1.0",
    ):
        assert line in text, line
    lag = _sample(text, "aurora_sync_lag_seconds")
    assert 0.25 < lag < 2.0
    assert "aurora_sync_position_gap_bytes NaN" in text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_healthz_is_200_streaming_with_low_lag(server: MonitorServer, metrics: Metrics) -> None:
    metrics.state("streaming")
    metrics.source_heartbeat(utc_now() - timedelta(milliseconds=200))

    response = httpx.get(f"{server.url}/healthz")

    assert response.status_code == 200
    assert response.text.startswith("streaming, lag 0.")
    assert "lag source: heartbeat table" in response.text


def test_healthz_is_503_with_the_reason_when_halted(server: MonitorServer,
                                                    metrics: Metrics) -> None:
    metrics.state("streaming")
    metrics.source_heartbeat(utc_now())
    metrics.state("halted", "ApplyError: error 1406 on gateway_db.users")

    response = httpx.get(f"{server.url}/healthz")

    assert response.status_code == 503
    assert response.text == "halted: ApplyError: error 1406 on gateway_db.users\n"


def test_healthz_is_503_when_lag_is_too_high(server: MonitorServer, metrics: Metrics) -> None:
    metrics.state("streaming")
    metrics.source_heartbeat(utc_now() - timedelta(seconds=8))

    response = httpx.get(f"{server.url}/healthz")

    assert response.status_code == 503
    assert response.text.startswith("lag too high: 8.")


def test_healthz_is_503_before_streaming_and_without_heartbeats(metrics: Metrics) -> None:
    quick = Metrics(policy=HealthPolicy(max_lag=5.0, stale_after=0.3),
                    heartbeat_interval=0.1, heartbeat_table=True)
    with MonitorServer("127.0.0.1:0", quick) as server:
        first = httpx.get(f"{server.url}/healthz")
        assert first.status_code == 503
        assert first.text.startswith("not streaming yet")

        quick.state("streaming")
        quick.source_heartbeat(utc_now())
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        time.sleep(0.5)
        stale = httpx.get(f"{server.url}/healthz")
        assert stale.status_code == 503
        assert stale.text.startswith("no heartbeat row applied for")


def test_status_serves_the_live_figures_as_json(server: MonitorServer,
                                                metrics: Metrics) -> None:
    metrics.state("streaming")
    apply_batch(metrics)
    metrics.heartbeat(Heartbeat(Position("binlog.000001", 1200), Position("binlog.000001", 1200)))

    body = httpx.get(f"{server.url}/status").json()
    live_only = httpx.get(f"{server.url}/status/live").json()["live"]
    assert live_only["rows_applied"] == body["live"]["rows_applied"] == 4

    live = body["live"]
    assert live["state"] == "streaming"
    assert live["rows_applied"] == 4
    assert live["transactions_applied"] == 2
    assert live["applied_position"] == "binlog.000001:1200"
    assert body["state"]["name"] == "streaming"
    assert body["daemon"]["running"] is True


def test_unknown_path_is_404_and_stop_frees_the_port(metrics: Metrics) -> None:
    server = MonitorServer("127.0.0.1:0", metrics).start()
    url = server.url
    assert httpx.get(f"{url}/nope").status_code == 404
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=1)


def test_a_taken_port_is_a_config_error(server: MonitorServer, metrics: Metrics) -> None:
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
        MonitorServer(f"127.0.0.1:{server.port}", metrics).start()
    with pytest.raises(ConfigError, match="not host:port"):
        MonitorServer("localhost", metrics)
