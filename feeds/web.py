"""The Flask app: serves a publisher's feeds from memory (see :mod:`feeds.live`), behind
the replay fast path (:mod:`feeds.fastpath`)."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    NotFound,
    RequestEntityTooLarge,
    ServiceUnavailable,
)
from werkzeug.wrappers import Response as BaseResponse

from feeds.errors import FeedsError
from feeds.fastpath import STATE_KEY, FastPath, wants_gzip
from feeds.filters import ItemFilter, asks_filter
from feeds.html import OPML
from feeds.live import LiveFeeds, State, gzipped
from feeds.lowpriority import LowPriority
from feeds.metrics import MEDIA_TYPE as METRICS_MEDIA_TYPE
from feeds.model import FORMAT_NAMES, MEDIA_TYPES, Document, Rendered
from feeds.publisher import Publisher
from feeds.render import Renderer
from feeds.store import Missing

log = logging.getLogger(__name__)

MAX_QUERY = 1000  # bytes of query string
MAX_BODY = 1024  # bytes of request body (readers send none)
RETRY_AFTER = 5  # seconds a reader is asked to wait while the feeds load
BUSY_RETRY_AFTER = 1  # seconds a client refused a filtered feed is asked to wait
# What other sites' pages may fetch (Access-Control-Allow-Origin: *): the feeds, JSON Feed
# included, and the OPML lists; not the pages, their style sheet and script.
_FOR_READERS = frozenset([*MEDIA_TYPES.values(), OPML])


def _filtered(state: State, path: str, low: LowPriority) -> Rendered | None:
    """The feed at ``path`` narrowed by the request's filter parameters, if it has any."""
    if state.restored and path.rpartition(".")[2] in FORMAT_NAMES and asks_filter(request.args):
        raise ServiceUnavailable("the feeds are loading", retry_after=RETRY_AFTER)
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
        items = state.words().apply(item_filter, feed, config.feeds.items)
        self_url = f"{renderer.url(feed.spec.path, fmt)}?{query}"
        return renderer.render_as(Document(feed, items, feed.spec.path), fmt, self_url)

    def render_bounded() -> Rendered:
        # Refused at once past the bound, not queued: waiting requests would hold the
        # threads that plain feeds are answered on. Rendered on a thread of low priority,
        # so that the plain feeds' request threads get the CPU first.
        if not state.renders.acquire(blocking=False):
            raise ServiceUnavailable("busy with filtered feeds", retry_after=BUSY_RETRY_AFTER)
        try:
            return low.run(render)
        finally:
            state.renders.release()

    # The body's self link is the whole query, so that is the key, not the filter alone:
    # else ``?limit=5`` got the bytes first rendered for ``?limit=5&_=1``.
    return state.filtered.get_or_make((path, query), render_bounded)


def create_app(config_path: str | Path = "config.yaml", background: bool = False) -> Flask:
    """The app serving the feeds of ``config_path``; raises ConfigError if it is invalid.

    With ``background`` it returns at once and builds the feeds in a thread, answering 503
    meanwhile (a config or folder found bad is then logged and tried again)."""
    app = Flask(__name__)
    live = LiveFeeds(Publisher(config_path, stored=True), background=background)
    app.extensions["feeds"] = live
    low = LowPriority()  # where filtered feeds are rendered
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

    @app.get("/healthz")
    def healthz() -> BaseResponse:
        if live.state is None:
            return _plain("loading\n", 503)
        return _plain("ok\n", 200)

    @app.get("/metrics")
    def metrics() -> BaseResponse:
        return Response(live.metrics.exposition(), content_type=METRICS_MEDIA_TYPE)

    @app.get("/")
    def index() -> BaseResponse:
        return serve("index.html")

    @app.get("/<path:path>")
    def serve(path: str) -> BaseResponse:
        if len(request.query_string) > MAX_QUERY:
            raise BadRequest(f"query string longer than {MAX_QUERY} bytes")
        state = request.environ.get(STATE_KEY) or live.current()
        if state is None:  # never a partial set of feeds: none until the first load is done
            raise ServiceUnavailable(retry_after=RETRY_AFTER)
        rendered = _filtered(state, path, low) or state.snapshot.files.get(path)
        if rendered is None:
            raise NotFound()
        compress = wants_gzip(request.headers.get("Accept-Encoding", ""))
        try:
            body = gzipped(state, rendered) if compress else rendered.body
        except Missing as e:  # the stored files were removed under the server
            log.error("%s; rendering the feeds again", e)
            live.lost()
            raise ServiceUnavailable(retry_after=RETRY_AFTER) from None
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
        if rendered.media_type in _FOR_READERS:  # for feed readers that run in browsers
            response.access_control_allow_origin = "*"
        return response.make_conditional(request)

    return app


def _plain(text: str, status: int) -> BaseResponse:
    response = Response(text, status, content_type="text/plain; charset=utf-8")
    response.cache_control.no_store = True  # the state of this server, now
    return response
