"""Work done aside (feeds.processes.aside): in another process where forking is safe, here
where it is not, and what it raises is raised here."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from feeds import processes
from feeds.errors import ArticleError

# In a process of its own: other tests leave threads running here (an app's watcher, until
# it is collected), and with threads the work is done in this process.
_ASIDE = """
import os, sys, threading
from feeds import processes
with processes.aside(lambda: (os.getpid(), ("a", 1, [2.5]))) as pending:
    pid, args = pending.result()
print(pid != os.getpid(), args == ("a", 1, [2.5]))
with processes.aside(lambda: threading.Event().wait(60)) as pending:
    child = pending.child
    print(child is not None and child.is_alive())
print(child.is_alive())
"""


def test_work_aside_runs_in_another_process_gives_its_value_and_ends() -> None:
    if processes.cores() < 2:
        pytest.skip("one core: the work is done here")
    run = subprocess.run([sys.executable, "-c", _ASIDE], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # In another process with its value; a child left unasked is killed and reaped on leaving.
    assert run.stdout.split() == ["True", "True", "True", "False"]


def test_an_error_aside_is_raised_here_as_the_work_raises_it() -> None:
    def fails() -> None:
        raise ArticleError("/articles", "articles.folder: no such folder")

    with processes.aside(fails) as pending, pytest.raises(ArticleError) as raised:
        pending.result()
    assert raised.value.problem.source == "/articles"


def test_with_threads_running_the_work_is_done_here() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with processes.aside(os.getpid) as pending:
            pid = pending.result()
    finally:
        stop.set()
        other.join()
    assert pid == os.getpid()


def test_work_alongside_runs_while_the_block_runs_and_is_waited_for(monkeypatch) -> None:
    monkeypatch.setattr(processes, "cores", lambda: 2)
    started, finish, done = threading.Event(), threading.Event(), []

    def work() -> None:
        started.set()
        finish.wait(10)
        done.append(True)

    with processes.alongside(work):
        assert started.wait(10)  # running already, in another thread
        assert not done
        finish.set()
    assert done  # and done when the block is left


def test_an_error_alongside_is_raised_on_leaving_unless_the_block_raised(monkeypatch) -> None:
    monkeypatch.setattr(processes, "cores", lambda: 2)

    def work() -> None:
        raise ArticleError("x.md", "broken")

    with pytest.raises(ArticleError), processes.alongside(work):
        pass
    with pytest.raises(KeyError), processes.alongside(work):
        raise KeyError("the block's own")


def test_with_one_core_the_work_alongside_is_done_before_the_block(monkeypatch) -> None:
    monkeypatch.setattr(processes, "cores", lambda: 1)
    order: list[str] = []
    with processes.alongside(lambda: order.append("work")):
        order.append("block")
    assert order == ["work", "block"]


_BESIDE_POOLS = """
import multiprocessing, os, threading
from concurrent.futures import ProcessPoolExecutor
from feeds import processes
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
    pool.submit(os.getpid).result()  # the pool's threads run now
    print(processes.context().get_start_method())
    threading.Thread(target=threading.Event().wait, args=(2,), daemon=True).start()
    print(processes.context().get_start_method())
"""


def test_a_fork_is_taken_as_safe_beside_a_process_pools_threads_not_beside_others() -> None:
    # In a process of its own, as above: other tests leave threads running here.
    run = subprocess.run([sys.executable, "-c", _BESIDE_POOLS], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["fork", "forkserver"]
