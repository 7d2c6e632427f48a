"""Work that must not slow the cheap requests down, on threads the kernel runs last.

On Linux a thread has its own nice value: the threads here run at :data:`NICE`, so while
they render a filtered feed the request threads (nice 0) get the CPU first. Measured with
`bench/filter_flood.py` (server on one core, 8 clients sending ``?q=``): a plain feed took
3.7 times its quiet median when the render ran on the request's own thread, 1.3 times here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
NICE = 19  # the lowest priority
MAX_THREADS = 64  # made as needed: the callers bound the work in flight


def _lower_this_thread() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the default priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


class LowPriority:
    """Runs a callable on a low-priority thread and waits for its result."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(MAX_THREADS, "feeds-low", initializer=_lower_this_thread)

    def run(self, work: Callable[[], T]) -> T:
        return self._pool.submit(work).result()
