"""Filtered feeds are rendered on threads the kernel runs after the request threads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from feeds.lowpriority import NICE, LowPriority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")
def test_work_runs_at_the_lowest_priority_and_the_caller_keeps_its_own():
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = priority()
    assert LowPriority().run(priority) == NICE
    assert priority() == mine


def test_an_error_in_the_work_reaches_the_caller():
    def fail() -> None:
        raise ValueError("bad filter")

    with pytest.raises(ValueError):
        LowPriority().run(fail)
