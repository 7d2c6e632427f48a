"""Do expensive filtered requests starve cheap ones? Latency of a plain feed, quiet and
while clients flood the server with ``?q=`` searches for random words.

    python bench/filter_flood.py --articles /tmp/cmp/gen10k

Starts `feeds serve` on 127.0.0.1 (a free port) for a config of its own pointing at the
articles folder (read only), pinned to CPU 0, with this script's processes on CPU 1 where
there are two. Then:

1. one ``?q=`` request, timed: it builds the word index of the snapshot;
2. quiet: ``--requests`` sequential GETs of the plain feed, on one keep-alive connection;
3. flood: ``--clients`` threads (in a process of their own, so that they do not compete
   for this one's interpreter lock) each send ``?q=`` with a random word (half made-up,
   half taken from the feed's titles) and a random ``limit``; meanwhile the same
   sequential GETs of the plain feed.

Every answer's status is checked (200 for the plain feed; 200 or 503 with Retry-After for
a filtered one) before any figure is printed; the script exits 1 if one was wrong.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from urllib.parse import quote

SERVER_CPU, CLIENT_CPU = 0, 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, required=True, help="folder of articles")
    parser.add_argument("--plain", default="topics/ai.rss", help="the plain feed timed")
    parser.add_argument("--requests", type=int, default=1000, help="plain GETs per phase")
    parser.add_argument("--clients", type=int, default=8, help="threads sending ?q=")
    parser.add_argument("--threads", type=int, default=16, help="feeds serve --threads")
    parser.add_argument("--filtered-renders", type=int, default=1, help="the setting")
    parser.add_argument(
        "--hammer",
        action="store_true",
        help="flood clients ask again at once after a 503 (default: wait its Retry-After)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds for all of it")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    pinned = len(os.sched_getaffinity(0)) >= 2
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            "site: {title: Flood, base_url: 'http://127.0.0.1/'}\n"
            f"articles: {{folder: '{args.articles.resolve()}'}}\n"
            f"output: {{folder: '{folder}/public'}}\n"
            f"serve: {{filtered_renders: {args.filtered_renders}}}\n",
            encoding="utf-8",
        )
        port = _free_port()
        command = [sys.executable, "-m", "feeds", "--config", str(config), "serve"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--threads", str(args.threads)]
        log = (Path(folder) / "serve.log").open("wb")
        server = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, {SERVER_CPU})) if pinned else None,
        )
        try:
            if pinned:
                os.sched_setaffinity(0, {CLIENT_CPU})
            return _measure(args, port, server, deadline, pinned)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def _measure(
    args: argparse.Namespace, port: int, server: subprocess.Popen, deadline: float, pinned: bool
) -> int:
    _wait_until_up(port, server, deadline)
    plain = "/" + args.plain
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, body = _get(connection, plain)
    assert status == 200, f"{plain}: {status}"
    words = sorted(
        {w.casefold() for t in ET.fromstring(body).iter("title") for w in (t.text or "").split()}
    )

    started = time.perf_counter()
    status, _ = _get(connection, plain + "?q=zzzz")
    first_search = time.perf_counter() - started
    assert status == 200, f"first search: {status}"

    quiet = _time_plain(connection, plain, args.requests, deadline)
    stop = multiprocessing.Event()
    results: multiprocessing.Queue = multiprocessing.Queue()
    flood = multiprocessing.Process(
        target=_flood,
        args=(port, args.clients, words, args.hammer, stop, results),
    )
    flood.start()
    try:
        time.sleep(0.5)  # the flood under way
        busy = _time_plain(connection, plain, args.requests, deadline)
    finally:
        stop.set()
        statuses, wrong, filtered = results.get(timeout=60)
        flood.join(timeout=30)
        if flood.is_alive():
            flood.kill()
            flood.join()
    if wrong:
        print(f"wrong answers to filtered requests: {wrong[:5]}", file=sys.stderr)
        return 1

    def figures(latencies: list[float]) -> str:
        ms = sorted(1000 * s for s in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return f"median {statistics.median(ms):6.2f} ms, p99 {p99:6.2f} ms, max {ms[-1]:6.2f} ms"

    print(
        f"server on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}"
        if pinned
        else "not pinned: one CPU"
    )
    print(f"first ?q= (builds the word index): {first_search * 1000:.0f} ms")
    print(f"{plain} quiet:      {figures(quiet)} ({len(quiet)} requests)")
    print(f"{plain} under flood: {figures(busy)} ({len(busy)} requests)")
    print(
        f"flood: {args.clients} clients, {sum(statuses.values())} filtered requests: "
        f"{statuses[200]} answered 200 ({figures(filtered) if filtered else '-'}), "
        f"{statuses[503]} refused 503, {'asked again at once' if args.hammer else 'then waited'}"
    )
    print(f"under flood / quiet, median: {statistics.median(busy) / statistics.median(quiet):.2f}")
    return 0


def _time_plain(
    connection: http.client.HTTPConnection, path: str, count: int, deadline: float
) -> list[float]:
    latencies = []
    for _ in range(count):
        if time.monotonic() > deadline:
            raise SystemExit("out of time")
        started = time.perf_counter()
        status, _ = _get(connection, path)
        latencies.append(time.perf_counter() - started)
        assert status == 200, f"{path}: {status}"
    return latencies


def _flood(port: int, clients: int, words: list[str], hammer: bool, stop, results) -> None:
    """``clients`` threads sending ``?q=`` until ``stop``; puts (statuses, wrong, latencies
    of the 200s) on ``results``. Unless ``hammer``, a client told 503 waits Retry-After."""
    statuses: Counter[int] = Counter()
    wrong: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        pick = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            made_up = "".join(pick.choices(string.ascii_lowercase, k=pick.randint(3, 6)))
            word = pick.choice(words) if words and pick.random() < 0.5 else made_up
            path = f"/all.rss?q={quote(word)}&limit={pick.randint(1, 50)}"
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    wrong.append(f"{path}: {type(e).__name__}")
                connection.close()
                continue
            took = time.perf_counter() - started
            with lock:
                statuses[response.status] += 1
                if response.status == 200:
                    latencies.append(took)
                elif response.status != 503 or response.getheader("Retry-After") is None:
                    wrong.append(f"{path}: {response.status}")
            if response.status == 503 and not hammer:
                stop.wait(float(response.getheader("Retry-After") or 1))
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    results.put((statuses, wrong, latencies))


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def _wait_until_up(port: int, server: subprocess.Popen, deadline: float) -> None:
    """Until ``GET /healthz`` says the feeds are loaded (the port answers 503 before)."""
    while True:
        if server.poll() is not None:
            raise SystemExit(f"feeds serve exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if _get(connection, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("feeds serve did not load in time") from None
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
