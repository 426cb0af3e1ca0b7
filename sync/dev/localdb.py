"""Throwaway MariaDB servers for development, tests, the demo and benchmarks.

Each :class:`LocalServer` runs its own ``mariadbd`` on a temporary datadir and a free loopback
port, with a ROW binlog, full row images and full row metadata, and a distinct ``server_id``.
It never touches the machine's own MariaDB. Optionally it serves TLS with a CA and a server
certificate made with ``openssl`` at start (host name ``localhost`` and ``127.0.0.1``).

A freshly initialised datadir is kept as a template under the system temp folder, so starting
a server costs a copy and a boot (about a second), not a ``mariadb-install-db`` run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

ADMIN_USER = "aurora_admin"
ADMIN_PASSWORD = "admin-pw-local-only"  # noqa: S105 - a throwaway server on loopback

# Settings a source must have for aurora-sync; tests override single ones to break them.
BINLOG_OPTIONS: Mapping[str, str] = {
    "log_bin": "binlog",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}
# Throwaway servers need not survive a power cut; these make them several times faster.
FAST_OPTIONS: Mapping[str, str] = {
    "innodb_flush_log_at_trx_commit": "2",
    "sync_binlog": "0",
    "innodb_buffer_pool_size": "256M",
    "innodb_log_file_size": "256M",
    "innodb_doublewrite": "0",
    "max_connections": "300",
    "max_allowed_packet": "256M",
    "skip_name_resolve": "1",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
}


class LocalDbError(RuntimeError):
    """A throwaway server could not be made or started."""


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    directory: Path


@dataclass
class LocalServer:
    """A running throwaway ``mariadbd``; :meth:`stop` ends it and removes its datadir."""

    name: str
    port: int
    server_id: int
    base: Path
    process: subprocess.Popen[bytes] | None
    tls: TlsFiles | None = None
    options: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    user: str = ADMIN_USER
    password: str = ADMIN_PASSWORD

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_path(self) -> Path:
        return self.base / "mariadb.sock"

    @property
    def error_log(self) -> Path:
        return self.base / "error.log"

    def connect(self, database: str | None = None, **kwargs: Any) -> pymysql.Connection[Any]:
        """An admin connection over TCP (autocommit, UTC, utf8mb4)."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": database,
            "charset": "utf8mb4",
            "autocommit": True,
            "init_command": "SET time_zone = '+00:00'",
            "connect_timeout": 10,
        }
        params.update(kwargs)
        return pymysql.connect(**params)

    def execute(self, sql: str, args: Sequence[object] | None = None) -> list[tuple[object, ...]]:
        """Run one statement as admin and return its rows."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def run_script(self, sql: str, database: str | None = None, *,
                   timeout: float | None = None) -> None:
        """Run a multi-statement SQL script with the ``mariadb`` client."""
        cmd = [
            _tool("mariadb", "mysql"),
            "--no-defaults",
            f"--socket={self.socket_path}",
            "--user=root",
        ]
        if database:
            cmd.append(f"--database={database}")
        subprocess.run(cmd, input=sql.encode(), check=True, capture_output=True,  # noqa: S603
                       timeout=timeout)

    def start(self) -> None:
        """Start (or restart after :meth:`kill` / :meth:`shutdown`) on the same port."""
        if self.process is not None and self.process.poll() is None:
            return
        self.process = _launch(self)
        _wait_ready(self)

    def shutdown(self) -> None:
        """Stop the server cleanly, keeping its datadir (for restart tests)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the server, keeping its datadir (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the server and delete everything it had."""
        self.shutdown()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_mariadb_installed() -> None:
    """Install Debian's ``mariadb-server`` when ``mariadbd`` is missing (root only)."""
    if _which("mariadbd", "mysqld"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "mariadb-server", "mariadb-client"],  # noqa: S607
        check=True,
        env=env,
    )
    # Debian starts the packaged server; our throwaway servers do not need it.
    if not _which("mariadbd", "mysqld"):
        raise LocalDbError("mariadb-server was installed but mariadbd is still not on PATH")


