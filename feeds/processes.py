"""Worker processes for the work a build spreads over the cores: parsing article files
(:mod:`feeds.parsecache`), rendering documents (:mod:`feeds.parallel`), and one piece of
work done :func:`aside` while this process goes on, or :func:`alongside` it in a thread."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import _ExecutorManagerThread
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from types import MappingProxyType
from typing import Generic, TypeVar

T = TypeVar("T")

# Seconds a thread holds the interpreter lock while another waits for it, while work is
# done alongside: the block's thread, woken by its workers, waited up to 5 ms (Python's
# default) for each thing it did.
SWITCH_INTERVAL = 0.0005

# Modules a worker started by the forkserver has imported already: what it runs.
_WORKS = ["feeds.parsecache"]


def end_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent``, the process that started it, ends
    without stopping it first (killed outright, or crashed): else it lives on as an orphan
    that nothing will stop. SIGKILL, not SIGTERM: a process busy with other threads need
    not stop on SIGTERM. Linux only; elsewhere it does nothing."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0 and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)  # it ended before the kernel was asked


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def context(grown: bool = False) -> multiprocessing.context.BaseContext:
    """How worker processes start. Forked, they start fastest; but forking a process with
    threads (the server builds in one) can copy a lock another thread holds, and there the
    forkserver forks a clean process instead. Workers that start after this process has
    ``grown`` (the render's, where none were forked before the parse) are spawned: forked,
    each would share all its memory, copied page by page as either writes and counted in
    full in each one's resident size; and as this process's own children (not the
    forkserver's) their CPU time is counted in its own, where ``time`` looks."""
    if grown:
        return multiprocessing.get_context("spawn")
    if _forkable():
        return multiprocessing.get_context("fork")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(_WORKS)
    return forkserver


class aside(Generic[T]):  # lower case: called as a function that starts work
    """``work()`` done in a forked child while this process goes on; :meth:`result` waits
    for its value. Where forking is not safe (this process has threads) or the work failed
    there, it is done here when the result is asked for, and raises here what it raises.
    Used as a context manager, a child whose result was not asked for is ended on leaving."""

    def __init__(self, work: Callable[[], T]):
        self.work = work
        self.child: multiprocessing.process.BaseProcess | None = None
        if _forkable() and cores() > 1:
            fork = multiprocessing.get_context("fork")
            self.answer, sending = fork.Pipe(duplex=False)
            self.child = fork.Process(target=_answer, args=(work, sending), daemon=True)
            self.child.start()
            sending.close()

    def result(self) -> T:
        if self.child is None:
            return self.work()
        try:
            done = self.answer.recv()
        except (EOFError, OSError):  # the child died
            done = None
        finally:
            self._end()
        return self.work() if done is None else done[0]

    def _end(self) -> None:
        if self.child is not None:
            self.answer.close()
            self.child.kill()  # it has answered, or is not to
            self.child.join()
            self.child = None

    def __enter__(self) -> aside[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._end()


@contextmanager
def alongside(work: Callable[[], object] | None) -> Iterator[None]:
    """Do ``work()`` in a thread while the block runs, there being more than one core: the
    block's own work in worker processes leaves this process waiting most of the time. On
    leaving, wait for it; its error is raised then (unless the block raised one). With one
    core, it is done first, before the block."""
    if work is None:
        yield
        return
    if cores() < 2:
        work()
        yield
        return
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # raised in the thread that waits for it
            failed.append(e)

    thread = threading.Thread(target=run, name="feeds-alongside")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    thread.start()
    try:
        yield
    finally:
        thread.join()
        sys.setswitchinterval(interval)
    if failed:
        raise failed[0]


def _answer(work: Callable[[], object], answer: Connection) -> None:
    try:
        done: tuple[object] | None = (work(),)
    except Exception:  # done again by the parent, which reports it
        done = None
    answer.send(done)


def _forkable() -> bool:
    """Whether forking this process is safe: a fork copies a lock another thread holds.
    The threads that run process pools do not count: they wait on the pools' pipes, and a
    process forked beside them takes no lock of theirs (multiprocessing's own Pool forks
    its workers beside its threads)."""
    here = threading.current_thread()
    return all(thread is here or _runs_a_pool(thread) for thread in threading.enumerate())


def _runs_a_pool(thread: threading.Thread) -> bool:
    return isinstance(thread, _ExecutorManagerThread) or thread.name == "QueueFeederThread"


def _mapping_proxy(proxy: MappingProxyType) -> tuple:
    return _read_only, (dict(proxy),)


def _read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


# A config holds read-only mappings (per-topic thresholds), which pickle cannot send to a
# worker not forked from this process (spawned, or forked by the forkserver);
# multiprocessing's own pickler now can.
ForkingPickler.register(MappingProxyType, _mapping_proxy)
