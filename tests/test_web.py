"""The server: same bytes as the static export, conditional GETs, 404s, live reload."""

from __future__ import annotations

import email.utils
import gzip
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError

import feedparser
import pytest
from werkzeug.test import Client, EnvironBuilder

from feeds.errors import ConfigError
from feeds.export import export
from feeds.publisher import Publisher
from feeds.web import FastPath, create_app

from .conftest import LOCAL, article, free_port, serving

FIRST = "Robots learn to fold laundry"
SECOND = "A chatbot passes the bar exam"
THIRD = "Chips get smaller again"

MEDIA_TYPES = {
    "all.rss": "application/rss+xml; charset=utf-8",
    "all.atom": "application/atom+xml; charset=utf-8",
}


def titles(body: bytes) -> list[str]:
    """Entry titles of a feed, newest first; fails if a feed reader would balk at it."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [entry.title for entry in parsed.entries]


def http_date_before(value: str, days: int) -> str:
    return email.utils.format_datetime(
        email.utils.parsedate_to_datetime(value) - timedelta(days=days), usegmt=True
    )


@pytest.fixture
def app(site):
    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    return create_app(site.config_path)


@pytest.fixture
def client(app):
    return app.test_client()


# --- serving -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["all.rss", "all.atom"])
def test_a_feed_is_served_with_its_media_type_and_validators(site, client, path):
    response = client.get(f"/{path}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == MEDIA_TYPES[path]
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Last-Modified"].endswith(" GMT")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert titles(response.data) == [SECOND, FIRST]


@pytest.mark.parametrize("path", ["all.rss", "all.atom"])
def test_the_server_and_the_static_export_give_the_same_bytes(site, client, path):
    built = Publisher(site.config_path).build()
    export(built.files, site.output)

    body = client.get(f"/{path}").data

    assert body == built.files[path].body
    assert body == (site.output / path).read_bytes()


def test_every_built_feed_is_served(site, client):
    built = Publisher(site.config_path).build()

    assert "topics/ai.atom" in built.files
    for path, rendered in built.files.items():
        response = client.get(f"/{path}")
        assert response.status_code == 200, path
        assert response.data == rendered.body, path


def test_the_etag_is_stable_across_restarts(site):
    site.write("first.md", article(n=1, title=FIRST))
    first = create_app(site.config_path).test_client().get("/all.rss")
    second = create_app(site.config_path).test_client().get("/all.rss")

    assert first.headers["ETag"] == second.headers["ETag"]
    assert first.data == second.data


# --- conditional requests ----------------------------------------------------------------


def test_a_matching_etag_gets_304_with_no_body(client):
    etag = client.get("/all.rss").headers["ETag"]

    response = client.get("/all.rss", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


def test_a_different_etag_gets_the_feed(client):
    response = client.get("/all.rss", headers={"If-None-Match": '"something-else"'})

    assert response.status_code == 200
    assert titles(response.data) == [SECOND, FIRST]


def test_if_modified_since_last_modified_gets_304(client):
    last_modified = client.get("/all.atom").headers["Last-Modified"]

    response = client.get("/all.atom", headers={"If-Modified-Since": last_modified})

    assert response.status_code == 304
    assert response.data == b""


def test_if_modified_since_an_older_date_gets_the_feed(client):
    last_modified = client.get("/all.atom").headers["Last-Modified"]

    response = client.get(
        "/all.atom", headers={"If-Modified-Since": http_date_before(last_modified, days=1)}
    )

    assert response.status_code == 200
    assert titles(response.data) == [SECOND, FIRST]


@pytest.mark.parametrize("path", ["all.rss", "all.atom"])
def test_head_gives_the_headers_of_get_and_no_body(client, path):
    get = client.get(f"/{path}")

    head = client.head(f"/{path}")

    assert head.status_code == 200
    assert head.data == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert head.headers[name] == get.headers[name], name


# --- unknown paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope.rss",
        "/topics/missing.atom",
        "/all.xml",
        "/../etc/passwd",
        "/%2e%2e/config.yaml",
        "/..%2fconfig.yaml",
        "//etc/passwd",
        "/config.yaml",
        "/articles/first.md",
        "/all.rss/",
    ],
)
def test_an_unknown_path_is_a_plain_404_and_never_a_file(site, client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert b"base_url" not in response.data  # config.yaml
    assert b"SECRET-BLOB" not in response.data  # an article file
    assert b"root:" not in response.data  # /etc/passwd


# --- live reload -------------------------------------------------------------------------


def test_an_added_article_is_served_after_a_refresh(site, app, client):
    old = client.get("/all.rss")
    site.write("third.md", article(n=3, title=THIRD))

    assert app.extensions["feeds"].refresh() is True

    new = client.get("/all.rss")
    assert titles(new.data) == [THIRD, SECOND, FIRST]
    assert new.headers["ETag"] != old.headers["ETag"]
    assert new.data == site.feed("all.rss")
    # A reader holding the old ETag gets the new feed, not a 304.
    again = client.get("/all.rss", headers={"If-None-Match": old.headers["ETag"]})
    assert again.status_code == 200
    assert titles(again.data) == [THIRD, SECOND, FIRST]


def test_a_removed_article_leaves_the_feeds_after_a_refresh(site, app, client):
    old = client.get("/all.atom")
    (site.articles / "first.md").unlink()

    assert app.extensions["feeds"].refresh() is True

    new = client.get("/all.atom")
    assert titles(new.data) == [SECOND]
    assert new.headers["ETag"] != old.headers["ETag"]


def test_an_unchanged_tree_is_not_rebuilt(app, client):
    before = client.get("/all.rss")

    assert app.extensions["feeds"].refresh() is False

    after = client.get("/all.rss")
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]
    assert after.data == before.data


def test_a_feed_that_did_not_change_keeps_its_validators(site, app, client):
    site.write("third.md", article(n=3, title=THIRD, topics=["Chips"]))
    before = client.get("/topics/ai.rss")

    assert app.extensions["feeds"].refresh() is True

    after = client.get("/topics/ai.rss", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 304
    assert client.get("/topics/chips.rss").status_code == 200


def test_a_reader_using_only_if_modified_since_sees_a_rebuilt_feed(site, app, client):
    last_modified = client.get("/all.rss").headers["Last-Modified"]
    site.write("third.md", article(n=3, title=THIRD))
    assert app.extensions["feeds"].refresh() is True

    response = client.get("/all.rss", headers={"If-Modified-Since": last_modified})

    assert response.status_code == 200
    assert titles(response.data) == [THIRD, SECOND, FIRST]


def test_the_server_picks_up_changes_by_itself(site):
    site.configure(serve={"reload_interval": 0})
    site.write("first.md", article(n=1, title=FIRST))
    client = create_app(site.config_path).test_client()
    assert titles(client.get("/all.rss").data) == [FIRST]

    site.write("second.md", article(n=2, title=SECOND))

    deadline = time.monotonic() + 5
    while True:
        found = titles(client.get("/all.rss").data)
        if found == [SECOND, FIRST] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found == [SECOND, FIRST]


# --- config errors -----------------------------------------------------------------------


def test_a_config_broken_while_serving_keeps_the_last_good_feeds(site, app, client, caplog):
    before = client.get("/all.rss")
    site.configure(quality={"min": "high"})

    assert app.extensions["feeds"].refresh() is False

    after = client.get("/all.rss")
    assert after.status_code == 200
    assert after.data == before.data
    assert after.headers["ETag"] == before.headers["ETag"]
    assert "quality.min" in caplog.text


def test_a_config_fixed_while_serving_is_picked_up(site, app, client):
    site.write("third.md", article(n=3, title=THIRD, quality=70))
    site.configure(quality={"min": "high"})
    app.extensions["feeds"].refresh()

    site.configure(quality={"min": 60})

    assert app.extensions["feeds"].refresh() is True
    assert titles(client.get("/all.rss").data) == [THIRD]


def test_create_app_refuses_an_invalid_config(site):
    site.configure(quality={"min": "high"})

    with pytest.raises(ConfigError, match=r"quality\.min: expected a number, got 'high'"):
        create_app(site.config_path)


def test_create_app_refuses_a_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(tmp_path / "config.yaml")


# --- `feeds serve` as a real process -----------------------------------------------------


@pytest.fixture
def server(site, tmp_path: Path):
    """`feeds serve` on a free port of 127.0.0.1; yields its base URL once it answers."""
    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    with serving(site.config_path, free_port(), tmp_path / "serve.log") as url:
        yield url


def test_feeds_serve_answers_over_http(server):
    with LOCAL.open(server + "all.atom", timeout=5) as response:
        status = response.status
        content_type = response.headers["Content-Type"]
        etag = response.headers["ETag"]
        body = response.read()

    assert status == 200
    assert content_type == "application/atom+xml; charset=utf-8"
    assert titles(body) == [SECOND, FIRST]

    request = urllib.request.Request(server + "all.atom", headers={"If-None-Match": etag})
    with pytest.raises(HTTPError) as info:
        LOCAL.open(request, timeout=5)
    info.value.close()
    assert info.value.code == 304


def test_a_second_server_on_a_taken_port_refuses_to_start(site, server):
    port = urllib.parse.urlsplit(server).port
    command = [sys.executable, "-m", "feeds", "--config", str(site.config_path), "serve"]
    result = subprocess.run(
        [*command, "--port", str(port)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr == f"cannot listen on 127.0.0.1:{port}: Address already in use\n"


# --- filters, caching hints and compression ------------------------------------------------


def test_filters_narrow_a_feed_and_link_to_themselves(site, client):
    response = client.get("/all.atom?q=chatbot&limit=5")
    assert response.status_code == 200
    assert titles(response.data) == [SECOND]
    self_link = feedparser.parse(response.data).feed.links[0]
    assert self_link.rel == "self"
    assert self_link.href == "https://feeds.example.org/all.atom?q=chatbot&limit=5"
    assert titles(client.get("/topics/ai.rss?provider=example.com&limit=1").data) == [SECOND]
    assert titles(client.get("/all.rss?min_quality=51").data) == []
    # Parameters the filter does not know, such as cache busters, change nothing.
    assert client.get("/all.rss?_=123").data == client.get("/all.rss").data


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "limit: expected a whole number from 1 to 50"),
        ("min_quality=high", "min_quality: expected a number"),
        ("topic=ai", None),  # on a topic feed
        ("q=" + "x" * 300, "q: longer than 200 characters"),
        ("q=" + "a+" * 600, "query string longer than 1000 bytes"),
    ],
)
def test_invalid_filters_get_a_400_with_a_reason(client, query, reason):
    response = client.get(f"/topics/ai.rss?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.data.decode().count("\n") == 1
    if reason:
        assert reason in response.data.decode()


def test_cache_control_and_vary(client):
    response = client.get("/all.rss")
    assert response.headers["Cache-Control"] == "public, max-age=600"
    assert response.headers["Vary"] == "Accept-Encoding"


def test_gzip_for_clients_that_accept_it(client):
    plain = client.get("/all.atom")
    zipped = client.get("/all.atom", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert zipped.headers["Vary"] == "Accept-Encoding"
    again = client.get(
        "/all.atom",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status_code == 304
    # Compressed once: the same bytes on every request.
    assert client.get("/all.atom", headers={"Accept-Encoding": "gzip"}).data == zipped.data


def test_json_feed_is_served(client):
    response = client.get("/all.json")
    assert response.headers["Content-Type"] == "application/feed+json; charset=utf-8"
    assert response.get_json()["items"][0]["title"] == SECOND


def test_only_get_and_head_are_served_and_errors_are_plain(client, app):
    assert not app.debug
    response = client.post("/all.rss", data="x" * 100)
    assert response.status_code == 405
    assert response.mimetype == "text/plain"
    assert b"Traceback" not in response.data


def test_request_bodies_over_1_kib_are_refused(client):
    for method in (client.get, client.post):
        response = method("/all.rss", data="x" * 2000)
        assert response.status_code == 413
        assert response.mimetype == "text/plain"
    assert client.get("/all.rss", data="x" * 100).status_code == 200


def _status(request: urllib.request.Request) -> int:
    try:
        with LOCAL.open(request, timeout=5) as response:
            return response.status
    except HTTPError as e:
        e.close()
        return e.code


def test_the_real_server_refuses_oversized_requests(server):
    url = server + "all.atom"
    assert _status(urllib.request.Request(url, headers={"X-Big": "x" * 20_000})) == 431
    assert _status(urllib.request.Request(url, data=b"x" * 2000)) == 413
    assert _status(urllib.request.Request(url + "?q=" + "a+" * 600)) == 400
    assert _status(urllib.request.Request(url, method="DELETE")) == 405
    # and it still serves everyone else
    assert _status(urllib.request.Request(url, headers={"X-Fine": "x" * 10_000})) == 200


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
    for path, method, encoding, condition in itertools.product(
        paths, ["GET", "HEAD"], ENCODINGS, CONDITIONS
    ):
        headers = {"Accept-Encoding": encoding} if encoding else {}
        first = Client(fast.app).get(path, headers=headers).headers
        etag, last_modified = first.get("ETag", ""), first.get("Last-Modified", "")
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


def _children(pid: int) -> list[int]:
    return [
        int(n) for f in Path(f"/proc/{pid}/task").glob("*/children") for n in f.read_text().split()
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_feeds_serve_stops_cleanly_on_sigterm_and_sigint(site, tmp_path, sig):
    site.write("first.md", article(n=1, title=FIRST))
    port = free_port()
    with serving(site.config_path, port, tmp_path / "serve.log"):
        [main] = [
            pid
            for pid in _children(os.getpid())
            if f"{port}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        [worker] = _children(main)  # granian's worker process

        os.kill(main, sig)

        deadline = time.monotonic() + 10
        while (done := os.waitpid(main, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done[0] == main, "still running"
        assert os.waitstatus_to_exitcode(done[1]) == 0
        assert not Path(f"/proc/{worker}").exists()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
