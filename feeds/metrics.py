"""What ``GET /metrics`` tells: requests answered and the state of the feeds, in a
Prometheus registry of the server's own. No web framework here."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
        self.requests = Counter(
            "feeds_http_requests",
            "HTTP requests answered, by status class and kind of document.",
            ["status", "kind"],
            registry=registry,
        )
        self.sent = Counter(
            "feeds_http_response_body_bytes", "Bytes of response bodies sent.", registry=registry
        )
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
        bytes to ``path``: made once for an answer that is replayed, so counting it is one
        increment or two."""
        requests = self.requests.labels(f"{status[:1]}xx", kind(path))
        if not size:  # a 304 or a HEAD: the answers readers repeat most, counted by one
            return requests.inc
        sent = self.sent

        def count() -> None:
            requests.inc()
            sent.inc(size)

        return count

    def built(self, snapshot: Snapshot, seconds: float) -> None:
        """A build of ``seconds`` gave the snapshot now served."""
        self.builds.observe(seconds)
        self.skipped.set(len(snapshot.problems))
        self.feeds.set(len(snapshot.feeds))
        self.loaded.set(time.time())

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (media type :data:`MEDIA_TYPE`)."""
        return generate_latest(self.registry)
