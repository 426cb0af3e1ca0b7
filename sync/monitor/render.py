"""The status document for people: rich tables, once or live (``status --watch``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

WATCH_SECONDS: Final = 2.0
_STYLE: Final[Mapping[str, str]] = {
    "streaming": "bold green", "catching_up": "bold yellow", "bootstrapping": "bold cyan",
    "halted": "bold red", "cut_over": "bold blue", "stopped": "bold",
}


def render(doc: Mapping[str, Any]) -> RenderableType:
    """The whole document as one renderable."""
    parts: list[RenderableType] = [_headline(doc), _overview(doc)]
    progress = doc.get("bootstrap_progress") or []
    if progress:
        parts.append(_progress(progress))
    tables = doc.get("tables") or {}
    if tables.get("source") or tables.get("targets"):
        parts.append(_tables(tables))
    for part, reason in (doc.get("problems") or {}).items():
        parts.append(Text(f"! {part}: {reason}", style="red"))
    return Group(*parts)


def _headline(doc: Mapping[str, Any]) -> Text:
    state = doc.get("state") or {}
    name = str(state.get("name") or "unknown")
    text = Text("aurora-sync ")
    text.append(f"[{doc.get('pipeline')}] ", style="dim")
    text.append(name.replace("_", " "), style=_STYLE.get(name, "bold"))
    if state.get("detail"):
        text.append(f"  {state['detail']}", style="dim")
    text.append(f"\nwhat to do: {doc.get('what_to_do')}")
    if state.get("last_error"):
        text.append(f"\nlast error: {state['last_error']}", style="red")
    return text


def _overview(doc: Mapping[str, Any]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    positions = doc.get("positions") or {}
    lag = doc.get("lag") or {}
    live = doc.get("live") or {}
    daemon = doc.get("daemon") or {}
    rows: list[tuple[str, str]] = [
        ("daemon", _daemon(daemon)),
        ("lag", f"{_seconds(lag.get('seconds'))} (lag source: {lag.get('source') or 'none'})"),
        ("last event", _seconds(lag.get("last_event_age_seconds"), suffix=" ago")),
        ("checkpoint", str(positions.get("checkpoint") or "none")),
        ("source now", str(positions.get("source_current") or "unknown")),
        ("gap", _bytes(positions.get("gap_bytes"))),
    ]
    boot = positions.get("bootstrap")
    if boot:
        rows.append(("bootstrap", f"#{boot['id']} {boot['state']} ({boot['method']}): "
                                  f"{boot['start']} → {boot['end'] or '…'}"))
    if live:
        rows.append(("rates", f"{live.get('rows_per_second', 0):.1f} rows/s, "
                              f"{live.get('transactions_per_second', 0):.1f} txn/s (last min)"))
    checksums = doc.get("checksums")
    if checksums:
        rows.append(("checksums", ", ".join(f"{k} {v}" for k, v in checksums.items())))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _daemon(daemon: Mapping[str, Any]) -> str:
    if not daemon.get("running"):
        return f"not answering at {daemon.get('url')}"
    health = "healthy" if daemon.get("healthy") else "UNHEALTHY"
    return f"running ({health}: {daemon.get('health_reason')})"


def _progress(progress: list[Mapping[str, Any]]) -> Table:
    table = Table(title="bootstrap progress", title_justify="left")
    for column in ("table", "copied", "estimated", "done"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for row in progress:
        table.add_row(str(row["table"]), f"{row['rows_copied']:,}",
                      "?" if row["rows_estimated"] is None else f"{row['rows_estimated']:,}",
                      "✓" if row["done"] else "")
    return table


def _tables(tables: Mapping[str, Any]) -> Table:
    kind = "exact" if tables.get("exact") else "estimated"
    table = Table(title=f"rows ({kind})", title_justify="left")
    table.add_column("side")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for side in ("source", "targets"):
        for name, count in (tables.get(side) or {}).items():
            table.add_row(side.rstrip("s"), name, "?" if count is None else f"{count:,}")
    return table


def _seconds(value: Any, suffix: str = "") -> str:
    return "unknown" if value is None else f"{float(value):.2f} s{suffix}"


def _bytes(value: Any) -> str:
    return "unknown" if value is None else f"{int(value):,} bytes"


def print_once(doc: Mapping[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render(doc))


def watch(
    gather: Callable[[], Mapping[str, Any]],
    *,
    console: Console | None = None,
    stop: threading.Event | None = None,
    interval: float = WATCH_SECONDS,
) -> None:
    """Redraw the status every ``interval`` seconds until Ctrl-C (or ``stop``)."""
    stop = stop or threading.Event()
    with Live(render(gather()), console=console, refresh_per_second=4,
              auto_refresh=False) as live:
        try:
            while not stop.wait(interval):
                live.update(render(gather()), refresh=True)
        except KeyboardInterrupt:
            return
