"""The daemon's metrics: an Observer of the pipeline that keeps Prometheus figures.

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (no process
globals: two daemons in one test process do not mix). The pipeline calls the
:class:`~sync.pipeline.Observer` methods; the rest of the daemon calls the others:

==============================  ===============================================================
``batch_applied``               the apply loop, after each committed target transaction
``heartbeat``                   the apply loop, on a replication heartbeat (idle source)
``state``                       whoever changes the pipeline state (bootstrap, stream, halt)
``resumed``                     the daemon, with the checkpoint the stream starts from
``source_heartbeat``            the apply loop, for a heartbeat-table row (measured lag)
``error`` / ``retried``         the daemon, on an error by kind / a retry not in ApplyResult
``gap_sampled``                 the scheduler's gap job
``bootstrap_progress``          the bootstrap copy, per table
``checksum_backlog``            the checksum job
==============================  ===============================================================

Only this package imports ``prometheus_client``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sync.apply.writer import ApplyResult
from sync.model import Checkpoint, Position
from sync.monitor.health import Health, HealthPolicy, evaluate
from sync.monitor.lag import GapSample, LagReading, LagTracker
from sync.settings import Settings
from sync.source.events import Heartbeat

STATES: Final = ("bootstrapping", "catching_up", "streaming", "halted", "cut_over", "stopped")
LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                      3600.0)
BATCH_ROWS_BUCKETS: Final = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 50000)
BATCH_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                                30.0)
RATE_WINDOW_SECONDS: Final = 60.0
NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """What the running daemon knows now: the ``live`` section of the status document."""

    state: str | None
    detail: str
    state_since: float | None
    healthy: bool
    health_reason: str
    lag_seconds: float | None
    lag_source: str
    last_event_age_seconds: float | None
    heartbeat_age_seconds: float | None
    position_gap_bytes: int | None
    source_position: str | None
    applied_position: str | None
    rows_per_second: float
    transactions_per_second: float
    rows_applied: int
    transactions_applied: int
    batches_applied: int
    retries: int
    errors: dict[str, int] = field(default_factory=dict)
    checksum_backlog: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Window:
    """Rows and transactions applied in the last minute, for rates."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._items: deque[tuple[float, int, int]] = deque()

    def add(self, rows: int, transactions: int) -> None:
        self._items.append((self._clock(), rows, transactions))
        self._trim()

    def rates(self) -> tuple[float, float]:
        self._trim()
        rows = sum(r for _, r, _ in self._items)
        transactions = sum(t for _, _, t in self._items)
        return rows / RATE_WINDOW_SECONDS, transactions / RATE_WINDOW_SECONDS

    def _trim(self) -> None:
        horizon = self._clock() - RATE_WINDOW_SECONDS
        while self._items and self._items[0][0] < horizon:
            self._items.popleft()


