"""The Flask app: serves a publisher's feeds from memory and reloads them when files change."""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, Response, request
from werkzeug.datastructures import Accept
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Response as BaseResponse

from feeds.errors import FeedsError
from feeds.filters import ItemFilter
from feeds.model import Document, Feed, Rendered
from feeds.publisher import Publisher, Snapshot, feed_urls
from feeds.rebuild import Rebuilder
from feeds.render import FORMATS, Format, Renderer
from feeds.websub import Notifier

log = logging.getLogger(__name__)

MAX_QUERY = 1000  # bytes of query string
MAX_BODY = 1024  # bytes of request body (readers send none)
FILTER_CACHE = 256  # filtered feeds kept rendered
STATE_KEY = "feeds.state"  # environ key: the State a recording request must be answered from

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

    def __post_init__(self) -> None:
        self.feeds = {
            f"{feed.spec.path}.{name}": (feed, FORMATS[name])
            for feed in self.snapshot.feeds
            for name in self.snapshot.config.feeds.formats
        }


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
        self._rebuilder = Rebuilder(publisher, watch)
        snapshot = self._rebuilder.first
        now = _now()
        self.state = State(snapshot, {path: now for path in snapshot.files})
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._rebuilds = 0
        self._notifier: Notifier | None = None
        self._follower: int | None = None  # the process whose thread follows the watcher

    def current(self) -> State:
        """The state to serve. Starts the thread that follows the watcher, in the process
        that serves (a server's worker is forked from the one that built, without its
        threads); without a watcher, starts a background reload when it is time to look."""
        if self._rebuilder.watcher:
            if self._follower != os.getpid():
                self._follow_here()
            return self.state
        interval = self.state.snapshot.config.serve.reload_interval
        if time.monotonic() - self._checked >= interval and self._lock.acquire(blocking=False):
            self._checked = time.monotonic()
            threading.Thread(target=self._refresh_locked, daemon=True).start()
        return self.state

    def _follow_here(self) -> None:
        with self._lock:
            self._start_following()

    def _start_following(self) -> None:
        """Start the thread that follows the watcher, unless it runs; hold ``_lock``."""
        if self._follower != os.getpid():
            self._follower = os.getpid()
            threading.Thread(
                target=self._follow, args=(weakref.ref(self),), name="feeds-watch", daemon=True
            ).start()

    def refresh(self) -> bool:
        """Bring the feeds up to date with the files as they are now; True if they were
        rebuilt meanwhile (by this call or by the watching thread)."""
        seen = self._rebuilds
        with self._lock:
            self._refresh()
        return self._rebuilds != seen

    @staticmethod
    def _follow(ref: weakref.ref[LiveFeeds]) -> None:
        """The watching thread: rebuilds when files change, for as long as the LiveFeeds
        lives. It holds it weakly, so that an app dropped (in tests) is collected, its
        watcher closed and this thread ended."""
        while (live := ref()) and live._rebuilder.watcher:
            rebuilder = live._rebuilder
            interval = live.state.snapshot.config.serve.reload_interval
            del live
            rebuilder.wait(interval)
            del rebuilder
            if live := ref():
                try:
                    live.refresh()
                except Exception:  # the thread lives on: the next change is built afresh
                    log.exception("reload failed; keeping the last good feeds")
        if live:  # it stopped watching: a watcher made later (see Rebuilder) gets a thread
            live._follower = None

    def _refresh_locked(self) -> None:
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        snapshot = self._rebuilder.rebuild()
        if self._rebuilder.watcher and self._follower is None:
            self._start_following()  # watching again (see Rebuilder): from now, not at a request
        if snapshot is None:
            return
        old, now = self.state, _now()
        dates = {path: _changed_at(path, r.etag, old, now) for path, r in snapshot.files.items()}
        self.state = State(snapshot, dates)
        self._rebuilds += 1
        self._tell_hub(snapshot, [p for p in dates if dates[p] != old.dates.get(p)])
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))

    def _tell_hub(self, snapshot: Snapshot, changed: list[str]) -> None:
        """Queue the changed feeds for the configured WebSub hub, if any (never waits)."""
        hub = snapshot.config.websub.hub
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
        items = item_filter.apply(feed.items, config.feeds.items)
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


@lru_cache(maxsize=64)  # a handful of values in practice; bounded against odd clients
def _wants_gzip(accept_encoding: str) -> bool:
    # By quality: "gzip;q=0" refuses it, "*" accepts it.
    return parse_accept_header(accept_encoding, Accept).quality("gzip") > 0


@dataclass(frozen=True)
class Reply:
    """One response as the app gave it to the WSGI server, Date left to the server."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Replies:
    """The app's answers for one URL in one encoding: to GET, to HEAD, and 304."""

    etag: str
    last_modified: str
    get: Reply
    head: Reply
    not_modified: Reply


# Request headers that can change the answer beyond what FastPath checks.
UNUSUAL = ("CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_IF_MATCH", "HTTP_RANGE")


