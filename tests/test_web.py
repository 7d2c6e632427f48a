"""The server: same bytes as the static export, conditional GETs, 404s, live reload."""

from __future__ import annotations

import email.utils
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError

import feedparser
import pytest

from feeds.errors import ConfigError
from feeds.export import export
from feeds.publisher import Publisher
from feeds.web import create_app

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
        ("limit=0", "limit: expected a whole number from 1 to 500"),
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
    import gzip

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


def test_the_real_server_refuses_oversized_requests(server):
    request = urllib.request.Request(server + "all.atom", headers={"X-Big": "x" * 20_000})
    with pytest.raises(HTTPError) as info:
        LOCAL.open(request, timeout=5)
    info.value.close()
    assert info.value.code in (400, 413, 431)
    # and it still serves everyone else
    with LOCAL.open(server + "all.atom", timeout=5) as response:
        assert response.status == 200
