"""Which target errors are worth another try, and the backoff between tries.

TiDB asks clients to retry a transaction on write conflicts, lock and region errors
(PingCAP's list below); a lost connection is retried too, after reconnecting, and so is a
target that is read-only for a while (a failover or maintenance). Every other error halts:
retrying a duplicate key or a missing table only hides it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

# 1213 deadlock, 1205 lock wait timeout, 8005 write conflict, 8022 txn retry failed,
# 8027 schema changed (table), 8028 schema changed (info), 9001 PD unavailable,
# 9003 TiKV busy, 9004 resolve lock timeout, 9007 write conflict (pessimistic),
# 8245 memory quota (TiFlash MPP) per PingCAP's retry guidance.
TIDB_RETRYABLE_CODES: Final = frozenset({1213, 8005, 8022, 8027, 8028, 9001, 9003, 9004, 9007,
                                         8245, 1205})
# 2003 shows while the server is still down and the writer reconnects.
LOST_CONNECTION_CODES: Final = frozenset({2006, 2013, 2003, 2055})
# 1290: the server runs with --read-only / --super-read-only (MySQL, MariaDB: a demoted
# primary during a failover); 1836: TiDB's tidb_super_read_only / tidb_restricted_read_only.
READ_ONLY_CODES: Final = frozenset({1290, 1836})
RETRYABLE_CODES: Final = TIDB_RETRYABLE_CODES | LOST_CONNECTION_CODES | READ_ONLY_CODES

log = structlog.get_logger("aurora_sync.apply.retry")

T = TypeVar("T")


def is_retryable(code: int | None) -> bool:
    return code in RETRYABLE_CODES


def is_lost_connection(code: int | None) -> bool:
    return code in LOST_CONNECTION_CODES


class RetryAttempt(Exception):  # noqa: N818 - a signal between the writer and its policy
    """One try failed with a retryable error ``code``; raised to the policy, never out."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, giving up after ``max_seconds``."""

    max_seconds: float = 300.0
    first_wait: float = 0.05
    max_wait: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, attempt: Callable[[], T], *, context: dict[str, str] | None = None) -> T:
        """``attempt()`` until it returns, retrying on :class:`RetryAttempt` only.

        Raises the last :class:`RetryAttempt` once ``max_seconds`` are spent.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(RetryAttempt),
            stop=stop_after_delay(self.max_seconds),
            wait=wait_random_exponential(multiplier=self.first_wait, max=self.max_wait),
            sleep=self.sleep,
            before_sleep=_logger(context or {}),
            reraise=True,
        )
        return retrying(attempt)


def _logger(context: dict[str, str]) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code = exc.code if isinstance(exc, RetryAttempt) else None
        wait = float(state.next_action.sleep or 0.0) if state.next_action else 0.0
        # Only the code and the server's reason: never row values or connection secrets.
        log.warning(
            "apply.retry",
            attempt=state.attempt_number,
            code=code,
            reason=exc.reason if isinstance(exc, RetryAttempt) else None,
            wait_s=round(wait, 3),
            elapsed_s=round(state.seconds_since_start or 0.0, 3),
            **context,
        )

    return before_sleep


__all__ = [
    "LOST_CONNECTION_CODES",
    "READ_ONLY_CODES",
    "RETRYABLE_CODES",
    "TIDB_RETRYABLE_CODES",
    "RetryAttempt",
    "RetryPolicy",
    "is_lost_connection",
    "is_retryable",
]
