"""Fewer cyclic garbage collections while the stream runs.

The stream allocates millions of short-lived containers (row images, operations, statement
parts) and keeps tens of thousands alive at once in its queue and batches, so with the
interpreter's default thresholds (a collection every 700 net allocations) those survivors are
promoted and full collections walk them again and again, with the GIL held. In
``bench/bench_stream.py`` (200,000 changes) that was 2.2 to 2.9 s of about 19 s of CPU; with a
first-generation threshold of :data:`GEN0_THRESHOLD` it is about 0.1 s. Nothing is left
uncollected: reference cycles still count towards the threshold, only later.

The thresholds are process-wide: the first user saves them, the last one puts them back.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Final

GEN0_THRESHOLD: Final = 50_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """A generation-0 threshold of :data:`GEN0_THRESHOLD` inside, the thresholds before after."""
    global _users, _saved  # noqa: PLW0603 - the thresholds are process-wide too
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gen0, gen1, gen2 = _saved
            if gen0:  # 0: collections are off, and stay off
                gc.set_threshold(max(gen0, GEN0_THRESHOLD), gen1, gen2)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)


__all__ = ["GEN0_THRESHOLD", "fewer_collections"]
