"""The Flask app: serves a publisher's feeds from memory and reloads them when files change."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from feeds.errors import FeedsError
from feeds.publisher import Publisher, Snapshot

log = logging.getLogger(__name__)


class LiveFeeds:
    """The current snapshot, rebuilt in the background when the input files change.

    A request never waits for a rebuild: it is served from the last good snapshot, and a
    config or folder that turns bad is logged while the last good feeds stay up.
    """

    def __init__(self, publisher: Publisher):
        self.publisher = publisher
        self._inputs = publisher.inputs()
        snapshot = publisher.build()  # a bad config at start-up is the caller's to report
        now = _now()
        # Swapped as one value, so a request sees a snapshot with its own dates.
        self.state: tuple[Snapshot, dict[str, datetime]] = (
            snapshot,
            {path: now for path in snapshot.files},
        )
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def current(self) -> tuple[Snapshot, dict[str, datetime]]:
        """The snapshot to serve and when each of its files last changed."""
        interval = self.state[0].config["serve.reload_interval"]
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
        (old, dates), now = self.state, _now()
        changed = {
            path: _changed_at(path, r.etag, old, dates, now) for path, r in snapshot.files.items()
        }
        self.state = (snapshot, changed)
        log.info("reloaded: %d articles, %d files", snapshot.articles, len(snapshot.files))
        return True


def _changed_at(
    path: str, etag: str, old: Snapshot, dates: dict[str, datetime], now: datetime
) -> datetime:
    """A file's Last-Modified: kept while its bytes stay, else later than it was before.

    HTTP dates have whole seconds, so a change within the second of the previous one is
    dated a second later: a reader sending only If-Modified-Since still gets the new bytes."""
    if path not in dates:
        return now
    if old.files[path].etag == etag:
        return dates[path]
    return max(now, dates[path] + timedelta(seconds=1))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # HTTP dates have whole seconds


def create_app(config_path: str | Path = "config.yaml") -> Flask:
    """The app serving the feeds of ``config_path``; raises ConfigError if it is invalid."""
    app = Flask(__name__)
    live = LiveFeeds(Publisher(config_path))
    app.extensions["feeds"] = live

    @app.errorhandler(HTTPException)
    def plain_error(error: HTTPException) -> Response:
        response = error.get_response()
        response.set_data(f"{error.code} {error.name}\n")
        response.content_type = "text/plain; charset=utf-8"
        return response

    @app.get("/<path:path>")
    def feed(path: str) -> Response:
        snapshot, dates = live.current()
        rendered = snapshot.files.get(path)
        if rendered is None:
            return Response("Not Found\n", 404, mimetype="text/plain")
        response = Response(rendered.body, content_type=f"{rendered.media_type}; charset=utf-8")
        response.set_etag(rendered.etag.strip('"'))
        response.last_modified = dates[path]
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)

    return app
