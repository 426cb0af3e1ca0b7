"""Waiting for the stream: until the target's checkpoint reaches a source position.

Validation re-reads a differing chunk only once the daemon has applied the source position
seen at the first read, and the cutover drains to the final position the same way. A target
that does not answer counts as "not yet": the wait is bounded by its timeout, never by the
outage.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import pymysql

from sync.errors import AuroraSyncError
from sync.model import Position
from sync.state import StateStore

POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Settled:
    reached: bool
    seconds: float
    checkpoint: Position | None


def wait_applied(store_factory: Callable[[], StateStore], position: Position,
                 timeout: float, *, poll: float = POLL_SECONDS) -> Settled:
    """Poll the committed checkpoint until it is at or past ``position`` or ``timeout``."""
    started = time.monotonic()
    last: Position | None = None
    store: StateStore | None = None
    try:
        while True:
            try:
                store = store or store_factory()
                checkpoint = store.read_checkpoint()
                last = checkpoint.position if checkpoint else last
            except (AuroraSyncError, pymysql.MySQLError, OSError):
                _close(store)
                store = None
            elapsed = time.monotonic() - started
            if last is not None and last >= position:
                return Settled(True, elapsed, last)
            if elapsed >= timeout:
                return Settled(False, elapsed, last)
            time.sleep(min(poll, max(timeout - elapsed, 0.0)))
    finally:
        _close(store)


def _close(store: StateStore | None) -> None:
    if store is not None:
        with contextlib.suppress(pymysql.MySQLError, OSError):
            store.close()


__all__ = ["Settled", "wait_applied"]
