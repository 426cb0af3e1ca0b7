"""Is the daemon healthy? One pure function over the state and the lag, for ``/healthz``.

Healthy means: streaming, the stream showed life recently, and the lag is under the limit.
Every other case says why in one line an operator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.monitor.lag import LagReading, LagSource


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    max_lag: float
    """Seconds of lag above which the daemon is unhealthy (AURORA_SYNC_HEALTH_MAX_LAG)."""
    stale_after: float
    """Seconds without a heartbeat row (or, without the table, without any sign of life
    from the stream) after which the daemon is unhealthy."""


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reason: str


def evaluate(
    state: str | None,
    detail: str,
    lag: LagReading,
    policy: HealthPolicy,
    streaming_for: float | None,
) -> Health:
    """The verdict; ``streaming_for`` is how long the state has been ``streaming``."""
    if state is None:
        return Health(False, "not streaming yet: the daemon has not reported a state")
    if state == "halted":
        return Health(False, f"halted: {detail or 'no reason recorded'}")
    if state != "streaming":
        suffix = f" ({detail})" if detail else ""
        return Health(False, f"not streaming yet: {state}{suffix}")
    stale = _stale(lag, policy, streaming_for or 0.0)
    if stale is not None:
        return Health(False, stale)
    if lag.seconds is not None and lag.seconds > policy.max_lag:
        return Health(False, f"lag too high: {lag.seconds:.1f} s > {policy.max_lag:g} s "
                             f"(lag source: {lag.source})")
    shown = "unknown" if lag.seconds is None else f"{lag.seconds:.2f} s"
    return Health(True, f"streaming, lag {shown} (lag source: {lag.source})")


def _stale(lag: LagReading, policy: HealthPolicy, streaming_for: float) -> str | None:
    if lag.source is LagSource.HEARTBEAT:
        age = lag.heartbeat_age
        what = "no heartbeat row applied"
    else:
        age = lag.alive_age
        what = "no transaction or replication heartbeat from the source"
    # Just after the switch to streaming nothing may have arrived yet: wait one window.
    if age is None:
        if streaming_for <= policy.stale_after:
            return None
        return f"{what} since streaming started {streaming_for:.0f} s ago"
    if age > policy.stale_after:
        return f"{what} for {age:.0f} s (limit {policy.stale_after:g} s)"
    return None