class Metrics:
    """The pipeline Observer that keeps the figures; see the module docstring for callers."""

    def __init__(
        self,
        *,
        policy: HealthPolicy,
        heartbeat_interval: float,
        heartbeat_table: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self.lag = LagTracker(heartbeat_interval=heartbeat_interval,
                              heartbeat_table=heartbeat_table, clock=clock)
        self._window = _Window(clock)
        self._state: str | None = None
        self._detail = ""
        self._state_since: float | None = None
        self._applied: Position | None = None
        self._gap: GapSample | None = None
        self._backlog: int | None = None
        self._totals = {"rows": 0, "transactions": 0, "batches": 0, "retries": 0}
        self._errors: dict[str, int] = {}
        self._define()

    @classmethod
    def for_settings(cls, settings: Settings, *, heartbeat_table: bool) -> Metrics:
        """The daemon's Metrics: health limits from ``health_max_lag`` and the intervals."""
        stale = max(settings.health_max_lag, 5 * settings.heartbeat_interval,
                    3 * settings.replication_heartbeat)
        return cls(policy=HealthPolicy(settings.health_max_lag, stale),
                   heartbeat_interval=settings.heartbeat_interval,
                   heartbeat_table=heartbeat_table)

    def _define(self) -> None:
        r = self.registry
        self._lag_gauge = Gauge("aurora_sync_lag_seconds", "Seconds the targets are behind "
                                "the source (heartbeat table, else event timestamps)", registry=r)
        self._lag_gauge.set_function(lambda: _num(self.lag.reading().seconds))
        self._lag_hist = Histogram("aurora_sync_lag_observed_seconds", "Lag measured at each "
                                   "heartbeat row (or transaction without the table)",
                                   buckets=LAG_BUCKETS, registry=r)
        self._lag_heartbeat = Gauge("aurora_sync_lag_from_heartbeat", "1 when lag is measured "
                                    "with the heartbeat table, 0 from event timestamps",
                                    registry=r)
        self._lag_heartbeat.set_function(lambda: float(self.lag.source.name == "HEARTBEAT"))
        age = Gauge("aurora_sync_last_event_age_seconds", "Seconds since the last source "
                    "transaction was applied", registry=r)
        age.set_function(lambda: _num(self.lag.reading().last_event_age))
        hb_age = Gauge("aurora_sync_heartbeat_age_seconds", "Seconds since the last heartbeat "
                       "row was applied (NaN before the first)", registry=r)
        hb_age.set_function(lambda: _num(self.lag.reading().heartbeat_age))
        self._gap_gauge = Gauge("aurora_sync_position_gap_bytes", "Binlog bytes between the "
                                "applied checkpoint and the source's binlog end", registry=r)
        self._gap_gauge.set(NAN)
        self._rows = Counter("aurora_sync_rows_applied", "Target rows written, by table and "
                             "operation", ["table", "operation"], registry=r)
        self._transactions = Counter("aurora_sync_transactions_applied", "Source transactions "
                                     "applied", registry=r)
        self._batch_rows = Histogram("aurora_sync_batch_rows", "Target rows per batch",
                                     buckets=BATCH_ROWS_BUCKETS, registry=r)
        self._batch_seconds = Histogram("aurora_sync_batch_seconds", "Seconds to write and "
                                        "commit one batch", buckets=BATCH_SECONDS_BUCKETS,
                                        registry=r)
        self._retries = Counter("aurora_sync_retries", "Retries, by kind", ["kind"], registry=r)
        self._errors_c = Counter("aurora_sync_errors", "Errors, by kind", ["kind"], registry=r)
        self._dead = Counter("aurora_sync_dead_letters", "Rows skipped into dead_letter",
                             registry=r)
        self._state_g = Gauge("aurora_sync_state", "1 for the pipeline's current state",
                              ["state"], registry=r)
        for name in STATES:
            self._state_g.labels(state=name).set(0)
        self._up = Gauge("aurora_sync_healthy", "1 when /healthz answers 200", registry=r)
        self._up.set_function(lambda: float(self.health().ok))
        self._copied = Gauge("aurora_sync_bootstrap_rows_copied", "Rows copied by the "
                             "bootstrap, by source table", ["table"], registry=r)
        self._estimated = Gauge("aurora_sync_bootstrap_rows_estimated", "Rows the bootstrap "
                                "expects to copy, by source table", ["table"], registry=r)
        self._backlog_g = Gauge("aurora_sync_checksum_backlog_files", "files rows whose "
                                "checksum is still pending", registry=r)
        self._backlog_g.set(NAN)

    # --- the pipeline's Observer ---------------------------------------------------------

    def batch_applied(self, result: ApplyResult, transactions: int, end: Checkpoint) -> None:
        rows = 0
        for (table, operation), count in result.rows.items():
            self._rows.labels(table=table, operation=operation).inc(count)
            rows += count
        self._transactions.inc(transactions)
        self._batch_rows.observe(rows)
        self._batch_seconds.observe(result.seconds)
        if result.retries:
            self._retries.labels(kind="apply").inc(result.retries)
        if result.dead_letters:
            self._dead.inc(len(result.dead_letters))
        with self._lock:
            self._applied = end.position
            self._window.add(rows, transactions)
            self._totals["rows"] += rows
            self._totals["transactions"] += transactions
            self._totals["batches"] += 1
            self._totals["retries"] += result.retries
        lag = self.lag.transaction_applied(end.commit_ts)
        if lag is not None:
            self._lag_hist.observe(lag)

    def heartbeat(self, event: Heartbeat) -> None:
        self.lag.alive()
        with self._lock:
            # Everything before a replication heartbeat has been handed to the apply loop.
            if self._applied is None or event.position > self._applied:
                self._applied = event.position

    def state(self, name: str, detail: str = "") -> None:
        with self._lock:
            if name != self._state:
                self._state_since = self._clock()
            self._state, self._detail = name, detail
        for known in STATES:
            self._state_g.labels(state=known).set(1 if known == name else 0)

    # --- the rest of the daemon --------------------------------------------------------

    def source_heartbeat(self, ts: datetime, commit_ts: datetime | None = None) -> None:
        """A heartbeat-table row written at ``ts`` was applied (``TransactionMapper``'s
        ``on_heartbeat``). The measure uses ``ts``: microseconds, and the daemon's own clock;
        ``commit_ts`` (whole seconds, the source's clock) is not needed for it."""
        self._lag_hist.observe(self.lag.heartbeat_row(ts))

    def resumed(self, checkpoint: Checkpoint) -> None:
        """The stream starts at ``checkpoint``: the gap is measured from there until the
        first batch is applied."""
        with self._lock:
            if self._applied is None or checkpoint.position > self._applied:
                self._applied = checkpoint.position

    def use_heartbeat_table(self, enabled: bool) -> None:
        self.lag.use_heartbeat_table(enabled)

    def error(self, kind: str) -> None:
        """Count an error; ``kind`` is short and fixed (the error class name)."""
        self._errors_c.labels(kind=kind).inc()
        with self._lock:
            self._errors[kind] = self._errors.get(kind, 0) + 1

    def retried(self, kind: str, count: int = 1) -> None:
        """Count retries that ApplyResult does not carry (``source_reconnect``...)."""
        self._retries.labels(kind=kind).inc(count)
        with self._lock:
            self._totals["retries"] += count

    def gap_sampled(self, sample: GapSample) -> None:
        self._gap_gauge.set(NAN if sample.gap_bytes is None else sample.gap_bytes)
        self.lag.set_clock_offset(sample.clock_offset)
        with self._lock:
            self._gap = sample

    def bootstrap_progress(self, table: str, rows_copied: int,
                           rows_estimated: int | None) -> None:
        self._copied.labels(table=table).set(rows_copied)
        self._estimated.labels(table=table).set(NAN if rows_estimated is None
                                                else rows_estimated)

    def checksum_backlog(self, pending: int) -> None:
        self._backlog_g.set(pending)
        with self._lock:
            self._backlog = pending

    # --- readers -----------------------------------------------------------------------

    def applied_position(self) -> Position | None:
        with self._lock:
            return self._applied

    def caught_up(self) -> bool:
        """Catching up and the lag is measured under the health limit: time to stream."""
        with self._lock:
            state = self._state
        reading = self.lag.reading()
        return state == "catching_up" and reading.seconds is not None and \
            reading.seconds < self.policy.max_lag

    def health(self) -> Health:
        with self._lock:
            state, detail, since = self._state, self._detail, self._state_since
        streaming_for = None if since is None else self._clock() - since
        return evaluate(state, detail, self.lag.reading(), self.policy, streaming_for)

    def live(self) -> LiveFigures:
        reading: LagReading = self.lag.reading()
        health = self.health()
        with self._lock:
            rows_rate, txn_rate = self._window.rates()
            gap = self._gap
            return LiveFigures(
                state=self._state, detail=self._detail, state_since=self._state_since,
                healthy=health.ok, health_reason=health.reason,
                lag_seconds=reading.seconds, lag_source=str(reading.source),
                last_event_age_seconds=reading.last_event_age,
                heartbeat_age_seconds=reading.heartbeat_age,
                position_gap_bytes=None if gap is None else gap.gap_bytes,
                source_position=None if gap is None else str(gap.current),
                applied_position=None if self._applied is None else str(self._applied),
                rows_per_second=rows_rate, transactions_per_second=txn_rate,
                rows_applied=self._totals["rows"],
                transactions_applied=self._totals["transactions"],
                batches_applied=self._totals["batches"], retries=self._totals["retries"],
                errors=dict(self._errors), checksum_backlog=self._backlog,
            )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


def _num(value: float | None) -> float:
    return NAN if value is None or math.isnan(value) else value
