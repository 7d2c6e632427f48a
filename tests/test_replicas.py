"""deploy/nginx-replicas.conf with a real nginx in front of two real `feeds serve` replicas:
no reader sees a failure while one replica is killed or both are restarted in turn, and
the replicas give the same validators."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_deploy import DEPLOY, NGINX, PAGES, get, nginx, world_readable, write_articles

__all__ = ["world_readable"]  # a fixture of test_deploy, used here

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx missing (apt-get install nginx-light)")

# How long nginx leaves out a replica that failed: a rolling restart waits that long and a
# second (nginx counts it in whole seconds) after a replica answers, as deploy/README.md says.
FAIL_TIMEOUT = int(
    re.findall(r"fail_timeout=(\d+)s", (DEPLOY / "nginx-replicas.conf").read_text())[0]
)
BACK_IN_TURN = FAIL_TIMEOUT + 1 + 0.3


class Replica:
    """One `feeds serve` on a fixed port that can be stopped and started again."""

    def __init__(self, config: Path, port: int, log: Path):
        self.config, self.port, self.log = config, port, log
        self.url = f"http://127.0.0.1:{port}/"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "feeds", "--config", str(self.config), "serve"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a killed replica is the server and its worker, as
                # when a machine or container dies (SIGKILL to the server alone would leave
                # its forked worker serving).
                start_new_session=True,
            )

    def wait_up(self, timeout: float = 30) -> None:
        """Until it is ready (a 503 or a refused connection: not yet)."""
        deadline = time.monotonic() + timeout
        while get_status(self.url + "healthz") != 200:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"not up in {timeout} s:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self, signum: int, timeout: float = 10) -> None:
        assert self.process is not None
        if signum == signal.SIGKILL:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)  # granian's own shutdown, worker included
        try:
            self.process.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # anything left of the group
            self.process.wait()


def get_status(url: str) -> int | None:
    try:
        return get(url).status
    except (urllib.error.URLError, OSError):
        return None


@contextlib.contextmanager
def replicas(config: Path, folder: Path, count: int) -> Iterator[list[Replica]]:
    """``count`` replicas started at once; yields them once all answer, and always ends them."""
    started = [Replica(config, free_port(), folder / f"replica-{i}.log") for i in range(count)]
    try:
        for replica in started:
            replica.start()
        for replica in started:
            replica.wait_up()
        yield started
    finally:
        for replica in started:
            if replica.process is not None and replica.process.poll() is None:
                replica.stop(signal.SIGKILL)


class Load:
    """A few client threads GETting the feeds through ``base`` until stopped, half the time
    with the If-None-Match of the previous answer; counts statuses and connection errors."""

    def __init__(self, base: str, threads: int = 3, timeout: float = 60):
        self.base, self.threads, self.deadline = base, threads, time.monotonic() + timeout
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def client(self, n: int) -> None:
        etags: dict[str, str] = {}
        i = n
        while not self.done.is_set() and time.monotonic() < self.deadline:
            path = PAGES[i % len(PAGES)]
            conditional = path in etags and (i // len(PAGES)) % 2  # every other round
            headers = {"If_None_Match": etags[path]} if conditional else {}
            try:
                answer = get(self.base + path, **headers)
                if answer.status == 200:
                    etags[path] = answer.headers["ETag"]
                with self.lock:
                    self.statuses[answer.status] += 1
            except (urllib.error.URLError, OSError) as e:
                with self.lock:
                    self.errors.append(f"{path}: {e!r}")
            i += 1
            time.sleep(0.02)  # a bounded load: the replicas need the CPU to start too

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        with ThreadPoolExecutor(self.threads) as pool:
            futures = [pool.submit(self.client, n) for n in range(self.threads)]
            try:
                yield self
            finally:
                self.done.set()
                for future in futures:
                    future.result()

    def total(self) -> int:
        with self.lock:
            return sum(self.statuses.values()) + len(self.errors)

    def wait_requests(self, count: int, timeout: float = 10) -> None:
        """Until ``count`` more requests have been answered (or failed)."""
        target, deadline = self.total() + count, time.monotonic() + timeout
        while self.total() < target:
            assert time.monotonic() < deadline, f"load stalled: {self.statuses}, {self.errors}"
            time.sleep(0.02)


def test_no_reader_sees_a_replica_killed_or_restarted_and_validators_match(
    site, tmp_path, world_readable
):
    write_articles(site)
    with replicas(site.config_path, tmp_path, 2) as (a, b):
        markers = {"REPLICA_A": f"127.0.0.1:{a.port}", "REPLICA_B": f"127.0.0.1:{b.port}"}
        with (
            nginx("nginx-replicas.conf", world_readable / "nginx", **markers) as base,
            Load(base).running() as load,
        ):
            load.wait_requests(20)
            b.stop(signal.SIGKILL)  # (a) a crash mid-load
            load.wait_requests(20)
            b.start()
            b.wait_up()
            time.sleep(BACK_IN_TURN)  # until nginx sends it requests again
            # (b) a rolling restart: each replica stopped as a supervisor stops it, started
            # again, and the next one stopped only once nginx sends the first requests again.
            a.stop(signal.SIGTERM)
            load.wait_requests(20)
            a.start()
            a.wait_up()
            time.sleep(BACK_IN_TURN)
            b.stop(signal.SIGTERM)
            load.wait_requests(20)
            b.start()
            b.wait_up()
            load.wait_requests(20)
        # (c) B was started last, seconds after A: still the same validators.
        assert_same_validators(a, b)

    assert load.errors == []
    assert all(200 <= status < 400 for status in load.statuses), load.statuses
    # Conditional requests reached the replicas and were answered 304 by them.
    assert load.statuses[200] and load.statuses[304], load.statuses


def assert_same_validators(a: Replica, b: Replica) -> None:
    """For every URL, A's ETag and Last-Modified are B's, and B answers A's validators
    with 304."""
    for path in [*PAGES, "all.atom?limit=1"]:
        for encoding in ["identity", "gzip"]:
            first = get(a.url + path, Accept_Encoding=encoding)
            second = get(b.url + path, Accept_Encoding=encoding)
            assert first.status == second.status == 200, path
            assert first.body == second.body, path
            etag = first.headers["ETag"]
            assert etag == second.headers["ETag"], (path, encoding)
            answer = get(b.url + path, Accept_Encoding=encoding, If_None_Match=etag)
            assert answer.status == 304, (path, encoding)
            modified = first.headers.get("Last-Modified")
            assert modified == second.headers.get("Last-Modified"), (path, encoding)
            if modified:  # a filtered feed of no items has none
                answer = get(b.url + path, Accept_Encoding=encoding, If_Modified_Since=modified)
                assert answer.status == 304, (path, encoding)
