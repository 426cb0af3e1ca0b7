"""Connections to the source and the target, TLS verified as the guide's VERIFY_IDENTITY.

PyMySQL checks nothing unless told: without a CA the host name is not checked, and without
``ssl_verify_cert`` the certificate is not either. So aurora-sync builds one
:class:`ssl.SSLContext` per endpoint (the CA, ``check_hostname``, ``CERT_REQUIRED``) and hands
that same context to every connection, the replication reader's two included.

Every session runs in UTC (``time_zone = '+00:00'``) with utf8mb4, so TIMESTAMP values read
and written are the binlog's naive UTC values.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from sync.errors import ConfigError, ConnectError
from sync.settings import Endpoint

SESSION_INIT = "SET time_zone = '+00:00', NAMES utf8mb4"

# Client error codes that mean "could not reach or lost the server".
LOST_CONNECTION_CODES = frozenset({2003, 2006, 2013, 2055})
ACCESS_DENIED_CODES = frozenset({1044, 1045, 1698})


@functools.lru_cache(maxsize=8)
def _context(ca: Path, verify_identity: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = verify_identity
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """The verifying TLS context for ``endpoint``, or None when it has no CA configured."""
    if endpoint.ssl_ca is None:
        return None
    try:
        return _context(endpoint.ssl_ca, endpoint.verify_identity)
    except (OSError, ssl.SSLError) as exc:
        variable = f"{_prefix(endpoint)}_SSL_CA"
        raise ConfigError(
            f"cannot load the {endpoint.role}'s CA certificate {endpoint.ssl_ca} ({variable}): "
            f"{exc}",
            fix=f"point {variable} at the PEM file of the CA that signed the {endpoint.role}'s "
            "certificate (the guide's ca-cert.pem)",
        ) from None


def _prefix(endpoint: Endpoint) -> str:
    return "SOURCE_DB" if endpoint.role == "source" else "TIDB"


def connection_kwargs(endpoint: Endpoint, database: str | None = None) -> dict[str, Any]:
    """PyMySQL keyword arguments for ``endpoint`` (also used for the replication reader)."""
    kwargs: dict[str, Any] = {
        "host": endpoint.host,
        "port": endpoint.port,
        "user": endpoint.user,
        "password": endpoint.password.get_secret_value(),
        "charset": "utf8mb4",
        "connect_timeout": endpoint.connect_timeout,
        "init_command": SESSION_INIT,
    }
    if database is not None:
        kwargs["database"] = database
    ctx = ssl_context(endpoint)
    if ctx is not None:
        kwargs["ssl"] = ctx
    return kwargs


def connect(
    endpoint: Endpoint,
    database: str | None = None,
    *,
    autocommit: bool = True,
    streaming: bool = False,
    read_timeout: float | None = None,
) -> pymysql.Connection[Any]:
    """Open a connection, turning failures into a :class:`ConnectError` without secrets.

    ``streaming`` uses an unbuffered cursor, so a large result is read row by row.
    """
    kwargs = connection_kwargs(endpoint, database)
    kwargs["autocommit"] = autocommit
    if streaming:
        kwargs["cursorclass"] = pymysql.cursors.SSCursor
    if read_timeout is not None:
        kwargs["read_timeout"] = read_timeout
        kwargs["write_timeout"] = read_timeout
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        raise connect_error(endpoint, exc) from None
    except ssl.SSLError as exc:  # pragma: no cover - PyMySQL wraps most TLS errors
        raise connect_error(endpoint, exc) from None


def connect_error(endpoint: Endpoint, exc: BaseException) -> ConnectError:
    """A :class:`ConnectError` that explains ``exc`` for ``endpoint`` and names the fix."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    detail = _redact(str(exc.args[1]) if len(exc.args) > 1 else str(exc), endpoint)
    prefix = _prefix(endpoint)
    if code in ACCESS_DENIED_CODES:
        return ConnectError(
            f"{endpoint.role} refused the login of {endpoint.user!r} at "
            f"{endpoint.host}:{endpoint.port}: access denied",
            fix=f"check {prefix}_USER and {prefix}_PASSWORD (or {prefix}_PASSWORD_FILE)",
        )
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate" in detail.lower():
        return ConnectError(
            f"{endpoint.role} TLS verification failed at {endpoint.host}:{endpoint.port}: "
            f"{detail}",
            fix=f"set {prefix}_SSL_CA to the CA that signed the server's certificate and "
            f"connect by the host name the certificate names ({prefix}_HOST)",
        )
    return ConnectError(
        f"cannot connect to the {endpoint.role} at {endpoint.host}:{endpoint.port}: {detail}",
        fix=f"check that the server runs and that {prefix}_HOST/{prefix}_PORT are right",
    )


def _redact(text: str, endpoint: Endpoint) -> str:
    secret = endpoint.password.get_secret_value()
    return text.replace(secret, "**********") if secret else text


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL error, if it has one."""
    if exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None
