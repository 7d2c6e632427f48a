"""Giving memory back to the system after a build.

A build makes and frees hundreds of megabytes of rendered bodies; glibc's allocator keeps
most of what is freed for later, so a server that had just built 100,000 articles held
1.0 GB where 0.56 GB was in use. :func:`release` hands the free part back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


def release() -> None:
    """Return the allocator's free memory to the system, where the C library can (glibc);
    elsewhere nothing."""
    if trim := _malloc_trim():
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): no malloc_trim
        return None
