"""An in-memory :class:`~sync.apply.writer.TargetWriter` for fast pipeline tests.

It keeps the writer's contract: the operations of one :meth:`MemoryWriter.apply` land in a
:class:`MemoryTarget` together with the checkpoint, or none of them do. Told to fail the
Nth apply with an error code, it behaves as the SQL writer does with that code: a retryable
one costs a retry and the batch still lands once; any other raises :class:`ApplyError` and
changes nothing.

The model knows primary keys only, no unique secondary keys: a clash the SQL writer refuses
(or, with ``safe_mode``, resolves by deleting the row holding the value) cannot happen here,
so ``safe_mode`` is accepted for the contract and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sync.apply.retry import is_retryable
from sync.apply.sql import Statement
from sync.apply.writer import ApplyResult
from sync.errors import ApplyError, RetryableApplyError
from sync.model import Checkpoint, Delete, DeleteWhere, Position, TargetOp, UpdateWhere, Upsert
from sync.state import StateWrite
from sync.testing.memtarget import MemoryTarget

_KINDS = {Upsert: "upsert", Delete: "delete", UpdateWhere: "update_where",
          DeleteWhere: "delete_where"}


@dataclass(frozen=True, slots=True)
class _Failure:
    code: int
    times: int


class MemoryWriter:
    """Applies to a :class:`MemoryTarget` and holds the checkpoint."""

    def __init__(self, target: MemoryTarget | None = None) -> None:
        self.target = target if target is not None else MemoryTarget()
        self.checkpoint: Checkpoint | None = None
        self.state_writes: list[StateWrite] = []
        self.applies = 0
        self._failures: dict[int, _Failure] = {}

    def fail_apply(self, nth: int, code: int, *, times: int = 1) -> None:
        """Make the ``nth`` apply (1-based, counted from now on) meet error ``code``.

        A retryable code met ``times`` in a row is retried (as the SQL writer would within
        its time budget); pass ``times=0`` to mean "until the retry budget runs out"."""
        self._failures[self.applies + nth] = _Failure(code, times)

    def apply(
        self,
        ops: Sequence[TargetOp],
        checkpoint: Checkpoint | None,
        *,
        position: Position | None = None,
        state: Sequence[StateWrite] = (),
        safe_mode: bool = False,
        statements: Sequence[Statement] | None = None,  # SQL: nothing to run here
    ) -> ApplyResult:
        started = time.monotonic()
        self.applies += 1
        where = position or (checkpoint.position if checkpoint else None)
        retries = self._injected(self._failures.pop(self.applies, None), where)
        self.target.apply(ops)
        self.state_writes.extend(state)
        if checkpoint is not None:
            self.checkpoint = checkpoint
        counts: dict[tuple[str, str], int] = {}
        for op in ops:
            key = (str(op.target), _KINDS[type(op)])
            counts[key] = counts.get(key, 0) + 1
        return ApplyResult(rows=counts, statements=len(ops),
                           seconds=time.monotonic() - started, retries=retries)

    def read_checkpoint(self) -> Checkpoint | None:
        return self.checkpoint

    def close(self) -> None:
        """Nothing to release; here for the contract."""

    @staticmethod
    def _injected(failure: _Failure | None, where: Position | None) -> int:
        if failure is None:
            return 0
        if not is_retryable(failure.code):
            raise ApplyError(f"the target refused the batch with error {failure.code} "
                             "(injected)", fix="injected by MemoryWriter.fail_apply",
                             position=where)
        if failure.times == 0:
            raise RetryableApplyError(f"the target kept refusing the batch with retryable "
                                      f"error {failure.code} (injected)",
                                      fix="injected by MemoryWriter.fail_apply",
                                      position=where)
        return failure.times


__all__ = ["MemoryWriter"]
