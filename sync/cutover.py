"""``aurora-sync cutover``: hand the service databases over, with a bounded write freeze.

1. Preconditions (all of ``--dry-run``): the daemon is streaming (state row, a checkpoint that
   moves, its /healthz when it answers), the lag is under ``max_lag`` (measured: the time the
   daemon takes to apply aurora's current position), the last validation is clean and recent
   (otherwise one runs now).
2. Freeze writes on aurora (:mod:`sync.freeze`).
3. Read aurora's final binlog position; wait until the daemon has applied it
   (``drain_timeout``).
4. Verify: per target table, the row count the mapping makes of aurora against the target's
   (aurora is frozen and drained, so these must agree exactly).
5. Record ``cut_over`` (cutover row and pipeline state); the daemon sees it and stops. Aurora
   stays frozen: a write accepted there now would never reach the services.

Any failure or timeout after the freeze unfreezes aurora, records the cutover as failed, leaves
the daemon streaming, and raises :class:`CutoverError` with the reason.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.cutover_checks import (
    CHECKPOINT_MAX_AGE,
    CountCheck,
    checkpoint_age,
    counts,
    daemon_health,
    lag_seconds,
)
from sync.db import connect
from sync.errors import AuroraSyncError, CutoverError
from sync.freeze import Freeze, make_freeze
from sync.mapping.resolve import load_spec
from sync.mapping.spec import MappingSpec
from sync.model import Position
from sync.settings import Settings
from sync.source.position import current_position
from sync.state import StateStore
from sync.validate import ValidateOptions, validate
from sync.validation.settle import wait_applied


@dataclass(frozen=True, slots=True)
class CutoverOptions:
    freeze: str = "read-only"
    max_lag: float = 5.0
    drain_timeout: float = 10.0
    freeze_timeout: float = 5.0
    """Seconds to wait for running transactions when freezing."""
    validation_max_age: float = 24 * 3600.0
    stop_timeout: float = 30.0
    """Seconds to wait for the daemon's monitor to go away after cut_over."""
    dry_run: bool = False


@dataclass
class CutoverReport:
    cutover_id: int | None
    checks: list[str] = field(default_factory=list)
    freeze_method: str = ""
    freeze_seconds: float | None = None
    final: Position | None = None
    drain_seconds: float | None = None
    counts: list[CountCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"freeze_method": self.freeze_method, "freeze_seconds": self.freeze_seconds,
                "drain_seconds": self.drain_seconds, "final": str(self.final),
                "rows": {c.table: c.target for c in self.counts}, "checks": self.checks}


Step = Callable[[str], None]


