"""Load a running `feeds serve` while its articles change, and check every answer.

    python bench/load.py --url http://127.0.0.1:8080/ --config config.yaml

Client threads (stdlib ``http.client``, one keep-alive connection each) request a few feeds
for a bounded time and count: half of the requests with ``If-None-Match`` (the last ETag
that client saw for that URL), some with ``Accept-Encoding: gzip``, some filtered with
distinct query strings. Meanwhile a writer thread adds, edits and deletes article files.

Checks, each counted as an error:

- no 5xx (but a 503 with Retry-After for a filtered feed) and no other unexpected status;
- every 200 is well formed: gzip only when asked for, the right media type, a body that
  parses (XML, JSON Feed, HTML), an ETag equal to ``feeds.render.etag`` of the plain bytes
  (plus ``-gzip`` for the compressed ones) and, for a feed, a self link equal to its URL;
- every 304 answers an ``If-None-Match`` with the ETag it was sent;
- every added or edited article shows in ``/all.atom`` (and every deleted one leaves it)
  within ``serve.reload_interval`` plus ``--margin`` seconds.

Prints a report (requests, rate, latency, statuses, errors, time to appear) and exits 1
if any check failed. Only for a server of your own on this machine: it talks to loopback
addresses only, and in the articles folder it writes, edits and deletes only its own
files (``bench-*``), which it removes at the end.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import json
import os
import random
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from feeds.config import load as load_config
from feeds.render import etag

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
    "html": "text/html",
    "opml": "text/x-opml",
}
# {n}: a random number per request, so filtered URLs keep changing (the server keeps 256).
PATHS = ("all.atom", "all.rss", "all.json", "index.html", "feeds.opml", "all.atom?limit=5&_={n}")
WATCHED = "all.atom"  # where added articles must show
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SAMPLES = 10  # error messages kept for the report


@dataclass
class Results:
    """What the threads saw; guarded by ``lock`` (the lists per thread are merged at the end)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # kind → count
    samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    gzipped: int = 0

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < SAMPLES:
                self.samples.append(f"{kind}: {message}")


