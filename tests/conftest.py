"""Session-wide throwaway MariaDB servers: one as the aurora source, one as the target.

No test touches the machine's own MariaDB on port 3306.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sync.dev.localdb import LocalServer, start_server


@pytest.fixture(scope="session")
def source_server() -> Iterator[LocalServer]:
    server = start_server("source", server_id=101)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def target_server() -> Iterator[LocalServer]:
    server = start_server("target", server_id=201)
    yield server
    server.stop()
