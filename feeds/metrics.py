"""What ``GET /metrics`` tells: requests answered and the state of the feeds, in a
Prometheus registry of the server's own. No web framework here."""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from feeds.model import FORMAT_NAMES
from feeds.publisher import Snapshot

MEDIA_TYPE = CONTENT_TYPE_LATEST
# A reload reads only the changed files (well under a second); a first build of 100,000
# articles takes minutes.
BUILD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def kind(path: str) -> str:
    """The kind of document a URL path asks for: feed, archive, page, opml or other."""
    name = path.rpartition("/")[2]
    extension = name.rpartition(".")[2] if "." in name else ""
    if extension in FORMAT_NAMES:
        return "archive" if "/archive/" in path else "feed"
    if extension == "html" or path == "/":
        return "page"
    return "opml" if extension == "opml" else "other"


class Metrics:
    """The counters and gauges of one server. Each has its own registry, so two apps in one
    process (tests) count apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.answers = _Answers()
        registry.register(self.answers)
        self.builds = Histogram(
            "feeds_build_duration_seconds",
            "Seconds each build of the feeds served took: the first load, then every reload.",
            buckets=BUILD_BUCKETS,
            registry=registry,
        )
        self.skipped = Gauge(
            "feeds_articles_skipped", "Article files skipped by the last build.", registry=registry
        )
        self.feeds = Gauge(
            "feeds_served", "Feeds served (each in every format).", registry=registry
        )
        self.loaded = Gauge(
            "feeds_last_load_timestamp_seconds",
            "When the feeds served were loaded (Unix time).",
            registry=registry,
        )

    def tally(self, status: str, path: str, size: int) -> Callable[[], None]:
        """What counts one answer with ``status`` (e.g. ``"200 OK"``) and a body of ``size``
        bytes to ``path``: made once for an answer that is replayed."""
        return self.answers.tally((f"{status[:1]}xx", kind(path)), size)

    def built(self, snapshot: Snapshot, seconds: float) -> None:
        """A build of ``seconds`` gave the snapshot now served."""
        self.builds.observe(seconds)
        self.skipped.set(len(snapshot.problems))
        self.feeds.set(len(snapshot.feeds))
        self.loaded.set(time.time())

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (media type :data:`MEDIA_TYPE`)."""
        return generate_latest(self.registry)


class _Answers:
    """The answers' counters (``feeds_http_requests``, ``feeds_http_response_body_bytes``),
    counted without a lock on every request: each thread adds to counts of its own, summed
    when the registry is read. (prometheus_client's counters take a lock per increment: a
    fifth of the time a replayed answer took in this process.) The counts of a thread that
    ended (granian retires idle threads and starts new ones) join those of the threads
    retired, so only the live threads' counts are kept apart."""

    def __init__(self) -> None:
        self._mine = threading.local()
        self._live: dict[int, defaultdict[tuple[str, str], int]] = {}  # by id
        self._retired: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()

    def tally(self, labels: tuple[str, str], size: int) -> Callable[[], None]:
        """What counts one answer with these (status, kind) labels and ``size`` bytes."""
        mine = self._mine

        def count() -> None:
            try:
                counts = mine.counts
            except AttributeError:
                counts = self._new_thread()
            counts[labels] += 1
            counts[_SENT] += size

        return count

    def _new_thread(self) -> defaultdict[tuple[str, str], int]:
        counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        with self._lock:
            self._live[id(counts)] = counts
        self._mine.counts = counts
        # A thread's locals are dropped when it ends: so is this, and its counts retire.
        self._mine.end = end = _End()
        weakref.finalize(end, self._retire, counts)
        return counts

    def _retire(self, counts: defaultdict[tuple[str, str], int]) -> None:
        with self._lock:
            self._retired.update(self._live.pop(id(counts)))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            totals = self._retired.copy()
            for counts in list(self._live.values()):
                totals.update(dict(counts))  # one C call: atomic while its thread counts
        requests = CounterMetricFamily(
            "feeds_http_requests",
            "HTTP requests answered, by status class and kind of document.",
            labels=["status", "kind"],
        )
        for labels, value in sorted(totals.items()):
            if labels != _SENT:
                requests.add_metric(labels, value)
        yield requests
        yield CounterMetricFamily(
            "feeds_http_response_body_bytes", "Bytes of response bodies sent.", totals[_SENT]
        )


class _End:
    """Kept by a counting thread only: it goes when the thread ends."""


_SENT = ("", "")  # the key of the bytes sent among a thread's counts
