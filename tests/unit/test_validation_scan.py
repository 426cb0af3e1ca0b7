"""The scan's process-wide GIL switch interval: overlapping scans put it back once, at the end."""

from __future__ import annotations

import sys

import pytest

from sync.validation.scan import SWITCH_INTERVAL, short_switch_interval


def test_overlapping_scans_restore_the_interval_once_the_last_ends() -> None:
    before = sys.getswitchinterval()
    first, second = short_switch_interval(), short_switch_interval()
    first.__enter__()
    second.__enter__()
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    # The first scan ends while the second still runs (the order that lost the setting).
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before


def test_the_interval_comes_back_after_a_failed_scan() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), short_switch_interval():
        raise RuntimeError("the target went away")
    assert sys.getswitchinterval() == before
