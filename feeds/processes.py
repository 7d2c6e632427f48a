"""Worker processes for the work a build spreads over the cores: parsing article files
(:mod:`feeds.parsecache`) and rendering documents (:mod:`feeds.parallel`)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.reduction import ForkingPickler
from types import MappingProxyType

# Modules a worker started by the forkserver has imported already: those it runs.
_WORKS = ["feeds.parsecache", "feeds.parallel"]


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def context(grown: bool = False) -> multiprocessing.context.BaseContext:
    """How worker processes start: fork starts fastest, but forking a process with threads
    (the server builds in one) can copy a lock another thread holds, and one that has
    ``grown`` (the render workers start after the parse) would have each worker share all
    its memory, to be copied page by page as either writes, and counted in full in each
    worker's resident size; forkserver forks a small clean process instead."""
    if threading.active_count() == 1 and not grown:
        return multiprocessing.get_context("fork")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(_WORKS)
    return forkserver


def _mapping_proxy(proxy: MappingProxyType) -> tuple:
    return _read_only, (dict(proxy),)


def _read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


# A config holds read-only mappings (per-topic thresholds), which pickle cannot send to a
# process the forkserver starts; multiprocessing's own pickler now can.
ForkingPickler.register(MappingProxyType, _mapping_proxy)
