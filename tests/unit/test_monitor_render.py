"""The human status view: once, and live until stopped."""

from __future__ import annotations

import io
import threading
from typing import Any

from rich.console import Console

from sync.monitor.render import print_once, watch

DOC: dict[str, Any] = {
    "pipeline": "default",
    "state": {"name": "halted", "detail": "ApplyError", "last_error": "error 1406", "fix": "f"},
    "what_to_do": "widen gateway_db.users.email",
    "positions": {"checkpoint": "binlog.000001:500", "source_current": "binlog.000002:300",
                  "gap_bytes": 12345},
    "lag": {"seconds": 1.5, "source": "heartbeat table", "last_event_age_seconds": 0.2},
    "tables": {"source": {"aurora.users": 4}, "targets": {"gateway_db.users": None}},
    "bootstrap_progress": [], "checksums": {"pending": 2, "verified": 1},
    "daemon": {"running": True, "healthy": False, "health_reason": "halted: ApplyError"},
    "live": {"rows_per_second": 12.5, "transactions_per_second": 3.0},
    "problems": {"source": "cannot connect"},
}


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False), out


def test_once_shows_state_advice_positions_and_problems() -> None:
    con, out = console()
    print_once(DOC, con)
    text = out.getvalue()
    for part in ("halted", "what to do: widen gateway_db.users.email", "12,345 bytes",
                 "1.50 s (lag source: heartbeat table)", "running (UNHEALTHY: halted",
                 "12.5 rows/s", "pending 2, verified 1", "! source: cannot connect"):
        assert part in text, part


def test_watch_redraws_until_stopped() -> None:
    con, _ = console()
    stop = threading.Event()
    calls: list[int] = []

    def gather() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return DOC

    watch(gather, console=con, stop=stop, interval=0.01)
    assert len(calls) == 3
