"""The daemon's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/status``.

The standard library's :class:`~http.server.ThreadingHTTPServer` in a daemon thread: three
read-only routes need no framework, and a slow scraper cannot hold up another. Bound to
``AURORA_SYNC_HTTP_ADDR`` (``127.0.0.1:9108`` by default; port 0 picks a free port, which
:attr:`MonitorServer.port` then tells).

- ``/metrics``: the Prometheus text format of the daemon's :class:`Metrics`;
- ``/healthz``: 200 while streaming with the lag under the limit, else 503; the body is the
  one-line reason either way;
- ``/status``: the JSON document ``aurora-sync status --json`` prints;
- ``/status/live``: the same document with only the daemon's live figures (no database
  round trip: what ``aurora-sync status`` fetches from a running daemon).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from sync.errors import ConfigError
from sync.monitor.metrics import Metrics
from sync.monitor.status import live_document

log = structlog.get_logger("aurora_sync.monitor.http")

StatusProvider = Callable[[], Mapping[str, Any]]


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a (host, port) pair."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ConfigError(
            f"AURORA_SYNC_HTTP_ADDR {addr!r} is not host:port",
            fix="set AURORA_SYNC_HTTP_ADDR like 127.0.0.1:9108 (or [::1]:9108); "
            "0.0.0.0 only behind a firewall: the status names tables and positions",
        )
    return host.strip("[]"), int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    metrics: Metrics
    status: StatusProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        route = self.path.partition("?")[0].rstrip("/") or "/"
        handler = _ROUTES.get(route)
        if handler is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8",
                       b"not found: try /metrics, /healthz or /status\n")
            return
        try:
            status, content_type, body = handler(self.server)
        except Exception as exc:  # noqa: BLE001 - one failed request must not end the server
            log.warning("http request failed", path=route, error=type(exc).__name__,
                        reason=str(exc))
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                       f"internal error: {type(exc).__name__}\n".encode())
            return
        self._send(status, content_type, body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Scrapes every few seconds would flood the log at info.
        log.debug("http request", request=self.requestline, client=self.client_address[0])


def _metrics(server: _Server) -> tuple[HTTPStatus, str, bytes]:
    return HTTPStatus.OK, CONTENT_TYPE_LATEST, server.metrics.exposition()


def _healthz(server: _Server) -> tuple[HTTPStatus, str, bytes]:
    health = server.metrics.health()
    status = HTTPStatus.OK if health.ok else HTTPStatus.SERVICE_UNAVAILABLE
    return status, "text/plain; charset=utf-8", f"{health.reason}\n".encode()


def _status(server: _Server) -> tuple[HTTPStatus, str, bytes]:
    body = json.dumps(server.status(), default=str, indent=2).encode()
    return HTTPStatus.OK, "application/json", body


def _status_live(server: _Server) -> tuple[HTTPStatus, str, bytes]:
    # No database round trip: what `aurora-sync status` asks the daemon for.
    body = json.dumps(_live_only(server.metrics), default=str, indent=2).encode()
    return HTTPStatus.OK, "application/json", body


_ROUTES: Mapping[str, Callable[[_Server], tuple[HTTPStatus, str, bytes]]] = {
    "/metrics": _metrics,
    "/healthz": _healthz,
    "/status": _status,
    "/status/live": _status_live,
}


class MonitorServer:
    """Serves the routes in a daemon thread; :meth:`start` and :meth:`stop` are idempotent.

    ``status`` builds the ``/status`` document; without it the document holds only the live
    figures (:func:`sync.monitor.status.live_document`).
    """

    def __init__(self, addr: str, metrics: Metrics,
                 status: StatusProvider | None = None) -> None:
        self._addr = parse_addr(addr)
        self._metrics = metrics
        self._status = status or (lambda: _live_only(metrics))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the monitor server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._addr[0]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def start(self) -> MonitorServer:
        if self._server is not None:
            return self
        try:
            server = _Server(self._addr, _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self._addr[0]}:{self._addr[1]}: {exc.strerror}",
                fix="set AURORA_SYNC_HTTP_ADDR to a free host:port (is another daemon "
                "running?)",
            ) from None
        server.metrics = self._metrics
        server.status = self._status
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.2}, name="aurora-sync-http", daemon=True)
        self._thread.start()
        log.info("monitor listening", url=self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MonitorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _live_only(metrics: Metrics) -> Mapping[str, Any]:
    return live_document(metrics.live())
