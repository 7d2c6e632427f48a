"""The replay fast path: its answers are byte for byte the app's own."""

from __future__ import annotations

import gzip
import itertools
import time
import urllib.request
from urllib.error import HTTPError

from werkzeug.test import Client, EnvironBuilder

from feeds.fastpath import FastPath
from feeds.web import create_app

from .conftest import FIRST, LOCAL, SECOND, THIRD, article, titles

# --- the fast path ---------------------------------------------------------------------------

CONDITIONS = [
    {},
    {"If-None-Match": "{etag}"},
    {"If-None-Match": '"something-else"'},
    {"If-None-Match": "W/{etag}"},
    {"If-None-Match": '"other", {etag}'},
    {"If-None-Match": "*"},
    {"If-None-Match": ""},
    {"If-Modified-Since": "{last_modified}"},
    {"If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"},
    {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
    {"If-Modified-Since": "not a date"},
    {"If-None-Match": '"something-else"', "If-Modified-Since": "{last_modified}"},
    {"If-None-Match": "{etag}", "If-Match": '"nope"'},
]
ENCODINGS = [None, "gzip", "gzip, deflate, br", "br", "gzip;q=0", "*", "identity"]


def _answer(wsgi_app, path: str, method: str, headers: dict) -> tuple:
    response = Client(wsgi_app).open(path, method=method, headers=headers)
    kept = [(k, v) for k, v in response.headers.items() if k != "Date"]
    return response.status, kept, response.get_data()


def test_the_fast_path_answers_exactly_as_the_app(site, app):
    """Every request the fast path may answer gets the app's own status, headers and bytes."""
    site.write("third.md", article(n=3, title=THIRD, topics=["Chips"]))
    app.extensions["feeds"].refresh()
    fast = app.wsgi_app
    assert isinstance(fast, FastPath)
    paths = ["/", "/index.html", "/all.rss", "/all.atom", "/all.json", "/topics/ai.rss"]
    paths += ["/topics/chips.html", "/feeds.opml", "/nope.rss", "/all.rss/", "/all.rss?_=1"]
    replayed = 0
    validators = {}  # (path, encoding) → its ETag and Last-Modified: the feeds do not change
    for path, method, encoding, condition in itertools.product(
        paths, ["GET", "HEAD"], ENCODINGS, CONDITIONS
    ):
        headers = {"Accept-Encoding": encoding} if encoding else {}
        if (path, encoding) not in validators:
            first = Client(fast.app).get(path, headers=headers).headers
            validators[path, encoding] = first.get("ETag", ""), first.get("Last-Modified", "")
        etag, last_modified = validators[path, encoding]
        headers.update(
            {k: v.format(etag=etag, last_modified=last_modified) for k, v in condition.items()}
        )
        environ = EnvironBuilder(path=path, method=method, headers=headers).get_environ()
        replayed += fast._reply(environ) is not None

        assert _answer(fast, path, method, headers) == _answer(fast.app, path, method, headers), (
            path,
            method,
            headers,
        )
    assert replayed > 500  # most of them were answered by the fast path itself


def test_the_fast_path_leaves_unusual_requests_to_the_app(client, app):
    fast = app.wsgi_app
    etag = client.get("/all.rss").headers["ETag"]

    def replays(path="/all.rss", method="GET", **options) -> bool:
        return (
            fast._reply(EnvironBuilder(path=path, method=method, **options).get_environ())
            is not None
        )

    assert replays() and replays(method="HEAD") and replays(path="/")
    assert replays(headers={"If-None-Match": etag})
    assert not replays(path="/all.rss?limit=1")
    assert not replays(method="POST")
    assert not replays(path="/nope.rss")
    assert not replays(data="x")
    assert not replays(headers={"If-None-Match": f"W/{etag}"})
    assert not replays(headers={"If-Match": etag})
    assert not replays(headers={"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})


def test_the_fast_path_starts_reloads_and_serves_the_new_feeds(site):
    site.configure(serve={"reload_interval": 0})
    site.write("first.md", article(n=1, title=FIRST))
    app = create_app(site.config_path)
    client = app.test_client()
    old = client.get("/all.rss", headers={"Accept-Encoding": "gzip"})
    old_state = app.extensions["feeds"].state
    assert old_state.replies  # answered from recorded replies

    site.write("second.md", article(n=2, title=SECOND))
    deadline = time.monotonic() + 5
    while app.extensions["feeds"].state is old_state and time.monotonic() < deadline:
        client.get("/all.rss", headers={"Accept-Encoding": "gzip"})  # only the fast path
        time.sleep(0.05)

    new = client.get("/all.rss", headers={"Accept-Encoding": "gzip"})
    assert titles(gzip.decompress(new.data)) == [SECOND, FIRST]
    assert new.headers["ETag"] != old.headers["ETag"]
    again = client.get(
        "/all.rss", headers={"Accept-Encoding": "gzip", "If-None-Match": old.headers["ETag"]}
    )
    assert again.status_code == 200


def _raw(url: str, headers: dict, method: str = "GET") -> tuple:
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        response = LOCAL.open(request, timeout=5)
    except HTTPError as e:
        response = e
    with response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        assert headers.pop("date").endswith(" GMT")  # the server's own, on every answer
        return response.status, headers, response.read()


def test_over_http_the_fast_path_and_the_app_send_the_same_response(server):
    """``?_=1`` changes nothing in the answer but sends the request through the app."""
    url = server + "all.atom"
    etag = _raw(url, {"Accept-Encoding": "gzip"})[1]["etag"]
    for method in ("GET", "HEAD"):
        for headers in (
            {},
            {"Accept-Encoding": "gzip"},
            {"Accept-Encoding": "gzip", "If-None-Match": etag},
        ):
            fast = _raw(url, headers, method)
            assert fast == _raw(url + "?_=1", headers, method), (method, headers)
            assert fast[0] in (200, 304)
