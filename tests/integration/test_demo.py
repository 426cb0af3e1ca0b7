"""The demo runs every step to the end and leaves nothing running."""

from __future__ import annotations

import io
import socket

import pytest
from rich.console import Console

from sync.dev import demo

pytestmark = pytest.mark.integration


def test_demo_runs_to_the_end_and_stops_its_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOURCE_DB_HOST", "SOURCE_DB_NAME", "TIDB_HOST", "TIDB_SSL_CA",
                 "AURORA_SYNC_STATE_DB", "AURORA_SYNC_SERVER_ID"):
        monkeypatch.delenv(name, raising=False)
    ports: list[int] = []

    def remember_ports(d: demo.Demo) -> str:
        ports.extend(server.port for server in d.servers)
        return "ports noted"

    steps = [*demo.STEPS, ("note the ports", remember_ports)]
    out = io.StringIO()
    demo.run_demo(Console(file=out, width=120), steps=steps)

    text = out.getvalue()
    assert "none failed" in text
    assert "api_keys, sessions, users" in text
    assert "servers stopped" in text
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
