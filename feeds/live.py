"""What the server serves: the current snapshot with what it derives from it, kept up to
date by a :class:`feeds.rebuild.Reloader`. No web framework here."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from feeds.errors import FeedsError
from feeds.metrics import Metrics
from feeds.model import Feed, Rendered
from feeds.publisher import Publisher, Snapshot
from feeds.rebuild import Reloader
from feeds.render import FORMATS, Format, paginate
from feeds.search import WordIndex

if TYPE_CHECKING:
    from feeds.fastpath import Replies

log = logging.getLogger(__name__)

FILTER_CACHE = 256  # filtered feeds kept rendered
RETRY = 5.0  # seconds between tries of a first load that failed

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # HTTP dates have whole seconds


@dataclass
class State:
    """One snapshot with what the server derives from it; replaced whole on reload."""

    snapshot: Snapshot
    # Filtered feeds being rendered: at most serve.filtered_renders at once, counted across
    # reloads (renders still running on the state before count too: see LiveFeeds._state).
    renders: threading.BoundedSemaphore
    loaded: datetime = field(default_factory=lambda: _now())  # when it began to be served
    dates: dict[str, datetime] = field(init=False)  # each file's Last-Modified (see modified)
    feeds: dict[str, tuple[Feed, Format]] = field(init=False)  # feed URL path → its feed
    filtered: dict[tuple, Rendered] = field(default_factory=dict)
    gzipped: dict[str, bytes] = field(default_factory=dict)  # etag → compressed body
    # (URL path, gzip?) → the app's answers, replayed by FastPath; at most 2 per URL.
    replies: dict[tuple[str, bool], Replies] = field(default_factory=dict)
    # Request threads share the caches: unguarded, two threads evicting the same oldest
    # entry made the second one's ``del`` a KeyError, a 500.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _words: WordIndex | None = field(default=None, init=False)
    _words_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.dates = modified(self.snapshot, self.loaded)
        self.feeds = {
            f"{feed.spec.path}.{name}": (feed, FORMATS[name])
            for feed in self.snapshot.feeds
            for name in self.snapshot.config.feeds.formats
        }

    def words(self) -> WordIndex:
        """The word index of the snapshot's feeds, built by the first request that needs it:
        most snapshots of a server that reloads are never searched."""
        with self._words_lock:
            if self._words is None:
                self._words = WordIndex(self.snapshot.feeds)
            return self._words


def modified(snapshot: Snapshot, now: datetime) -> dict[str, datetime]:
    """Each file's Last-Modified, from the articles alone, so that every server (replicas,
    restarts) gives the same: a feed document's newest item; for a feed's page, its feed's
    newest item; for the other files (index.html, feeds.opml) the newest item of all. A
    file with no item has none. A date ahead of ``now`` is ``now`` (HTTP allows no later).

    Only a newer item moves it: a change that adds none (an edit, a removal) is seen by the
    ETag, which every reader sends where it has one."""
    config = snapshot.config
    dates: dict[str, datetime] = {}
    for feed in snapshot.feeds:
        if feed.updated is None:
            continue
        dates[f"{feed.spec.path}.html"] = feed.updated
        for doc in paginate(feed, config.feeds.items, config.feeds.archives):
            for name in config.feeds.formats:
                dates[f"{doc.path}.{name}"] = doc.items[0].published
    newest = max(dates.values(), default=None)
    if newest is not None:
        for path in snapshot.files:
            dates.setdefault(path, newest)
    return {path: min(date, now).replace(microsecond=0) for path, date in dates.items()}


class LiveFeeds:
    """The current state, rebuilt in the background when the input files change.

    Where the kernel tells which files change (:class:`feeds.watch.Watcher`), a thread
    rebuilds as soon as they do and reads only those files; elsewhere the files are scanned
    every ``serve.reload_interval`` seconds while requests come. A request never waits for
    a rebuild: it is served from the last good snapshot, and a config or folder that turns
    bad is logged while the last good feeds stay up.

    With ``background``, the first build too runs in a thread (a failed one is tried again
    every :data:`RETRY` seconds) and :meth:`current` is None until it is done: a server
    answers while it loads, and never from a partial set of feeds.
    """

    def __init__(self, publisher: Publisher, watch: bool = True, background: bool = False):
        self.publisher = publisher
        self.metrics = Metrics()
        self.reloader: Reloader | None = None
        self.state: State | None = None
        if background:
            threading.Thread(target=self._load_until_done, args=(watch,), daemon=True).start()
        else:
            self._load(watch)

    def current(self) -> State | None:
        """The state to serve, None until the first load is done; also what keeps it up to
        date (see :meth:`Reloader.keep_up`)."""
        if self.reloader:
            self.reloader.keep_up()
        return self.state

    def refresh(self) -> bool:
        """Bring the feeds up to date with the files as they are now; True if they were
        rebuilt meanwhile (by this call or by the watching thread)."""
        return self.reloader.refresh() if self.reloader else False

    def _load(self, watch: bool) -> None:
        """The first build; raises FeedsError if the config or the articles folder is bad.
        It starts from the parse cache a previous server or `feeds build` left in the output
        folder, so a restart reads only the article files that changed meanwhile."""
        self.publisher.cache.restore(self.publisher.load_config().output_folder)
        reloader = Reloader(self.publisher, self._swap, watch)
        self.metrics.built(reloader.first, reloader.seconds)
        state = self._state(reloader.first)
        self._save_parse_cache(reloader.first)
        # The reloader last: only through it can a rebuild swap in a newer state, which the
        # first one must never replace, and save the parse cache while this thread does.
        self.state = state
        self.reloader = reloader

    def _load_until_done(self, watch: bool) -> None:
        while True:
            try:
                self._load(watch)
                return
            except FeedsError as e:
                log.error("cannot load the feeds (trying again in %s s): %s", RETRY, e)
            time.sleep(RETRY)

    def _swap(self, snapshot: Snapshot) -> list[str]:
        """Serve ``snapshot`` from now on; the paths of the files whose bytes changed."""
        old = self.state.snapshot.files if self.state else {}
        self.state = self._state(snapshot)
        if self.reloader:
            self.metrics.built(snapshot, self.reloader.seconds)
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))
        self._save_parse_cache(snapshot)
        return [p for p, r in snapshot.files.items() if p not in old or old[p].etag != r.etag]

    def _state(self, snapshot: Snapshot) -> State:
        """The state that serves ``snapshot``; it shares the bound on filtered renders with
        the state before while the setting stays the same."""
        bound = snapshot.config.serve.filtered_renders
        old = self.state
        if old and old.snapshot.config.serve.filtered_renders == bound:
            return State(snapshot, old.renders)
        return State(snapshot, threading.BoundedSemaphore(bound))

    def _save_parse_cache(self, snapshot: Snapshot) -> None:
        """Save the parse cache into the output folder (written only when it changed)."""
        folder = snapshot.config.output_folder
        try:
            # Not its parents: a site folder that went away is not made again for the cache.
            folder.mkdir(exist_ok=True)
        except OSError as e:
            log.warning("%s: the parse cache is not kept (%s)", folder, e.strerror)
            return
        self.publisher.cache.save(folder)


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
