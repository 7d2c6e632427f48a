"""Work done aside (feeds.processes.aside): in another process where forking is safe, here
where it is not, and what it raises is raised here."""

from __future__ import annotations

import os
import threading

import pytest

from feeds import processes
from feeds.errors import ArticleError


def _pid_and_args(*args: object) -> tuple[int, tuple]:
    return os.getpid(), args


def test_work_aside_runs_in_another_process_and_gives_its_value() -> None:
    if processes.cores() < 2:
        pytest.skip("one core: the work is done here")
    with processes.aside(lambda: _pid_and_args("a", 1, [2.5])) as pending:
        pid, args = pending.result()
    assert pid != os.getpid()
    assert args == ("a", 1, [2.5])


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
        with processes.aside(lambda: _pid_and_args()) as pending:
            pid, _ = pending.result()
    finally:
        stop.set()
        other.join()
    assert pid == os.getpid()


def test_a_child_left_unasked_is_ended() -> None:
    if processes.cores() < 2:
        pytest.skip("one core: no child")
    with processes.aside(lambda: threading.Event().wait(60)) as pending:
        child = pending.child
        assert child is not None and child.is_alive()
    assert not child.is_alive()  # killed and reaped on leaving
