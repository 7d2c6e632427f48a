"""The Flask app: serves a publisher's feeds from memory and reloads them when files change."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from feeds.errors import FeedsError
from feeds.filters import ItemFilter
from feeds.model import Document, Feed, Rendered
from feeds.publisher import Publisher, Snapshot, feed_urls
from feeds.render import FORMATS, Format, Renderer
from feeds.websub import Notifier

log = logging.getLogger(__name__)

MAX_QUERY = 1000  # bytes of query string
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
    # Request threads share the caches: unguarded, two threads evicting the same oldest
    # entry made the second one's ``del`` a KeyError, a 500.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.feeds = {
            f"{feed.spec.path}.{name}": (feed, FORMATS[name])
            for feed in self.snapshot.feeds
            for name in self.snapshot.config["feeds.formats"]
        }


class LiveFeeds:
    """The current state, rebuilt in the background when the input files change.

    A request never waits for a rebuild: it is served from the last good snapshot, and a
    config or folder that turns bad is logged while the last good feeds stay up.
    """

    def __init__(self, publisher: Publisher):
        self.publisher = publisher
        self._inputs = publisher.inputs()
        snapshot = publisher.build()  # a bad config at start-up is the caller's to report
        now = _now()
        self.state = State(snapshot, {path: now for path in snapshot.files})
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._notifier: Notifier | None = None

    def current(self) -> State:
        """The state to serve; starts a background reload when it is time to look."""
        interval = self.state.snapshot.config["serve.reload_interval"]
        if time.monotonic() - self._checked >= interval and self._lock.acquire(blocking=False):
            self._checked = time.monotonic()
            threading.Thread(target=self._refresh_locked, daemon=True).start()
        return self.state

    def refresh(self) -> bool:
        """Rebuild now if the inputs changed; True if the feeds were rebuilt."""
        with self._lock:
            return self._refresh()

    def _refresh_locked(self) -> None:
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> bool:
        inputs = self.publisher.inputs()
        if inputs == self._inputs:
            return False
        try:
            snapshot = self.publisher.build()
        except FeedsError as e:
            self._inputs = inputs  # retried when the files change again
            log.error("keeping the last good feeds: %s", e)
            return False
        self._inputs = inputs
        old, now = self.state, _now()
        dates = {path: _changed_at(path, r.etag, old, now) for path, r in snapshot.files.items()}
        self.state = State(snapshot, dates)
        self._tell_hub(snapshot, [p for p in dates if dates[p] != old.dates.get(p)])
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))
        return True

    def _tell_hub(self, snapshot: Snapshot, changed: list[str]) -> None:
        """Queue the changed feeds for the configured WebSub hub, if any (never waits)."""
        hub = snapshot.config["websub.hub"]
        if self._notifier and self._notifier.hub != hub:
            self._notifier.close(timeout=0)
            self._notifier = None
        urls = feed_urls(snapshot, changed)
        if hub and urls:
            self._notifier = self._notifier or Notifier(hub)
            self._notifier.notify(urls)


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


def _filtered(state: State, path: str) -> Rendered | None:
    """The feed at ``path`` narrowed by the request's filter parameters, if it has any."""
    if path not in state.feeds:
        return None
    feed, fmt = state.feeds[path]
    try:
        item_filter = ItemFilter.from_args(request.args, feed.spec.kind)
    except FeedsError as e:
        raise BadRequest(str(e)) from None
    if item_filter is None:
        return None
    query = request.query_string.decode()

    def render() -> Rendered:
        config = state.snapshot.config
        renderer = Renderer(config)
        items = item_filter.apply(feed.items, config["feeds.items"])
        self_url = f"{renderer.url(feed.spec.path, fmt)}?{query}"
        return renderer.render_as(Document(feed, items, feed.spec.path), fmt, self_url)

    # The body's self link is the whole query, so that is the key, not the filter alone:
    # else ``?limit=5`` got the bytes first rendered for ``?limit=5&_=1``.
    return _cached(state, state.filtered, (path, query), render, FILTER_CACHE)


def _gzipped(state: State, rendered: Rendered) -> bytes:
    """The body compressed once per version (mtime 0: the same bytes every time)."""
    # Bounded like the filtered feeds: each filtered URL has its own bytes and ETag, and
    # an unbounded cache grew by one body per distinct query string until the next reload.
    limit = len(state.snapshot.files) + FILTER_CACHE
    return _cached(
        state, state.gzipped, rendered.etag, lambda: gzip.compress(rendered.body, 6, mtime=0), limit
    )


def _cached(state: State, cache: dict, key: Any, make: Callable[[], T], limit: int) -> T:
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


def create_app(config_path: str | Path = "config.yaml") -> Flask:
    """The app serving the feeds of ``config_path``; raises ConfigError if it is invalid."""
    app = Flask(__name__)
    live = LiveFeeds(Publisher(config_path))
    app.extensions["feeds"] = live

    @app.errorhandler(HTTPException)
    def plain_error(error: HTTPException) -> Response:
        response = error.get_response()
        reason = f": {error.description}" if isinstance(error, BadRequest) else ""
        response.set_data(f"{error.code} {error.name}{reason}\n")
        response.content_type = "text/plain; charset=utf-8"
        return response

    @app.get("/")
    def index() -> Response:
        return serve("index.html")

    @app.get("/<path:path>")
    def serve(path: str) -> Response:
        if len(request.query_string) > MAX_QUERY:
            raise BadRequest(f"query string longer than {MAX_QUERY} bytes")
        state = live.current()
        rendered = _filtered(state, path) or state.snapshot.files.get(path)
        if rendered is None:
            raise NotFound()
        compress = "gzip" in request.accept_encodings
        body = _gzipped(state, rendered) if compress else rendered.body
        response = Response(body, content_type=f"{rendered.media_type}; charset=utf-8")
        # A different representation needs a different strong validator.
        response.set_etag(rendered.etag.strip('"') + ("-gzip" if compress else ""))
        response.last_modified = state.dates.get(path)
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        response.cache_control.public = True
        response.cache_control.max_age = state.snapshot.config["feeds.max_age"]
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)

    return app