class Changes:
    """The writer's articles: which markers must show in the watched feed, and since when."""

    def __init__(self, folder: Path, suffix: str, quality: float, rng: random.Random):
        self.folder, self.suffix, self.quality, self.rng = folder, suffix, quality, rng
        self.run = uuid.uuid4().hex[:6]
        self.lock = threading.Lock()
        self.count = 0
        self.revision: dict[str, int] = {}  # file name → its revision
        self.settled: set[str] = set()  # files whose latest revision was seen
        self.appearing: dict[str, tuple[str, float]] = {}  # marker → (file, written at)
        self.leaving: dict[str, float] = {}  # marker → deleted at
        self.appeared: list[float] = []  # seconds from write to seen
        self.left: list[float] = []
        self.done = Counter()  # added, edited, deleted

    def marker(self, name: str) -> str:
        return f"bench{self.run}x{name.split('-')[-1].split('.')[0]}r{self.revision[name]}"

    def _text(self, name: str) -> bytes:
        n = int(name.split("-")[-1].split(".")[0])
        marker = self.marker(name)
        # Newer than any real article, so it is among the newest items of the watched feed.
        date = datetime(2100, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
        fields = {
            "title": f"Load test {marker}",
            "excerpt": f"Written by bench/load.py, revision {self.revision[name]}.",
            "publishedDateTime": date.isoformat().replace("+00:00", "Z"),
            "webUrl": f"https://bench.example.com/{self.run}/{n}",
            "provider": {"name": "Bench", "domain": "bench.example.com"},
            "topics": ["Bench"],
            "quality": self.quality,
        }
        # JSON is YAML: no YAML library needed to write front matter.
        return (
            "---\n" + "\n".join(f"{k}: {json.dumps(v)}" for k, v in fields.items()) + "\n---\n"
        ).encode()

    def step(self) -> None:
        """Add, edit or delete one article file."""
        with self.lock:
            settled = sorted(self.settled)
        roll = self.rng.random()
        if not settled or roll < 0.5:
            self.add()
        elif roll < 0.8:
            self.edit(self.rng.choice(settled))
        else:
            self.delete(self.rng.choice(settled))

    def add(self) -> None:
        name = f"bench-{self.run}-{self.count}{self.suffix}"
        self.count += 1
        with self.lock:
            self.revision[name] = 0
        # Written beside it under a name no pattern matches, then renamed: never seen half-done.
        temp = self.folder / f".{name}.tmp"
        temp.write_bytes(self._text(name))
        os.replace(temp, self.folder / name)
        self._expect(name, "added")

    def edit(self, name: str) -> None:
        with self.lock:
            self.revision[name] += 1
            self.settled.discard(name)
        # In place, as some editors and sync tools do: the server may read it half-written.
        (self.folder / name).write_bytes(self._text(name))
        self._expect(name, "edited")

    def delete(self, name: str) -> None:
        with self.lock:
            self.settled.discard(name)
            marker = self.marker(name)
            del self.revision[name]
        (self.folder / name).unlink()
        with self.lock:
            self.leaving[marker] = time.monotonic()
            self.done["deleted"] += 1

    def _expect(self, name: str, what: str) -> None:
        with self.lock:
            self.appearing[self.marker(name)] = (name, time.monotonic())
            self.done[what] += 1

    def pending(self) -> bool:
        with self.lock:
            return bool(self.appearing or self.leaving)

    def saw(self, body: bytes, started: float, ended: float) -> None:
        """A 200 of the watched feed, requested at ``started`` and read at ``ended``."""
        with self.lock:
            for marker, (name, written) in list(self.appearing.items()):
                if marker.encode() in body:
                    del self.appearing[marker]
                    self.appeared.append(ended - written)
                    if name in self.revision and self.marker(name) == marker:
                        self.settled.add(name)
            for marker, deleted in list(self.leaving.items()):
                if started > deleted and marker.encode() not in body:
                    del self.leaving[marker]
                    self.left.append(ended - deleted)

    def remove_all(self) -> None:
        with self.lock:
            names = list(self.revision)
        for name in names:
            (self.folder / name).unlink(missing_ok=True)


class Client:
    """One keep-alive connection; requests until told to stop or the count runs out."""

    def __init__(self, args, base: str, changes: Changes, results: Results, seed: int):
        self.args, self.base, self.changes, self.results = args, base, changes, results
        self.url = urlsplit(args.url)
        self.prefix = self.url.path.rstrip("/") + "/"
        self.rng = random.Random(seed)
        self.etags: dict[tuple[str, bool], str] = {}
        self.latencies: list[float] = []
        self.connection: http.client.HTTPConnection | None = None

    def run(self, stop: threading.Event, budget: itertools.count) -> None:
        while not stop.is_set() and next(budget) < self.args.max_requests:
            self.once()
        if self.connection:
            self.connection.close()

    def get(self, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.url.hostname, self.url.port or 80, timeout=self.args.timeout
            )
        self.connection.request("GET", self.prefix + path, headers=headers)
        return self.connection.getresponse()

    def once(self) -> None:
        path = self.rng.choice(PATHS).format(n=self.rng.randrange(10_000))
        compress = self.rng.random() < 0.3
        sent = self.etags.get((path, compress)) if self.rng.random() < 0.5 else None
        headers = {"Accept-Encoding": "gzip" if compress else "identity"}
        if sent:
            headers["If-None-Match"] = sent
        started = time.monotonic()
        try:
            response = self.get(path, headers)
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            self.results.error("connection", f"{path}: {type(e).__name__}: {e}")
            if self.connection:
                self.connection.close()
            self.connection = None
            return
        ended = time.monotonic()
        self.latencies.append(ended - started)
        with self.results.lock:
            self.results.statuses[response.status] += 1
        if response.status == 503 and "?" in path and response.getheader("Retry-After"):
            pass  # past serve.filtered_renders: refused at once, as it should be
        elif response.status >= 500:
            self.results.error("5xx", f"{path}: {response.status} {body[:200]!r}")
        elif response.status == 304:
            if not sent or response.getheader("ETag") != sent or body:
                self.results.error("malformed", f"{path}: 304 to If-None-Match {sent}")
        elif response.status != 200:
            self.results.error("status", f"{path}: {response.status}")
        else:
            plain = self.check(path, response, body, compress)
            if plain is not None:
                self.etags[(path, compress)] = response.getheader("ETag")
                if path == WATCHED:
                    self.changes.saw(plain, started, ended)

    def check(self, path: str, response, body: bytes, compress: bool) -> bytes | None:
        """The plain bytes of a 200 if it is well formed; else None and an error."""
        problem = None
        encoding = response.getheader("Content-Encoding")
        kind = path.split("?")[0].rsplit(".", 1)[-1]
        try:
            if encoding != ("gzip" if compress else None):
                problem = (
                    f"Content-Encoding {encoding} when gzip was {'' if compress else 'not '}asked"
                )
            else:
                plain = gzip.decompress(body) if compress else body
                if compress:
                    with self.results.lock:
                        self.results.gzipped += 1
                problem = self.problem(path, kind, response, plain, compress)
        except (ValueError, EOFError, OSError, ET.ParseError) as e:  # bad gzip, XML, JSON
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.results.error("malformed", f"{path}: {problem}")
            return None
        return plain

    def problem(self, path: str, kind: str, response, plain: bytes, compress: bool) -> str | None:
        media_type = response.getheader("Content-Type", "")
        if not media_type.startswith(MEDIA_TYPES[kind]):
            return f"Content-Type {media_type}"
        expected = '"' + etag(plain).strip('"') + ("-gzip" if compress else "") + '"'
        if response.getheader("ETag") != expected:
            return f"ETag {response.getheader('ETag')}, expected {expected} from the bytes"
        if kind == "json":
            self_url = json.loads(plain).get("feed_url")
        elif kind in ("atom", "rss"):
            root = ET.fromstring(plain)
            channel = root if kind == "atom" else root.find("channel")
            link = channel.find(f"{ATOM}link[@rel='self']") if channel is not None else None
            self_url = link.get("href") if link is not None else None
        elif kind == "opml":
            ET.fromstring(plain)
            return None
        else:
            return None if plain.rstrip().endswith(b"</html>") else "HTML without its end"
        if self_url != self.base + path:
            return f"self link {self_url}, expected {self.base + path}"
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(args) -> dict:
    config = load_config(args.config)
    interval = config.serve.reload_interval
    bound = interval + args.margin
    folder = Path(args.articles) if args.articles else config.articles_folder
    suffix = next((Path(p).suffix for p in config.articles.patterns if Path(p).suffix), ".md")
    quality = max(100, config.quality.min)
    rng = random.Random(args.seed)
    changes = Changes(folder, suffix, quality, rng)
    results = Results()
    base = config.site.base_url
    stop = threading.Event()
    budget = itertools.count()
    clients = [Client(args, base, changes, results, args.seed + k) for k in range(args.clients)]
    threads = [threading.Thread(target=c.run, args=(stop, budget), daemon=True) for c in clients]

    def write() -> None:
        for _ in range(args.max_writes):
            if stop.wait(1 / args.writes_per_second):
                return
            changes.step()

    writer = threading.Thread(target=write, daemon=True)
    started = time.monotonic()
    try:
        for thread in [*threads, writer]:
            thread.start()
        stop.wait(args.duration)
        stop.set()
        for thread in [*threads, writer]:
            thread.join(timeout=args.timeout + 5)
        elapsed = time.monotonic() - started
        # The last changes still have their bound to show: watch the feed until then.
        watcher = Client(args, base, changes, results, args.seed - 1)
        deadline = time.monotonic() + bound + 1
        while changes.pending() and time.monotonic() < deadline:
            begun = time.monotonic()
            try:
                response = watcher.get(WATCHED, {"Accept-Encoding": "identity"})
                body = response.read()
            except (OSError, http.client.HTTPException) as e:
                results.error("connection", f"{WATCHED}: {type(e).__name__}: {e}")
                watcher.connection = None
            else:
                if response.status == 200:
                    changes.saw(body, begun, time.monotonic())
            time.sleep(0.05)
    finally:
        stop.set()
        if not args.keep:
            changes.remove_all()

    for marker in changes.appearing:
        results.error("late", f"{marker} never showed in {WATCHED}")
    for marker in changes.leaving:
        results.error("late", f"{marker} never left {WATCHED}")
    slow = [t for t in changes.appeared + changes.left if t > bound]
    for seconds in slow:
        results.error("late", f"a change took {seconds:.2f} s to show (bound {bound:.2f} s)")
    latencies = [t for c in clients for t in c.latencies]
    return {
        "url": args.url,
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(results.statuses.items())},
        "gzipped": results.gzipped,
        "errors": sum(results.errors.values()),
        "error_kinds": dict(results.errors),
        "samples": results.samples,
        "reload_interval": interval,
        "bound_s": round(bound, 2),
        "changes": dict(changes.done),
        "appear_max_s": round(max(changes.appeared, default=0), 3),
        "appear_p50_s": round(percentile(changes.appeared, 0.5), 3),
        "leave_max_s": round(max(changes.left, default=0), 3),
    }


