"""The daemon's light periodic validation: one target table per run, in turn.

Between full ``aurora-sync validate`` runs this keeps checking, a table at a time, that the
service databases equal the mapping of aurora, so drift (a write behind aurora-sync's back,
a skipped change) shows up in the logs and the error counter within a few cycles, not on
cutover day. Each run is recorded in ``validation_run`` like any validation; the cutover
trusts only runs that covered every table.
"""

from __future__ import annotations

import structlog

from sync.errors import AuroraSyncError
from sync.mapping.resolve import load_spec
from sync.monitor.metrics import Metrics
from sync.settings import Settings
from sync.validate import ValidateOptions, validate

log = structlog.get_logger("aurora_sync.monitor.rolling")

# A difference seen while changes are in flight is re-checked after the stream settles;
# this bounds the wait so one busy table cannot hold the job for long.
SETTLE_SECONDS = 30.0


class RollingValidation:
    """Scheduler job: validate the next target table each time it runs."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tables = [str(t.ref) for t in load_spec(settings).targets()]
        self._next = 0

    def run(self) -> bool | None:
        """Validate one table; True when clean, False on differences, None when it failed."""
        table = self._tables[self._next % len(self._tables)]
        self._next += 1
        try:
            report = validate(self._settings, ValidateOptions(tables=(table,),
                                                              settle_timeout=SETTLE_SECONDS))
        except AuroraSyncError as exc:
            log.warning("periodic validation failed", table=table, reason=exc.reason)
            return None
        if report.clean:
            log.info("periodic validation clean", table=table, run_id=report.run_id,
                     seconds=round(report.seconds, 1))
            return True
        self._metrics.error("ValidationDifference")
        log.error("periodic validation found differences", table=table, run_id=report.run_id,
                  fix="run `aurora-sync validate` for the differing keys; repair with "
                  "`aurora-sync bootstrap --tables ...`")
        return False
