"""Connection options shared by the development data commands.

The password is read from an environment variable named on the command line, never from the
command line itself, so it stays out of shell history, process lists and logs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
from pydantic import SecretStr

from sync.db import connect
from sync.settings import Endpoint


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--host", default=env("SOURCE_DB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SOURCE_DB_PORT", "3306")))
    parser.add_argument("--user", default=env("SOURCE_DB_USER", "root"))
    parser.add_argument(
        "--password-env", default="SOURCE_DB_PASSWORD", metavar="NAME",
        help="environment variable holding the password (default SOURCE_DB_PASSWORD)",
    )
    parser.add_argument("--ssl-ca", type=Path, default=None, help="CA file; enables TLS")
    parser.add_argument("--database", default=env("SOURCE_DB_NAME", "aurora"))


def endpoint_from_args(args: argparse.Namespace) -> Endpoint:
    return Endpoint(
        role="source",
        host=args.host,
        port=args.port,
        user=args.user,
        password=SecretStr(os.environ.get(args.password_env, "")),
        ssl_ca=args.ssl_ca,
        verify_identity=True,
        connect_timeout=10.0,
    )


def connector_from_args(args: argparse.Namespace) -> Callable[[], pymysql.Connection[Any]]:
    """A function opening a new autocommit connection (no default database) each call."""
    endpoint = endpoint_from_args(args)
    return lambda: connect(endpoint)
