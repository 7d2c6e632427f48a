"""How long `feeds serve` takes to start, and how much memory it holds, at one corpus size.

    python bench/serve_start.py --count 10000 [--work DIR] [--serve-seconds 20]
    python bench/serve_start.py --articles DIR

Generates ``--count`` articles (``bench/generate.py --seed 1``) unless ``--articles`` names
a folder, writes a config with every default (RSS, Atom and JSON Feed, archive pages, the
HTML pages) and measures three starts of ``feeds serve``, one after the other:

- ``no state``: no output folder at all;
- ``restart``: the same again, with what the first server left in ``output.folder`` (its
  parse cache and stored files, ``.feeds-cache`` and ``.feeds-store``);
- ``restart, 1 article changed``: after one article file was rewritten with a new title.

For each: the time from starting the process to the first complete ``200`` of ``/all.rss``
(a refused connection or a ``503`` means not yet; polled every 0.1 s up to ``--timeout``);
the time until the feeds are loaded (``/metrics`` gives a time of the last load: a restart
answers from the stored files before that, then catches up); whether the first ``200``
already had the bytes of the loaded feeds (a restart with an article changed serves the old
ones until it has caught up); and the resident memory of the server and all its child
processes: the sum of their ``VmRSS`` in ``/proc``, and of their ``Pss`` (a page the forked
granian worker shares with its parent counted once), its peak over the whole run (sampled
every 0.1 s) and after ``--serve-seconds`` more of serving a few feed URLs. Prints a table.
Linux only (``/proc``); only 127.0.0.1 is contacted. Everything is written under ``--work``
(default: a temp folder, removed at the end unless ``--keep``).
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
    loaded: float  # seconds from the process start until the feeds were loaded
    same_bytes: bool  # whether the first 200 had the bytes served once loaded
    peak: tuple[int, int]  # (VmRSS, Pss) bytes, all the server's processes, highest sampled
    later: tuple[int, int]  # the same after serving for a while after the load
    requests: int  # served after the load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, bytes] | None:
    """The status and body of a complete GET of ``path``; None when the connection fails
    or the body comes short (http.client raises IncompleteRead)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def loaded(port: int) -> bool:
    """Whether the server says it has loaded the feeds (not only served stored ones)."""
    answer = fetch(port, "metrics")
    if answer is None or answer[0] != 200:
        return False
    for line in answer[1].decode().splitlines():
        if line.startswith("feeds_last_load_timestamp_seconds "):
            return float(line.split()[1]) > 0
    return False


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
    peak = (0, 0)

    def sample() -> None:
        nonlocal peak
        peak = tuple(map(max, peak, memory(process.pid)))  # type: ignore[assignment]

    try:
        first_200 = first_body = None
        while not loaded(port):
            sample()
            if first_200 is None and (answer := fetch(port, "all.rss")) and answer[0] == 200:
                first_200, first_body = time.monotonic() - started, answer[1]
            if process.poll() is not None:
                raise SystemExit(f"feeds serve exited with {process.returncode}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"not loaded within {timeout} s")
            time.sleep(0.1)
        done = time.monotonic() - started
        answer = fetch(port, "all.rss")
        assert answer is not None and answer[0] == 200, answer
        if first_200 is None:
            first_200, first_body = done, answer[1]
        requests, until = 0, time.monotonic() + serve_seconds
        while time.monotonic() < until:
            for path in PATHS:
                if fetch(port, path) is not None:
                    requests += 1
            sample()
            time.sleep(0.1)
        same = first_body == answer[1]
        return Start(name, first_200, done, same, peak, memory(process.pid), requests)
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def table(count: int, starts: list[Start], serve_seconds: float) -> str:
    mib = 1024 * 1024
    lines = [
        f"{count:,} articles",
        "",
        "| start | first 200 of /all.rss | loaded | first 200 = loaded bytes | peak VmRSS (Pss) "
        f"| VmRSS (Pss) after {serve_seconds:g} s serving | requests served |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for s in starts:
        (rss, pss), (rss_later, pss_later) = s.peak, s.later
        lines.append(
            f"| {s.name} | {s.first_200:.1f} s | {s.loaded:.1f} s "
            f"| {'yes' if s.same_bytes else 'no'} "
            f"| {rss / mib:,.0f} ({pss / mib:,.0f}) MiB "
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
        assert (output / ".feeds-store").is_dir(), "feeds serve left no stored files"
        starts.append(measure("restart", config, args.timeout, args.serve_seconds))
        edited = max(articles.iterdir())  # the newest by its file name's date
        original = edited.read_bytes()
        try:
            edited.write_bytes(original.replace(b"title: ", b"title: Edited ", 1))
            starts.append(
                measure("restart, 1 article changed", config, args.timeout, args.serve_seconds)
            )
        finally:
            edited.write_bytes(original)
        print(table(count, starts, args.serve_seconds))
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
