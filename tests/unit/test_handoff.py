"""The reader-to-apply hand-over: order, bounds, timeouts and wake-ups across real threads."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from sync.handoff import Handoff


def test_items_come_out_in_order_across_threads_with_a_small_bound() -> None:
    handoff: Handoff[int] = Handoff(3)
    count = 50_000
    received: list[int] = []

    def consume() -> None:
        while len(received) < count:
            received.append(handoff.get(timeout=5))

    consumer = threading.Thread(target=consume)
    consumer.start()
    for number in range(count):
        handoff.put(number, timeout=5)
    consumer.join(timeout=30)
    assert received == list(range(count))


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