def start_server(
    name: str,
    *,
    server_id: int,
    tls: bool = False,
    tls_hostnames: Sequence[str] = ("localhost", "127.0.0.1"),
    options: Mapping[str, str | None] | None = None,
    base_dir: Path | None = None,
    port: int | None = None,
) -> LocalServer:
    """Start a throwaway server. ``options`` override or (with None) remove settings."""
    ensure_mariadb_installed()
    base = Path(tempfile.mkdtemp(prefix=f"aurora-sync-{name}-", dir=base_dir))
    shutil.copytree(_template_datadir(), base / "data")
    merged: dict[str, str] = {**BINLOG_OPTIONS, **FAST_OPTIONS}
    for key, value in (options or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    server = LocalServer(
        name=name,
        port=port or free_port(),
        server_id=server_id,
        base=base,
        process=None,
        options=merged,
    )
    if tls:
        server.tls = make_tls_files(base / "tls", hostnames=tls_hostnames)
    try:
        server.start()
        _create_admin(server)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running_server(name: str, *, server_id: int, **kwargs: object) -> Iterator[LocalServer]:
    server = start_server(name, server_id=server_id, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tls_files(directory: Path, *, hostnames: Sequence[str]) -> TlsFiles:
    """A fresh CA and a server certificate for ``hostnames`` (DNS names and IPs)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca-key.pem", directory / "ca-cert.pem"
    key, csr = directory / "server-key.pem", directory / "server.csr"
    cert = directory / "server-cert.pem"
    openssl = _which("openssl") or "openssl"
    _run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", "/CN=aurora-sync test CA", "-keyout", str(ca_key), "-out", str(ca_cert)])
    _run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={hostnames[0]}",
          "-keyout", str(key), "-out", str(csr)])
    sans = ",".join(
        f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hostnames
    )
    ext = directory / "san.ext"
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n")
    _run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)])
    return TlsFiles(ca_cert=ca_cert, server_cert=cert, server_key=key, directory=directory)


def _template_datadir() -> Path:
    version = subprocess.run(  # noqa: S603
        [_which("mariadbd", "mysqld") or "mariadbd", "--version"],
        check=True, capture_output=True, text=True,
    ).stdout.split()[2]
    template = Path(tempfile.gettempdir()) / f"aurora-sync-template-{version}"
    if (template / "mysql").is_dir():
        return template
    staging = Path(tempfile.mkdtemp(prefix="aurora-sync-template-"))
    _run([
        _tool("mariadb-install-db", "mysql_install_db"),
        "--no-defaults", f"--datadir={staging}", "--user=root",
        "--auth-root-authentication-method=socket", "--skip-test-db",
    ])
    with contextlib.suppress(OSError):
        staging.rename(template)
    if not (template / "mysql").is_dir():
        raise LocalDbError(f"could not prepare the template datadir {template}")
    return template


def _launch(server: LocalServer) -> subprocess.Popen[bytes]:
    # A temp folder of its own: the shared /tmp is cleaned by other programs, and a
    # server whose temporary table file vanishes fails the statement using it.
    tmpdir = server.base / "tmp"
    tmpdir.mkdir(exist_ok=True)
    args = [
        _which("mariadbd", "mysqld") or "mariadbd",
        "--no-defaults",
        f"--datadir={server.datadir}",
        f"--socket={server.socket_path}",
        f"--port={server.port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={server.base / 'mariadbd.pid'}",
        f"--log-error={server.error_log}",
        f"--server-id={server.server_id}",
        f"--tmpdir={tmpdir}",
        "--user=root",
    ]
    for key, value in server.options.items():
        # An absolute base name keeps the binlog inside the datadir, whatever the cwd.
        setting = str(server.datadir / value) if key == "log_bin" else value
        args.append(f"--{key.replace('_', '-')}={setting}")
    if server.tls is not None:
        args += [
            f"--ssl-ca={server.tls.ca_cert}",
            f"--ssl-cert={server.tls.server_cert}",
            f"--ssl-key={server.tls.server_key}",
        ]
    return subprocess.Popen(  # noqa: S603
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _wait_ready(server: LocalServer, timeout: float = 60.0) -> None:
    """Return once the server answers a query on its port and through its socket.

    The port and the socket file come before the server answers (and a killed server leaves
    its socket file behind), so only an answer counts.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise LocalDbError(
                f"mariadbd '{server.name}' exited with {server.process.returncode}; "
                f"see {server.error_log}:\n{_tail(server.error_log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                pass
            _client(server, "SELECT 1", timeout=max(1.0, deadline - time.monotonic()))
        except (OSError, LocalDbError) as exc:
            last = str(exc)
        else:
            return
        time.sleep(0.1)
    raise LocalDbError(f"mariadbd '{server.name}' did not answer in {timeout:.0f}s ({last}); "
                       f"see {server.error_log}:\n{_tail(server.error_log)}")


def _create_admin(server: LocalServer) -> None:
    _client(
        server,
        f"CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;\n",
    )


def _client(server: LocalServer, sql: str, timeout: float = 60.0) -> None:
    """Run ``sql`` as root through the socket; a failure carries the client's message."""
    try:
        server.run_script(sql, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        raise LocalDbError(f"the mariadb client failed ({exc.returncode}): {message}; "
                           f"see {server.error_log}:\n{_tail(server.error_log)}") from None
    except subprocess.TimeoutExpired:
        raise LocalDbError(f"the mariadb client got no answer in {timeout:.0f}s; "
                           f"see {server.error_log}:\n{_tail(server.error_log)}") from None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no error log)"


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found:
            return found
    return None


def _tool(*names: str) -> str:
    found = _which(*names)
    if found is None:
        raise LocalDbError(f"none of {names} is installed; install mariadb-server")
    return found


def _run(cmd: Sequence[str]) -> None:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LocalDbError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()}")
