"""The app: same bytes as the static export, conditional GETs, 404s, filters, errors."""

from __future__ import annotations

import email.utils
import gzip
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
from xml.etree import ElementTree

import feedparser
import pytest

from feeds.errors import ConfigError
from feeds.export import export
from feeds.publisher import Publisher
from feeds.web import create_app

from .conftest import FIRST, LOCAL, SECOND, article, free_port, serving, titles

ATOM = "http://www.w3.org/2005/Atom"

MEDIA_TYPES = {
    "all.rss": "application/rss+xml; charset=utf-8",
    "all.atom": "application/atom+xml; charset=utf-8",
}


def http_date_before(value: str, days: int) -> str:
    return email.utils.format_datetime(
        email.utils.parsedate_to_datetime(value) - timedelta(days=days), usegmt=True
    )


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


# --- config errors -----------------------------------------------------------------------


def test_create_app_refuses_an_invalid_config(site):
    site.configure(quality={"min": "high"})

    with pytest.raises(ConfigError, match=r"quality\.min: expected a number, got 'high'"):
        create_app(site.config_path)


def test_create_app_refuses_a_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(tmp_path / "config.yaml")


# --- `feeds serve` as a real process -----------------------------------------------------


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


def test_a_second_server_on_a_taken_port_refuses_to_start(served):
    site, server = served
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
    links = {link.rel: link.href for link in feedparser.parse(response.data).feed.links}
    assert links["self"] == "https://feeds.example.org/all.atom?q=chatbot&limit=5"
    assert titles(client.get("/topics/ai.rss?provider=example.com&limit=1").data) == [SECOND]
    rss = ElementTree.fromstring(client.get("/all.rss?q=chatbot&limit=5").data)
    rss_links = {link.get("rel"): link.get("href") for link in rss.iter(f"{{{ATOM}}}link")}
    assert rss_links["self"] == "https://feeds.example.org/all.rss?q=chatbot&limit=5"
    assert titles(client.get("/all.rss?min_quality=51").data) == []
    # Parameters the filter does not know, such as cache busters, change nothing.
    assert client.get("/all.rss?_=123").data == client.get("/all.rss").data


def test_past_the_filtered_renders_a_new_query_gets_503_and_the_others_are_answered(
    site, app, client
):
    kept = client.get("/all.atom?q=robots")
    assert titles(kept.data) == [FIRST]
    renders = app.extensions["feeds"].current().renders
    taken = 0
    try:
        while renders.acquire(blocking=False):  # as a slow filtered render would
            taken += 1
        assert taken == 1  # serve.filtered_renders' default
        busy = client.get("/all.atom?q=chatbot")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "1"
        assert client.get("/all.atom?q=robots").data == kept.data  # kept: no render needed
        assert titles(client.get("/all.atom").data) == [SECOND, FIRST]
    finally:
        for _ in range(taken):
            renders.release()
    assert titles(client.get("/all.atom?q=chatbot").data) == [SECOND]


def test_the_bound_on_filtered_renders_holds_across_a_reload(site, app, client):
    """A render still running on the feeds before a reload counts against the bound of the
    feeds after it: a reload never lets twice the bound run at once."""
    live = app.extensions["feeds"]
    before = live.current().renders
    assert before.acquire(blocking=False)  # as a slow filtered render would, then a reload
    try:
        site.write("third.md", article(n=3, title="Chips get smaller again"))
        assert live.refresh() is True
        assert client.get("/all.atom?q=chips").status_code == 503
    finally:
        before.release()
    assert titles(client.get("/all.atom?q=chips").data) == ["Chips get smaller again"]


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


@pytest.mark.parametrize(
    ("accept", "compressed"),
    [("br, gzip;q=0", False), ("gzip;q=0.5, identity", True), ("*", True), ("br", False)],
)
def test_accept_encoding_qualities_are_honoured(client, accept, compressed):
    """``gzip;q=0`` is a refusal, not a wish; ``*`` accepts gzip (RFC 9110 12.5.3)."""
    for path in ("/all.atom", "/all.atom?limit=1"):  # the replayed answer and the app's
        response = client.get(path, headers={"Accept-Encoding": accept})
        assert ("Content-Encoding" in response.headers) is compressed, (path, accept)
        body = gzip.decompress(response.data) if compressed else response.data
        assert body.startswith(b"<?xml"), (path, accept)


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


def _server_and_worker(port: int) -> tuple[int, int]:
    """The process ids of the `feeds serve` this test started on ``port`` and of its worker."""
    [main] = [
        pid
        for pid in _children(os.getpid())
        if f"{port}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    [worker] = _children(main)  # granian's worker process
    return main, worker


def _children(pid: int) -> list[int]:
    return [
        int(n) for f in Path(f"/proc/{pid}/task").glob("*/children") for n in f.read_text().split()
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_feeds_serve_stops_cleanly_on_sigterm_and_sigint(site, tmp_path, sig):
    site.write("first.md", article(n=1, title=FIRST))
    port = free_port()
    with serving(site.config_path, port, tmp_path / "serve.log"):
        main, worker = _server_and_worker(port)

        os.kill(main, sig)

        # Seconds, not minutes, but a loaded CI machine once took more than 10.
        deadline = time.monotonic() + 30
        while (done := os.waitpid(main, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done[0] == main, "still running"
        assert os.waitstatus_to_exitcode(done[1]) == 0
        assert not Path(f"/proc/{worker}").exists()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_a_server_killed_outright_leaves_no_worker_holding_its_port(site, tmp_path):
    """SIGKILL gives the server no time to stop its worker: the kernel ends it instead, or
    it would serve its old feeds on, sharing the port with the next server (SO_REUSEPORT)."""
    site.write("first.md", article(n=1, title=FIRST))
    port = free_port()
    with serving(site.config_path, port, tmp_path / "serve.log") as url:
        main, worker = _server_and_worker(port)

        os.kill(main, signal.SIGKILL)

        deadline = time.monotonic() + 30
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(worker)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no answer at all
            LOCAL.open(url + "healthz", timeout=5)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (not ended, nor ended and waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_nothing_below_web_and_cli_imports_flask_or_click():
    """The core, the live state and the fast path run without the web framework or the CLI."""
    below = ["feeds.live", "feeds.fastpath", "feeds.rebuild", "feeds.websub", "feeds.export"]
    code = (
        f"import sys\nfor name in {below!r}: __import__(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'click')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"


@pytest.mark.parametrize("path", ["/all.rss", "/all.atom", "/all.json", "/feeds.opml"])
def test_feeds_may_be_read_by_any_web_page(client, path):
    """Browser-based readers fetch feeds from other origins: every answer says they may, the
    app's and the replayed, a 304, and a filtered feed's; a page does not."""
    first = client.get(path)  # recorded, then replayed
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    filtered = client.get(path + "?limit=1") if path != "/feeds.opml" else first
    for response in [first, client.get(path), again, filtered]:
        assert response.headers["Access-Control-Allow-Origin"] == "*", path
    assert again.status_code == 304
    assert "Access-Control-Allow-Origin" not in client.get("/all.html").headers
