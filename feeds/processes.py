"""Worker processes for the work a build spreads over the cores: parsing article files
(:mod:`feeds.parsecache`) and rendering documents (:mod:`feeds.parallel`)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.reduction import ForkingPickler
from types import MappingProxyType

# Modules a worker started by the forkserver has imported already: what it runs.
_WORKS = ["feeds.parsecache"]


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def context(grown: bool = False) -> multiprocessing.context.BaseContext:
    """How worker processes start. Forked, they start fastest; but forking a process with
    threads (the server builds in one) can copy a lock another thread holds, and there the
    forkserver forks a clean process instead. Workers that start after this process has
    ``grown`` (the render's, after the parse) are spawned: forked, each would share all
    its memory, copied page by page as either writes and counted in full in each one's
    resident size; and as this process's own children (not the forkserver's) their CPU
    time is counted in its own, where ``time`` looks."""
    if grown:
        return multiprocessing.get_context("spawn")
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(_WORKS)
    return forkserver


def _mapping_proxy(proxy: MappingProxyType) -> tuple:
    return _read_only, (dict(proxy),)


def _read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


# A config holds read-only mappings (per-topic thresholds), which pickle cannot send to a
# worker not forked from this process (spawned, or forked by the forkserver);
# multiprocessing's own pickler now can.
ForkingPickler.register(MappingProxyType, _mapping_proxy)
