"""One batch in flight: the target writes batch N on its own thread while the apply loop
builds batch N+1.

The apply loop spends much of its time waiting for the target to execute and commit a
batch (the socket read inside the writer, when Python does nothing but the reader thread).
:class:`InFlight` runs one job at a time on a dedicated thread with a one-slot handoff:

- :meth:`InFlight.submit` first waits for the job before it (and raises its error), so jobs
  run one after the other in the order submitted, and none starts after one failed;
- a job's error is raised once, in the caller's thread, by the next :meth:`submit`,
  :meth:`wait` or :meth:`check`;
- :meth:`close` waits for the job in flight and ends the thread; it raises nothing, so a
  caller closes it in a ``finally`` after it has waited for the job's outcome.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class InFlight:
    """A single worker thread that runs the jobs handed to it one at a time, in order."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._future: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the worker once the job before it has finished; raise that one's
        error instead, without running ``job``."""
        self.wait()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        # In the caller's context: what it bound for its log lines holds for the job's too.
        self._future = self._executor.submit(contextvars.copy_context().run, job)

    def busy(self) -> bool:
        """A job is still running."""
        return self._future is not None and not self._future.done()

    def wait(self) -> None:
        """Wait for the job in flight, if any; raise its error."""
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def check(self) -> None:
        """Raise the error of a job that has finished with one; never wait."""
        if self._future is not None and self._future.done():
            self.wait()

    def close(self) -> None:
        """Wait for the job in flight (its error is dropped: call :meth:`wait` first to see
        it) and end the worker thread."""
        self._future = None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


__all__ = ["InFlight"]