class Cutover:
    def __init__(self, settings: Settings, options: CutoverOptions,
                 on_step: Step | None = None) -> None:
        self.settings = settings
        self.options = options
        self.spec: MappingSpec = load_spec(settings)
        self.on_step = on_step or (lambda _: None)

    def store(self) -> StateStore:
        s = self.settings
        return StateStore(lambda: connect(s.target), s.state_db, s.pipeline)

    def run(self) -> CutoverReport:
        report = CutoverReport(None, freeze_method=self.options.freeze)
        self.on_step("preconditions")
        self.preconditions(report)
        if self.options.dry_run:
            return report
        freeze = make_freeze(self.options.freeze, lambda: connect(self.settings.source),
                             schema=self.spec.source_schema,
                             tables=self._aurora_tables(), timeout=self.options.freeze_timeout)
        with contextlib.closing(self.store()) as store:
            report.cutover_id = store.start_cutover(freeze.method)
            self.on_step("freeze")
            try:
                freeze.freeze()
            except CutoverError as exc:
                self._failed(store, report, exc.reason)
                raise
            frozen_at = time.monotonic()
            try:
                self._hand_over(store, report, frozen_at)
            except (AuroraSyncError, OSError) as exc:
                _unfreeze(freeze, report)
                reason = exc.reason if isinstance(exc, AuroraSyncError) else str(exc)
                self._failed(store, report, reason)
                raise _aborted(reason, report) from None
        report.notes.append(freeze.keep())
        self._await_daemon_stop(report)
        return report

    # --- step 1 ---------------------------------------------------------------------------
    def preconditions(self, report: CutoverReport) -> None:
        with contextlib.closing(self.store()) as store:
            state = store.read_state()
            if state is None or state.state != "streaming":
                shown = state.state if state else "no state recorded"
                raise CutoverError(f"the daemon is not streaming ({shown})",
                                   fix="start `aurora-sync run` and wait until `aurora-sync "
                                   "status` says streaming")
            with contextlib.closing(connect(self.settings.target)) as conn:
                age = checkpoint_age(conn, self.settings.state_db, self.settings.pipeline)
            if age is None or age > CHECKPOINT_MAX_AGE:
                raise CutoverError(f"the checkpoint has not moved for {age or 0:.0f} s",
                                   fix="check that `aurora-sync run` is running and healthy")
        health = daemon_health(self.settings.http_addr)
        if health.answered and not health.ok:
            raise CutoverError(f"the daemon is unhealthy: {health.reason}",
                               fix="wait until /healthz answers 200 (aurora-sync status)")
        report.checks.append("daemon streaming" + (f": {health.reason}" if health.answered
                                                   else f" (monitor: {health.reason})"))
        with contextlib.closing(connect(self.settings.source)) as conn:
            now = current_position(conn)
        lag = lag_seconds(self.store, now, self.options.max_lag)
        if lag is None:
            raise CutoverError(f"the daemon did not apply {now} within --max-lag "
                               f"{self.options.max_lag:g} s", fix="wait for the lag to fall "
                               "(aurora-sync status) or raise --max-lag")
        report.checks.append(f"lag {lag:.2f} s (under {self.options.max_lag:g} s)")
        report.checks.append(self._validation())

    def _validation(self) -> str:
        with contextlib.closing(self.store()) as store:
            last = store.latest_validation()
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(
            seconds=self.options.validation_max_age)
        if last is not None and last.clean and last.finished_at and last.finished_at > cutoff \
                and _covers_every_table(self.settings, last.summary):
            return f"validation run {last.id} clean ({last.finished_at:%Y-%m-%d %H:%M} UTC)"
        self.on_step("validate")
        fresh = validate(self.settings, ValidateOptions(settle_timeout=self.options.max_lag))
        if not fresh.clean:
            raise CutoverError(f"validation run {fresh.run_id} found differences",
                               fix="see `aurora-sync validate`; repair (bootstrap --tables) "
                               "and validate again")
        return f"validation run {fresh.run_id} clean (run now, {fresh.seconds:.1f} s)"

    # --- steps 3 to 5, frozen -------------------------------------------------------------
    def _hand_over(self, store: StateStore, report: CutoverReport, frozen_at: float) -> None:
        with contextlib.closing(connect(self.settings.source)) as source:
            report.final = current_position(source)
            self.on_step("drain")
            settled = wait_applied(self.store, report.final, self.options.drain_timeout)
            report.drain_seconds = settled.seconds
            if not settled.reached:
                raise CutoverError(
                    f"the daemon did not apply the final position {report.final} within "
                    f"--drain-timeout {self.options.drain_timeout:g} s (it reached "
                    f"{settled.checkpoint})", fix="check the daemon and the target "
                    "(aurora-sync status), then run the cutover again")
            self.on_step("verify")
            with contextlib.closing(connect(self.settings.target)) as target:
                report.counts = counts(source, target, self.spec, self.settings)
        wrong = [c for c in report.counts if c.expected != c.target]
        if wrong:
            detail = ", ".join(f"{c.table} {c.target:,} rows, expected {c.expected:,}"
                               for c in wrong)
            raise CutoverError(f"row counts differ after the drain: {detail}",
                               fix="run `aurora-sync validate` to find the rows")
        self.on_step("record")
        store.write_state("cut_over", f"at {report.final}")
        report.freeze_seconds = time.monotonic() - frozen_at
        store.finish_cutover(report.cutover_id or 0, "done", report.final,
                             summary=report.summary())

    def _failed(self, store: StateStore, report: CutoverReport, reason: str) -> None:
        with contextlib.suppress(AuroraSyncError, OSError, Exception):
            store.finish_cutover(report.cutover_id or 0, "failed", report.final, reason=reason,
                                 summary=report.summary())

    def _await_daemon_stop(self, report: CutoverReport) -> None:
        deadline = time.monotonic() + self.options.stop_timeout
        while daemon_health(self.settings.http_addr, 0.5).answered:
            if time.monotonic() > deadline:
                report.notes.append(f"the daemon still answers on {self.settings.http_addr}: "
                                    "stop it (it writes nothing more after cut_over)")
                return
            time.sleep(0.2)
        report.notes.append("the daemon has stopped")

    def _aurora_tables(self) -> list[str]:
        with contextlib.closing(connect(self.settings.source)) as conn, conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "%s AND TABLE_TYPE = 'BASE TABLE'", (self.spec.source_schema,))
            return sorted(str(r[0]) for r in cur.fetchall())


def _unfreeze(freeze: Freeze, report: CutoverReport) -> None:
    try:
        freeze.unfreeze()
    except Exception as exc:  # noqa: BLE001 - reported: the operator must unfreeze by hand
        report.notes.append(f"UNFREEZE FAILED ({type(exc).__name__}): see the rollback plan")


def _aborted(reason: str, report: CutoverReport) -> CutoverError:
    notes = "; ".join(report.notes)
    return CutoverError(f"cutover aborted: {reason}; aurora accepts writes again and the "
                        f"daemon keeps streaming{'; ' + notes if notes else ''}",
                        fix="fix the cause, then run `aurora-sync cutover` again")


def render_cutover(report: CutoverReport, *, dry_run: bool) -> str:
    lines = [f"✓ {check}" for check in report.checks]
    if dry_run:
        lines.append("dry run: the preconditions hold; nothing was frozen")
        return "\n".join(lines)
    moved = sum(c.target for c in report.counts)
    lines += [
        f"✓ cut over (cutover {report.cutover_id}, freeze {report.freeze_method})",
        f"  write freeze: {report.freeze_seconds or 0:.3f} s (aurora refused writes until "
        "the services were ready)",
        f"  final position: {report.final}  (drained in {report.drain_seconds or 0:.3f} s)",
        f"  rows in the service databases: {moved:,} "
        f"({', '.join(f'{c.table} {c.target:,}' for c in report.counts)})",
        *(f"  {note}" for note in report.notes),
        "next: point the application at the service databases; then run "
        "`aurora-sync validate` for a full comparison. Rollback: see the README.",
    ]
    return "\n".join(lines)


def cutover(settings: Settings, options: CutoverOptions,
            on_step: Step | None = None) -> CutoverReport:
    return Cutover(settings, options, on_step).run()


__all__ = ["Cutover", "CutoverOptions", "CutoverReport", "cutover", "render_cutover"]


def _covers_every_table(settings: Settings, summary: object) -> bool:
    """A clean `validate --tables X` says nothing of the other tables: only a run over
    every target table lets the cutover skip validating now."""
    compared = set(summary.get("tables", {})) if isinstance(summary, dict) else set()
    return {str(t.ref) for t in load_spec(settings).targets()} <= compared