def report(r: dict) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["error_kinds"].items())) or "none"
    statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
    c = r["changes"]
    lines = [
        f"{r['clients']} clients for {r['seconds']} s against {r['url']}",
        f"requests  {r['requests']} ({r['rps']}/s); latency p50 {r['p50_ms']} ms, "
        f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        f"responses {statuses} ({r['gzipped']} 200s gzipped)",
        f"errors    {r['errors']} ({kinds})",
        f"articles  {c.get('added', 0)} added, {c.get('edited', 0)} edited, "
        f"{c.get('deleted', 0)} deleted; in {WATCHED} after at most {r['appear_max_s']} s "
        f"(p50 {r['appear_p50_s']} s), gone after at most {r['leave_max_s']} s; "
        f"bound {r['bound_s']} s (reload_interval {r['reload_interval']} s)",
        *(f"  {s}" for s in r["samples"]),
        "OK" if not r["errors"] else "FAILED",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--url", required=True, help="base URL of the server, e.g. http://127.0.0.1:8080/"
    )
    parser.add_argument("--config", required=True, help="the config file the server runs with")
    parser.add_argument("--articles", help="its articles folder (default: from the config)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load (default 10)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many")
    parser.add_argument(
        "--writes-per-second", type=float, default=5, help="article changes a second"
    )
    parser.add_argument(
        "--max-writes", type=int, default=500, help="stop changing files after this many"
    )
    parser.add_argument(
        "--margin", type=float, default=1.0, help="seconds a change may take beyond reload_interval"
    )
    parser.add_argument("--timeout", type=float, default=10, help="seconds per request")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the bench-* articles in place")
    parser.add_argument("--json", help="also write the figures to this file as JSON")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("--url: only a server on this machine (127.0.0.1, localhost, ::1)")
    if not (0 < args.clients <= 256 and 0 < args.duration <= 3600 and args.writes_per_second > 0):
        parser.error("--clients 1-256, --duration up to 3600 s, --writes-per-second above 0")
    result = run(args)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
