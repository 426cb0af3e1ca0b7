"""The reader-to-apply hand-over: order, bounds, timeouts and wake-ups across real threads."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from sync.handoff import Handoff


def transfer(handoff: Handoff[int], count: int) -> list[int]:
    """``count`` numbers put on this thread, and what a consumer thread got, in order."""
    received: list[int] = []

    def consume() -> None:
        while len(received) < count:
            received.append(handoff.get(timeout=5))

    consumer = threading.Thread(target=consume)
    consumer.start()
    for number in range(count):
        handoff.put(number, timeout=5)
    consumer.join(timeout=30)
    return received


def test_items_come_out_in_order_across_threads_with_a_small_bound() -> None:
    assert transfer(Handoff(3), 50_000) == list(range(50_000))


def test_a_full_handoff_times_out_then_takes_the_item_once_drained() -> None:
    handoff: Handoff[str] = Handoff(1)
    handoff.put("first")
    started = time.monotonic()
    with pytest.raises(queue.Full):
        handoff.put("second", timeout=0.05)
    assert time.monotonic() - started >= 0.05
    threading.Timer(0.05, handoff.get_nowait).start()
    handoff.put("second", timeout=5)  # woken by the get, not by the timeout
    assert handoff.get_nowait() == "second"


def test_an_empty_handoff_times_out_and_a_put_wakes_a_waiting_get() -> None:
    handoff: Handoff[str] = Handoff(4)
    with pytest.raises(queue.Empty):
        handoff.get(timeout=0.05)
    with pytest.raises(queue.Empty):
        handoff.get_nowait()
    threading.Timer(0.05, handoff.put, args=("late",)).start()
    started = time.monotonic()
    assert handoff.get(timeout=5) == "late"
    assert time.monotonic() - started < 4


def test_a_handoff_needs_room_for_one_item() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Handoff(0)


class CountingEvent(threading.Event):
    """Counts its sets, and its clears: a side clears the event each time it announces that
    it is about to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0
        self.clears = 0

    def set(self) -> None:
        self.sets += 1
        super().set()

    def clear(self) -> None:
        self.clears += 1
        super().clear()


@pytest.mark.parametrize("bound", [3, 1000])
def test_a_waiting_side_is_woken_once_per_wait(bound: int) -> None:
    """Each set takes the event's lock: a side that waited is signalled once, not once per
    item the other side moves before the waiting thread runs again."""
    handoff: Handoff[int] = Handoff(bound)
    filled, drained = CountingEvent(), CountingEvent()
    handoff._filled, handoff._drained = filled, drained  # counted, still the events used
    assert transfer(handoff, 50_000) == list(range(50_000))
    assert filled.sets <= filled.clears and drained.sets <= drained.clears
    assert filled.sets + drained.sets > 0  # the sides did wait for each other
