"""How long `feeds serve` takes to start, and how much memory it holds, at one corpus size.

    python bench/serve_start.py --count 10000 [--work DIR] [--serve-seconds 20]
    python bench/serve_start.py --articles DIR

Generates ``--count`` articles (``bench/generate.py --seed 1``) unless ``--articles`` names
a folder, writes a config with every default (RSS, Atom and JSON Feed, archive pages, the
HTML pages) and measures two starts of ``feeds serve``:

- ``no state``: no output folder at all;
- ``after feeds build``: ``feeds build`` ran first with the same config, leaving the output
  folder and its parse cache (``.feeds-cache``) as a previous run would.

For each: the time from starting the process to the first complete ``200`` of ``/all.rss``
(a refused connection or a ``503`` means not yet; polled every 0.1 s up to ``--timeout``),
and the resident memory of the server and all its child processes (the sum of their
``VmRSS`` in ``/proc``, and of their ``Pss``, which counts a page that the forked granian
worker shares with its parent once) right after that answer and again after ``--serve-seconds`` of
serving a few feed URLs. Prints a table. Linux only (``/proc``); only 127.0.0.1 is
contacted. Everything is written under ``--work`` (default: a temp folder, removed at the
end unless ``--keep``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FEEDS = [sys.executable, "-m", "feeds"]
PATHS = ["all.rss", "all.atom", "all.json", "feeds.opml", "", "topics/ai.rss"]


@dataclass(frozen=True)
class Start:
    name: str
    first_200: float  # seconds from the process start
    first: tuple[int, int]  # (VmRSS, Pss) bytes, all the server's processes, after the 200
    later: tuple[int, int]  # the same after serving for a while
    requests: int  # served in between


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str) -> int | None:
    """The status of a complete GET of ``path``; None when the connection fails or the
    body comes short (http.client raises IncompleteRead)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from the parent ids in /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def memory(pid: int) -> tuple[int, int]:
    """Bytes of ``pid`` and its descendants: the sum of their VmRSS (pages a forked worker
    shares with its parent count in both) and of their Pss (shared pages split among the
    processes sharing them: what they hold together)."""
    rss = pss = 0
    for each in descendants(pid):
        with contextlib.suppress(OSError):
            rss += _kib(Path(f"/proc/{each}/status"), "VmRSS:")
            pss += _kib(Path(f"/proc/{each}/smaps_rollup"), "Pss:")
    return rss, pss


def _kib(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def measure(name: str, config: Path, timeout: float, serve_seconds: float) -> Start:
    port = free_port()
    command = [*FEEDS, "--config", str(config), "serve", "--host", "127.0.0.1"]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its group is ended at the end, workers included
    )
    try:
        while (status := fetch(port, "all.rss")) != 200:
            if process.poll() is not None:
                raise SystemExit(f"feeds serve exited with {process.returncode}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"no 200 for /all.rss within {timeout} s (last: {status})")
            time.sleep(0.1)
        first_200 = time.monotonic() - started
        first = memory(process.pid)
        requests, until = 0, time.monotonic() + serve_seconds
        while time.monotonic() < until:
            for path in PATHS:
                if fetch(port, path) is not None:
                    requests += 1
            time.sleep(0.1)
        return Start(name, first_200, first, memory(process.pid), requests)
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def table(count: int, starts: list[Start], build_seconds: float, serve_seconds: float) -> str:
    mib = 1024 * 1024
    lines = [
        f"{count:,} articles; `feeds build` beforehand took {build_seconds:.1f} s",
        "",
        "| start | first 200 of /all.rss | VmRSS (Pss) after it | VmRSS (Pss) after "
        f"{serve_seconds:g} s serving | requests served |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in starts:
        (rss, pss), (rss_later, pss_later) = s.first, s.later
        lines.append(
            f"| {s.name} | {s.first_200:.1f} s | {rss / mib:,.0f} ({pss / mib:,.0f}) MiB "
            f"| {rss_later / mib:,.0f} ({pss_later / mib:,.0f}) MiB | {s.requests} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="articles to generate")
    parser.add_argument("--articles", type=Path, help="use this folder instead of generating")
    parser.add_argument("--work", type=Path, help="folder for everything written")
    parser.add_argument("--keep", action="store_true", help="keep --work's temp folder")
    parser.add_argument("--serve-seconds", type=float, default=20)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a 200")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="feeds-serve-start-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        articles = args.articles
        if articles is None:
            articles = work / "articles"
            generate = [sys.executable, str(BENCH / "generate.py"), "--count", str(args.count)]
            subprocess.run(
                [*generate, "--seed", "1", "--out", str(articles)], check=True, stdout=sys.stderr
            )
        articles = articles.resolve()
        count = sum(1 for p in articles.iterdir() if not p.name.startswith("."))
        output = work / "public"
        config = work / "config.yaml"
        config.write_text(
            "site: {title: Bench, base_url: 'http://127.0.0.1:8080/'}\n"
            f"articles: {{folder: '{articles}'}}\n"
            f"output: {{folder: '{output}'}}\n",
            encoding="utf-8",
        )
        for path in articles.iterdir():  # into the page cache: both starts read alike
            path.read_bytes()

        shutil.rmtree(output, ignore_errors=True)
        starts = [measure("no state", config, args.timeout, args.serve_seconds)]
        began = time.monotonic()
        subprocess.run([*FEEDS, "--config", str(config), "build"], check=True, capture_output=True)
        build_seconds = time.monotonic() - began
        assert (output / ".feeds-cache").is_file(), "feeds build left no parse cache"
        starts.append(measure("after feeds build", config, args.timeout, args.serve_seconds))
        print(table(count, starts, build_seconds, args.serve_seconds))
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