class FastPath:
    """WSGI middleware that replays the app's own answers to the requests readers repeat.

    A GET or HEAD of a rendered file, with no query string or body, and with no condition
    or an If-None-Match / If-Modified-Since it can settle by comparing strings, gets the
    status, headers and bytes the app gave the first time, recorded once per URL, encoding
    and snapshot (a reload starts from none). Everything else goes to the app: it stays the
    one place where behaviour is decided, and the replies are byte-for-byte its own."""

    def __init__(self, app: Callable, live: LiveFeeds):
        self.app = app
        self.live = live

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        reply = self._reply(environ)
        if reply is None:
            return self.app(environ, start_response)
        start_response(reply.status, list(reply.headers))  # a server may add to it
        return [reply.body]

    def _reply(self, environ: dict) -> Reply | None:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if (
            method not in ("GET", "HEAD")
            or environ.get("QUERY_STRING")
            or not path.startswith("/")
            or not environ.keys().isdisjoint(UNUSUAL)
        ):
            return None
        state = self.live.current()  # also what starts a reload when it is time
        key = (path, _wants_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")))
        replies = state.replies.get(key)
        if replies is None:
            if (path[1:] or "index.html") not in state.snapshot.files:
                return None
            replies = self._record(environ, state, key[1])
            if replies is None:
                return None
            state.replies[key] = replies
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:
            # The app settles lists, weak and unquoted tags; one other strong tag is a miss.
            if match == replies.etag:
                return replies.not_modified
            if not (len(match) > 1 and match[0] == '"' and match.find('"', 1) == len(match) - 1):
                return None
        elif (since := environ.get("HTTP_IF_MODIFIED_SINCE")) is not None:
            return replies.not_modified if since == replies.last_modified else None
        return replies.head if method == "HEAD" else replies.get

    def _record(self, environ: dict, state: State, gzip: bool) -> Replies | None:
        """Ask the app, answering from ``state``, for the URL of ``environ`` three ways."""
        base = {k: v for k, v in environ.items() if not k.startswith("HTTP_") or k == "HTTP_HOST"}
        base[STATE_KEY] = state
        if gzip:
            base["HTTP_ACCEPT_ENCODING"] = "gzip"
        get = self._call(base, "GET")
        if not get.status.startswith("200 "):
            return None  # not for replaying: the app answers each such request itself
        headers = dict(get.headers)
        etag, last_modified = headers["ETag"], headers["Last-Modified"]
        not_modified = self._call({**base, "HTTP_IF_NONE_MATCH": etag}, "GET")
        return Replies(etag, last_modified, get, self._call(base, "HEAD"), not_modified)

    def _call(self, environ: dict, method: str) -> Reply:
        started: list = []
        body = self.app(
            {**environ, "REQUEST_METHOD": method},
            lambda status, headers, exc_info=None: started.extend((status, headers)),
        )
        try:
            data = b"".join(body)
        finally:
            body.close()
        status, headers = started
        return Reply(status, [(k, v) for k, v in headers if k.lower() != "date"], data)


def create_app(config_path: str | Path = "config.yaml") -> Flask:
    """The app serving the feeds of ``config_path``; raises ConfigError if it is invalid."""
    app = Flask(__name__)
    live = LiveFeeds(Publisher(config_path))
    app.extensions["feeds"] = live
    app.wsgi_app = FastPath(app.wsgi_app, live)  # type: ignore[method-assign]  # Flask's way

    @app.errorhandler(HTTPException)
    def plain_error(error: HTTPException) -> BaseResponse:
        response = error.get_response()
        reason = f": {error.description}" if isinstance(error, BadRequest) else ""
        response.set_data(f"{error.code} {error.name}{reason}\n")
        response.content_type = "text/plain; charset=utf-8"
        return response

    @app.before_request
    def refuse_bodies() -> None:
        # Readers send none, and granian reads none the app does not ask for.
        if (request.content_length or 0) > MAX_BODY:
            raise RequestEntityTooLarge()

    @app.get("/")
    def index() -> BaseResponse:
        return serve("index.html")

    @app.get("/<path:path>")
    def serve(path: str) -> BaseResponse:
        if len(request.query_string) > MAX_QUERY:
            raise BadRequest(f"query string longer than {MAX_QUERY} bytes")
        state = request.environ.get(STATE_KEY) or live.current()
        rendered = _filtered(state, path) or state.snapshot.files.get(path)
        if rendered is None:
            raise NotFound()
        compress = _wants_gzip(request.headers.get("Accept-Encoding", ""))
        body = _gzipped(state, rendered) if compress else rendered.body
        response = Response(body, content_type=f"{rendered.media_type}; charset=utf-8")
        # A different representation needs a different strong validator.
        response.set_etag(rendered.etag.strip('"') + ("-gzip" if compress else ""))
        response.last_modified = state.dates.get(path)
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        response.cache_control.public = True
        response.cache_control.max_age = state.snapshot.config.feeds.max_age
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)

    return app
