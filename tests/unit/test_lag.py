"""Lag bookkeeping, the binlog gap arithmetic and the health verdict, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync.model import Position
from sync.monitor.health import HealthPolicy, evaluate
from sync.monitor.lag import LagReading, LagSource, LagTracker, position_gap

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def at(seconds: float) -> datetime:
    """A naive-UTC datetime at T0 + seconds, as the source rows carry them."""
    return datetime.fromtimestamp(T0 + seconds, UTC).replace(tzinfo=None)


SIZES = [("binlog.000001", 1000), ("binlog.000002", 500), ("binlog.000003", 300)]


def test_gap_in_one_file_is_the_difference() -> None:
    assert position_gap(Position("binlog.000002", 120), Position("binlog.000002", 420)) == 300


def test_gap_across_files_sums_the_rest_of_each_file() -> None:
    gap = position_gap(Position("binlog.000001", 900), Position("binlog.000003", 250), SIZES)
    assert gap == 100 + 500 + 250


def test_gap_is_unknown_when_the_applied_file_is_purged_or_ahead() -> None:
    assert position_gap(Position("binlog.000000", 5), Position("binlog.000003", 4), SIZES) is None
    assert position_gap(Position("binlog.000003", 5), Position("binlog.000001", 4), SIZES) is None


def test_heartbeat_lag_is_now_minus_ts_and_grows_when_heartbeats_stop() -> None:
    clock = Clock()
    tracker = LagTracker(heartbeat_interval=1.0, heartbeat_table=True, clock=clock)
    clock.now = T0 + 10.4
    assert tracker.heartbeat_row(at(10.0)) == pytest.approx(0.4)
    assert tracker.reading().seconds == pytest.approx(0.4)

    # No heartbeat applied for 5 s: the one due at T0+11 is 4.4 s late at least.
    clock.now = T0 + 15.4
    reading = tracker.reading()
    assert reading.seconds == pytest.approx(4.4)
    assert reading.heartbeat_age == pytest.approx(5.0)
    assert reading.source is LagSource.HEARTBEAT


def test_without_the_table_lag_comes_from_commit_times_corrected_for_clock_offset() -> None:
    clock = Clock()
    tracker = LagTracker(heartbeat_interval=1.0, heartbeat_table=False, clock=clock)
    clock.now = T0 + 3.0
    assert tracker.transaction_applied(at(1.0)) == pytest.approx(2.0)
    # The source's clock runs 0.5 s ahead of ours: its commit times look 0.5 s younger.
    tracker.set_clock_offset(0.5)
    assert tracker.transaction_applied(at(1.0)) == pytest.approx(2.5)
    clock.now = T0 + 13.0
    reading = tracker.reading()
    assert reading.source is LagSource.EVENTS
    assert reading.seconds == pytest.approx(2.5)
    assert reading.last_event_age == pytest.approx(10.0)
    assert reading.heartbeat_age is None


def test_with_the_table_commit_times_do_not_override_the_measured_lag() -> None:
    clock = Clock()
    tracker = LagTracker(heartbeat_interval=1.0, heartbeat_table=True, clock=clock)
    clock.now = T0 + 100.0
    assert tracker.transaction_applied(at(0.0)) is None
    assert tracker.reading().seconds is None


POLICY = HealthPolicy(max_lag=5.0, stale_after=10.0)


def reading(seconds: float | None, *, heartbeat_age: float | None = 0.5,
            source: LagSource = LagSource.HEARTBEAT) -> LagReading:
    return LagReading(seconds, source, last_event_age=0.5, heartbeat_age=heartbeat_age,
                      alive_age=0.5)


def test_health_is_ok_only_when_streaming_fresh_and_under_the_limit() -> None:
    assert evaluate("streaming", "", reading(0.3), POLICY, 60).ok
    halted = evaluate("halted", "ApplyError: refused row", reading(0.3), POLICY, None)
    assert not halted.ok and halted.reason == "halted: ApplyError: refused row"
    high = evaluate("streaming", "", reading(7.5), POLICY, 60)
    assert not high.ok and high.reason.startswith("lag too high: 7.5 s > 5 s")
    catching = evaluate("catching_up", "after bootstrap", reading(0.3), POLICY, None)
    assert not catching.ok and "not streaming yet: catching_up" in catching.reason
    assert not evaluate(None, "", reading(None), POLICY, None).ok


def test_health_fails_when_no_heartbeat_arrives() -> None:
    stale = evaluate("streaming", "", reading(0.3, heartbeat_age=42.0), POLICY, 600)
    assert not stale.ok and "no heartbeat row applied for 42 s" in stale.reason
    # Just switched to streaming: nothing yet is fine for one window, not after.
    assert evaluate("streaming", "", reading(None, heartbeat_age=None), POLICY, 3).ok
    never = evaluate("streaming", "", reading(None, heartbeat_age=None), POLICY, 30)
    assert not never.ok and "since streaming started" in never.reason
