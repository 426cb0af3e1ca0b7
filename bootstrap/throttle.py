"""Protecting the live source while the copy reads it, as gh-ost throttles.

Before each chunk a worker asks :meth:`Throttle.admit`, which waits while

- the copy is paused: the state schema's ``throttle.paused`` row, or SIGUSR1 (a toggle);
- the source is busy: ``Threads_running`` above ``max_threads_running`` (0: never);
- the rows-per-second cap would be exceeded: one budget shared by every worker (0: none).

The limits start from the settings; the ``throttle`` row, re-read every few seconds,
overrides each one it sets (NULL keeps the setting), so an operator can change them while the
copy runs. Every change of state (paused, busy, resumed) goes to ``on_change``: the progress
display and the logs show it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

POLL_SECONDS: Final = 0.25


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows_per_second: int = 0
    max_threads_running: int = 0
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    """The operator's throttle row: None keeps the setting."""

    max_rows_per_second: int | None = None
    max_threads_running: int | None = None
    paused: bool = False


class Throttle:
    """Thread-safe admission of chunks; clocks and probes are injected for tests."""

    def __init__(
        self,
        base: Limits,
        *,
        read_override: Callable[[], Override | None] = lambda: None,
        threads_running: Callable[[], int] = lambda: 0,
        on_change: Callable[[str | None], None] = lambda reason: None,
        refresh_seconds: float = 2.0,
        probe_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base
        self._read_override = read_override
        self._threads_running = threads_running
        self._on_change = on_change
        self._refresh_seconds = refresh_seconds
        self._probe_seconds = probe_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._limits = base
        self._signal_paused = False
        self._refreshed = -1e18
        self._probed = -1e18
        self._busy = 0
        self._next_slot = 0.0
        self._reason: str | None = None
        self.waited_seconds = 0.0

    def toggle_pause(self) -> None:
        """SIGUSR1: pause, or resume what a signal paused."""
        with self._lock:
            self._signal_paused = not self._signal_paused

    @property
    def limits(self) -> Limits:
        with self._lock:
            return self._limits

    def admit(self, rows: int, stop: threading.Event) -> float:
        """Wait until ``rows`` more may be read; the seconds waited (0 at once)."""
        started = self._clock()
        while not stop.is_set():
            reason = self._blocked()
            self._report(reason)
            if reason is None:
                break
            stop.wait(POLL_SECONDS)
        delay = self._reserve(rows)
        if delay > 0:
            stop.wait(delay)
        waited = self._clock() - started
        with self._lock:
            self.waited_seconds += waited
        return waited

    def _blocked(self) -> str | None:
        limits = self._refresh()
        if limits.paused:
            return "paused by the throttle row"
        with self._lock:
            if self._signal_paused:
                return "paused by SIGUSR1"
        if limits.max_threads_running > 0:
            busy = self._probe()
            if busy > limits.max_threads_running:
                return (f"source busy: Threads_running {busy} > "
                        f"{limits.max_threads_running}")
        return None

    def _refresh(self) -> Limits:
        # One reader at a time, and the refresh time is set only once the row is read: a
        # caller arriving meanwhile waits for the answer instead of taking the stale limits.
        with self._refresh_lock:
            now = self._clock()
            with self._lock:
                if now - self._refreshed < self._refresh_seconds:
                    return self._limits
            override = self._read_override()
            limits = self._base
            if override is not None:
                limits = replace(
                    limits,
                    max_rows_per_second=_pick(override.max_rows_per_second,
                                              limits.max_rows_per_second),
                    max_threads_running=_pick(override.max_threads_running,
                                              limits.max_threads_running),
                    paused=override.paused or limits.paused,
                )
            with self._lock:
                self._limits = limits
                self._refreshed = now
            return limits

    def _probe(self) -> int:
        now = self._clock()
        with self._lock:
            if now - self._probed < self._probe_seconds:
                return self._busy
            self._probed = now
        busy = self._threads_running()
        with self._lock:
            self._busy = busy
        return busy

    def _reserve(self, rows: int) -> float:
        """Book ``rows`` on the shared rows-per-second budget; how long to wait for it."""
        rate = self.limits.max_rows_per_second
        now = self._clock()
        with self._lock:
            if rate <= 0:
                self._next_slot = now
                return 0.0
            start = max(now, self._next_slot)
            self._next_slot = start + rows / rate
            return start - now

    def _report(self, reason: str | None) -> None:
        with self._lock:
            if reason == self._reason:
                return
            self._reason = reason
        self._on_change(reason)


def _pick(value: int | None, default: int) -> int:
    return default if value is None else int(value)


__all__ = ["Limits", "Override", "Throttle"]
