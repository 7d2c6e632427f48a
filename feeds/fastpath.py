"""The replay fast path: WSGI middleware that answers the requests readers repeat with the
app's own recorded answers. Plain WSGI, no web framework."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from werkzeug.datastructures import Accept
from werkzeug.http import parse_accept_header

from feeds.live import LiveFeeds, State

STATE_KEY = "feeds.state"  # environ key: the State a recording request must be answered from


@lru_cache(maxsize=64)  # a handful of values in practice; bounded against odd clients
def wants_gzip(accept_encoding: str) -> bool:
    # By quality: "gzip;q=0" refuses it, "*" accepts it.
    return parse_accept_header(accept_encoding, Accept).quality("gzip") > 0


@dataclass(frozen=True)
class Reply:
    """One response as the app gave it to the WSGI server, Date left to the server."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes
    count: Callable[[], None] = field(compare=False)  # counts it in the server's metrics


@dataclass(frozen=True)
class Replies:
    """The app's answers for one URL in one encoding: to GET, to HEAD, and 304."""

    etag: str
    last_modified: str | None  # None for a file with no item: not settled here
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
    one place where behaviour is decided, and the replies are byte-for-byte its own.

    Every answer, replayed or the app's, is counted in the server's metrics: a replayed one
    by increments made ready when it was recorded."""

    def __init__(self, app: Callable, live: LiveFeeds):
        self.app = app
        self.live = live

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        reply = self._reply(environ)
        if reply is None:
            reply = self._call(environ, environ["REQUEST_METHOD"])
        reply.count()
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
        if state is None:
            return None  # not loaded yet: the app says so
        key = (path, wants_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")))
        replies = state.replies.get(key)
        if replies is None:
            if (path[1:] or "index.html") not in state.snapshot.files:
                return None
            replies = self._record(environ, state, key[1])
            if replies is None:
                return None
            state.replies.put(key, replies)
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
        etag, last_modified = headers["ETag"], headers.get("Last-Modified")
        not_modified = self._call({**base, "HTTP_IF_NONE_MATCH": etag}, "GET")
        return Replies(etag, last_modified, get, self._call(base, "HEAD"), not_modified)

    def _call(self, environ: dict, method: str) -> Reply:
        """The app's answer, whole: its bodies are bytes in memory, never streamed."""
        started: list = []
        body = self.app(
            {**environ, "REQUEST_METHOD": method},
            lambda status, headers, exc_info=None: started.extend((status, headers)),
        )
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        status, headers = started[-2:]  # the last call, if an error replaced the answer
        count = self.live.metrics.tally(status, environ.get("PATH_INFO", ""), len(data))
        return Reply(status, [(k, v) for k, v in headers if k.lower() != "date"], data, count)
