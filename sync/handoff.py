"""A bounded hand-over from one producer thread to one consumer thread.

The binlog reader thread hands every source transaction to the apply loop. ``queue.Queue``
takes a lock and signals a condition on every put and every get; during a catch-up that
was a few percent of the process, spent with the GIL held. Here an item is a
``deque.append`` and a ``popleft`` (atomic under the GIL), and a thread is woken only when
the other one actually waits for it: the consumer when the queue was empty, the producer
when it was full.

Only one thread may put and only one may get. Each side announces that it waits before it
checks the queue once more, and the other side signals after it changed the queue, so a
wake-up cannot be lost. The signal is sent once per wait: a full queue drained item by item
while the producer has not run yet would otherwise set its event for every item.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """``put``/``get``/``get_nowait`` as ``queue.Queue``'s (``queue.Full``/``queue.Empty``
    on timeout), for exactly one producer and one consumer thread."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._filled = threading.Event()
        self._drained = threading.Event()
        self._consumer_waits = False
        self._producer_waits = False

    def qsize(self) -> int:
        return len(self._items)

    def put(self, item: T, timeout: float | None = None) -> None:
        items = self._items
        if len(items) >= self._maxsize:
            self._drained.clear()
            self._producer_waits = True
            try:
                if len(items) >= self._maxsize:
                    self._drained.wait(timeout)
            finally:
                self._producer_waits = False
            if len(items) >= self._maxsize:
                raise queue.Full
        items.append(item)
        if self._consumer_waits:
            # Once per wait: until the woken thread runs, every further item would set the
            # event again, and each set takes its lock.
            self._consumer_waits = False
            self._filled.set()

    def get(self, timeout: float | None = None) -> T:
        items = self._items
        if not items:
            self._filled.clear()
            self._consumer_waits = True
            try:
                if not items:
                    self._filled.wait(timeout)
            finally:
                self._consumer_waits = False
        return self.get_nowait()

    def get_nowait(self) -> T:
        try:
            item = self._items.popleft()
        except IndexError:
            raise queue.Empty from None
        if self._producer_waits:
            self._producer_waits = False  # once per wait, as in put
            self._drained.set()
        return item
