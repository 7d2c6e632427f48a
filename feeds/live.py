"""What the server serves: the current snapshot with what it derives from it, kept up to
date by a :class:`feeds.rebuild.Reloader`. No web framework here."""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from feeds.model import Feed, Rendered
from feeds.publisher import Publisher, Snapshot
from feeds.rebuild import Reloader
from feeds.render import FORMATS, Format
from feeds.search import WordIndex

if TYPE_CHECKING:
    from feeds.fastpath import Replies

log = logging.getLogger(__name__)

FILTER_CACHE = 256  # filtered feeds kept rendered

T = TypeVar("T")


@dataclass
class State:
    """One snapshot with what the server derives from it; replaced whole on reload."""

    snapshot: Snapshot
    dates: dict[str, datetime]  # when each file's bytes last changed
    feeds: dict[str, tuple[Feed, Format]] = field(init=False)  # feed URL path → its feed
    filtered: dict[tuple, Rendered] = field(default_factory=dict)
    gzipped: dict[str, bytes] = field(default_factory=dict)  # etag → compressed body
    # (URL path, gzip?) → the app's answers, replayed by FastPath; at most 2 per URL.
    replies: dict[tuple[str, bool], Replies] = field(default_factory=dict)
    # Request threads share the caches: unguarded, two threads evicting the same oldest
    # entry made the second one's ``del`` a KeyError, a 500.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Filtered feeds being rendered: at most serve.filtered_renders at once.
    renders: threading.BoundedSemaphore = field(init=False)
    _words: WordIndex | None = field(default=None, init=False)
    _words_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.feeds = {
            f"{feed.spec.path}.{name}": (feed, FORMATS[name])
            for feed in self.snapshot.feeds
            for name in self.snapshot.config.feeds.formats
        }
        self.renders = threading.BoundedSemaphore(self.snapshot.config.serve.filtered_renders)

    def words(self) -> WordIndex:
        """The word index of the snapshot's feeds, built by the first request that needs it:
        most snapshots of a server that reloads are never searched."""
        with self._words_lock:
            if self._words is None:
                self._words = WordIndex(self.snapshot.feeds)
            return self._words


class LiveFeeds:
    """The current state, rebuilt in the background when the input files change.

    Where the kernel tells which files change (:class:`feeds.watch.Watcher`), a thread
    rebuilds as soon as they do and reads only those files; elsewhere the files are scanned
    every ``serve.reload_interval`` seconds while requests come. A request never waits for
    a rebuild: it is served from the last good snapshot, and a config or folder that turns
    bad is logged while the last good feeds stay up.
    """

    def __init__(self, publisher: Publisher, watch: bool = True):
        self.publisher = publisher
        self.reloader = Reloader(publisher, self._swap, watch)
        snapshot = self.reloader.first
        now = _now()
        self.state = State(snapshot, {path: now for path in snapshot.files})

    def current(self) -> State:
        """The state to serve; also what keeps it up to date (see :meth:`Reloader.keep_up`)."""
        self.reloader.keep_up()
        return self.state

    def refresh(self) -> bool:
        """Bring the feeds up to date with the files as they are now; True if they were
        rebuilt meanwhile (by this call or by the watching thread)."""
        return self.reloader.refresh()

    def _swap(self, snapshot: Snapshot) -> list[str]:
        """Serve ``snapshot`` from now on; the paths of the files whose bytes changed."""
        old, now = self.state, _now()
        dates = {path: _changed_at(path, r.etag, old, now) for path, r in snapshot.files.items()}
        self.state = State(snapshot, dates)
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))
        return [p for p in dates if dates[p] != old.dates.get(p)]


def _changed_at(path: str, etag: str, old: State, now: datetime) -> datetime:
    """A file's Last-Modified: kept while its bytes stay, else later than it was before.

    HTTP dates have whole seconds, so a change within the second of the previous one is
    dated a second later: a reader sending only If-Modified-Since still gets the new bytes."""
    if path not in old.dates:
        return now
    if old.snapshot.files[path].etag == etag:
        return old.dates[path]
    return max(now, old.dates[path] + timedelta(seconds=1))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # HTTP dates have whole seconds


def gzipped(state: State, rendered: Rendered) -> bytes:
    """The body compressed once per version (mtime 0: the same bytes every time)."""
    # Bounded like the filtered feeds: each filtered URL has its own bytes and ETag, and
    # an unbounded cache grew by one body per distinct query string until the next reload.
    limit = len(state.snapshot.files) + FILTER_CACHE
    return cached(
        state, state.gzipped, rendered.etag, lambda: gzip.compress(rendered.body, 6, mtime=0), limit
    )


def cached(state: State, cache: dict, key: Any, make: Callable[[], T], limit: int) -> T:
    """``cache[key]``, made by ``make`` if missing; the oldest entries go past ``limit``.

    ``make`` runs outside the lock, so a slow render never holds up other requests (two
    threads may both make the same value; either result is the same)."""
    value = cache.get(key)
    if value is None:
        value = make()
        with state.lock:
            cache[key] = value
            while len(cache) > limit:
                del cache[next(iter(cache))]
    return value
