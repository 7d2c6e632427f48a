"""What the server serves: the current snapshot with what it derives from it, kept up to
date by a :class:`feeds.rebuild.Reloader`. No web framework here."""

from __future__ import annotations

import contextlib
import gzip
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from feeds.config import Config
from feeds.errors import FeedsError
from feeds.handover import keep_stored, modified
from feeds.lru import Lru
from feeds.metrics import Metrics
from feeds.model import Feed, File, Rendered
from feeds.publisher import Publisher, Snapshot
from feeds.rebuild import Reloader
from feeds.render import FORMATS, Format
from feeds.search import WordIndex
from feeds.store import Store

if TYPE_CHECKING:
    from feeds.fastpath import Replies

log = logging.getLogger(__name__)

FILTER_CACHE = 256  # filtered feeds kept rendered
RETRY = 5.0  # seconds between tries of a first load that failed
MIB = 1024 * 1024
REPLY_OVERHEAD = 2048  # bytes of a recorded answer besides its bodies: headers, objects


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # HTTP dates have whole seconds


@dataclass
class State:
    """One snapshot with what the server derives from it; replaced whole on reload."""

    snapshot: Snapshot
    # Filtered feeds being rendered: at most serve.filtered_renders at once, counted across
    # reloads (renders still running on the state before count too: see LiveFeeds._renders).
    renders: threading.BoundedSemaphore
    gzipped: Lru[bytes]  # compressed bodies by ETag, shared by the states that follow
    # Served from the index a previous run left (see feeds.store) while the feeds load:
    # every file is there, but no articles to filter.
    restored: bool = False
    dates: dict[str, datetime] = field(default_factory=dict)  # each file's Last-Modified
    loaded: datetime = field(default_factory=lambda: _now())  # when it began to be served
    feeds: dict[str, tuple[Feed, Format]] = field(init=False)  # feed URL path → its feed
    filtered: Lru[Rendered] = field(default_factory=lambda: Lru(FILTER_CACHE))
    # (URL path, gzip?) → the app's answers, replayed by FastPath; at most 2 per URL.
    replies: Lru[Replies] = field(init=False)
    _words: WordIndex | None = field(default=None, init=False)
    _words_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        config = self.snapshot.config
        if not self.restored:
            self.dates = modified(self.snapshot, self.loaded)
        self.feeds = {
            f"{feed.spec.path}.{name}": (feed, FORMATS[name])
            for feed in self.snapshot.feeds
            for name in config.feeds.formats
        }
        self.replies = Lru(config.serve.memory * MIB // 2, _reply_size)

    def words(self) -> WordIndex:
        """The word index of the snapshot's feeds, built by the first request that needs it:
        most snapshots of a server that reloads are never searched."""
        with self._words_lock:
            if self._words is None:
                self._words = WordIndex(self.snapshot.feeds)
            return self._words


def _reply_size(replies: Replies) -> int:
    return REPLY_OVERHEAD + sum(
        len(r.body) for r in (replies.get, replies.head, replies.not_modified)
    )


class LiveFeeds:
    """The current state, rebuilt in the background when the input files change.

    Where the kernel tells which files change (:class:`feeds.watch.Watcher`), a thread
    rebuilds as soon as they do and reads only those files; elsewhere the files are scanned
    every ``serve.reload_interval`` seconds while requests come. A request never waits for
    a rebuild: it is served from the last good snapshot, and a config or folder that turns
    bad is logged while the last good feeds stay up.

    With ``background``, the first build too runs in a thread (a failed one is tried again
    every :data:`RETRY` seconds) and :meth:`current` is None until it is done: a server
    answers while it loads, and never from a partial set of feeds. Meanwhile it serves the
    files the last server kept, if made with the same config and code (:mod:`feeds.store`).
    """

    def __init__(self, publisher: Publisher, watch: bool = True, background: bool = False):
        self.publisher = publisher
        self.metrics = Metrics()
        self.reloader: Reloader | None = None
        self.state: State | None = None
        with contextlib.suppress(FeedsError):  # a bad config: the first load reports it
            self._restore(publisher.load_config())
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

    def lost(self) -> None:
        """The stored files were found gone: render them again, soon."""
        if self.reloader:
            self.reloader.rebuild_soon()

    def _load(self, watch: bool) -> None:
        """The first build; raises FeedsError if the config or the articles folder is bad.

        It starts from the parse cache a previous server or `feeds build` left in the output
        folder, so a restart reads only the article files that changed meanwhile, and
        renders only the documents that changed (see :meth:`_restore`)."""
        config = self.publisher.load_config()
        self.publisher.cache.restore(config.output_folder)
        reloader = Reloader(self.publisher, self._swap, watch)
        old, self.state = self.state, self._state(reloader.first)  # served from now on
        self.metrics.built(reloader.first, reloader.seconds)
        self._keep(self.state, old)
        # The reloader last: only through it can a rebuild swap in a newer state, which the
        # first one must never replace, and save the parse cache while this thread does.
        self.reloader = reloader

    def _restore(self, config: Config) -> None:
        """Serve the files the last run kept for ``config``, if there are any, until the
        first load is done (and reuse them there)."""
        if not self.publisher.stored:
            return
        kept = Store.of(config).load(config)
        if kept is None:
            return
        snapshot = Snapshot(config, (), MappingProxyType(kept.files), 0, ())
        gzipped = self._gzipped(config)
        self.state = State(snapshot, self._renders(config), gzipped, True, kept.dates)
        self.publisher.resume(config, kept)
        log.info("serving the %d files of the last run while the feeds load", len(kept.files))

    def _load_until_done(self, watch: bool) -> None:
        while True:
            try:
                self._load(watch)
                # This thread runs in the process that serves: follow the changes from now,
                # not from the first request that needs the feeds.
                self.current()
                return
            except FeedsError as e:
                log.error("cannot load the feeds (trying again in %s s): %s", RETRY, e)
            time.sleep(RETRY)

    def _swap(self, snapshot: Snapshot) -> list[str]:
        """Serve ``snapshot`` from now on; the paths of the files whose bytes changed."""
        old = self.state
        self.state = self._state(snapshot)
        if self.reloader:
            self.metrics.built(snapshot, self.reloader.seconds)
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))
        self._keep(self.state, old)
        before = old.snapshot.files if old else {}
        return [p for p, r in snapshot.files.items() if p not in before or before[p].etag != r.etag]

    def _state(self, snapshot: Snapshot) -> State:
        """The state that serves ``snapshot``; it shares the bound on filtered renders with
        the state before while the setting stays the same."""
        config = snapshot.config
        return State(snapshot, self._renders(config), self._gzipped(config))

    def _renders(self, config: Config) -> threading.BoundedSemaphore:
        old = self.state
        bound = config.serve.filtered_renders
        if old and old.snapshot.config.serve.filtered_renders == bound:
            return old.renders
        return threading.BoundedSemaphore(bound)

    def _gzipped(self, config: Config) -> Lru[bytes]:
        old = self.state
        if old and old.snapshot.config.serve.memory == config.serve.memory:
            return old.gzipped
        return Lru(config.serve.memory * MIB // 2, len)

    def _keep(self, state: State, old: State | None) -> None:
        """Keep in the output folder what the next start needs: the parse cache, and the
        index of the files stored (those only ``old`` used are let go). Each is written
        only when it changed."""
        snapshot = state.snapshot
        folder = snapshot.config.output_folder
        try:
            # Not its parents: a site folder that went away is not made again for the cache.
            folder.mkdir(exist_ok=True)
        except OSError as e:
            log.warning("%s: the parse cache is not kept (%s)", folder, e.strerror)
            return
        self.publisher.cache.save(folder)
        if self.publisher.stored:
            keep_stored(self.publisher, snapshot, state.dates, old.snapshot.files if old else {})


def gzipped(state: State, file: File) -> bytes:
    """The body compressed once per version (mtime 0: the same bytes every time)."""
    return state.gzipped.get_or_make(file.etag, lambda: gzip.compress(file.body, 6, mtime=0))
