"""The nginx configs of deploy/, run by a real nginx on 127.0.0.1: the static export served
with its pre-compressed files, and a caching reverse proxy in front of ``feeds serve``."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import NamedTuple

import feedparser
import pytest

from feeds.export import MANIFEST, export
from feeds.web import create_app
from tests.conftest import LOCAL, ROOT, article, free_port, serving, started

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
DEPLOY = ROOT / "deploy"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx missing (apt-get install nginx-light)")

PAGES = ["all.rss", "all.atom", "all.json", "feeds.opml", "", "topics/ai.rss"]
PAGES += ["feeds.css", "feeds.js", "providers.tsv"]  # what the pages load


@pytest.fixture
def world_readable() -> Iterator[Path]:
    """A temp folder nginx's worker can read: run as root, the worker is `nobody`, and
    pytest's tmp_path is private to root."""
    folder = Path(tempfile.mkdtemp(prefix="feeds-deploy-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def nginx(template: str, prefix: Path, **markers: str) -> Iterator[str]:
    """nginx in the foreground with ``deploy/<template>`` filled in as deploy/README.md says;
    yields its base URL once it accepts connections, and always stops it."""
    port = free_port()
    conf = (DEPLOY / template).read_text(encoding="utf-8")
    markers = {"PORT": str(port), "PREFIX": str(prefix), "ACCESS_LOG": "off", **markers}
    for key, value in markers.items():
        conf = conf.replace("{" + key + "}", value)
    assert not re.findall(r"\{[A-Z_]+\}", conf), "a marker was left unfilled"
    (prefix / "tmp").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(conf, encoding="utf-8")
    log = prefix / "error.log"
    command = [NGINX, "-p", prefix, "-e", log, "-c", prefix / "nginx.conf", "-g", "daemon off;"]
    # On the way out SIGTERM, a fast shutdown of the master and its worker (else SIGKILL).
    with started(command, grace=10, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT) as process:
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"nginx did not start:\n{log.read_text() if log.exists() else ''}")
        yield f"http://127.0.0.1:{port}/"


class Answer(NamedTuple):
    status: int
    headers: Message
    body: bytes  # as sent: never decompressed


def get(url: str, **headers: str) -> Answer:
    """GET with ``headers`` (``If_None_Match`` for If-None-Match); a 304 or 4xx is no error."""
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    try:
        with LOCAL.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as e:
        with e:
            return Answer(e.code, e.headers, e.read())


def check_parses(path: str, body: bytes) -> None:
    if path.endswith(".json"):
        assert json.loads(body)["items"]
    elif path.endswith(".opml"):
        assert ET.fromstring(body).findall(".//outline[@xmlUrl]")
    elif path.endswith(".tsv"):
        assert b"providers/other.org\tOther Daily\t1\t" in body
    elif path.endswith((".css", ".js")):
        assert body == (ROOT / "feeds" / "static" / path).read_bytes()
    elif path.endswith((".rss", ".atom")):
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.bozo_exception)
        assert "Café crème for robots" in [e.title for e in parsed.entries]
    else:
        assert b'<link rel="alternate"' in body


def write_articles(site) -> None:
    site.write("1.md", article(n=1, title="Café crème for robots", topics=["AI", "Robots"]))
    site.write("2.md", article(n=2, quality=80, excerpt="A longer story " * 40))
    site.write("3.md", article(n=3, provider={"name": "Other Daily", "domain": "other.org"}))


def test_the_static_export_behind_nginx(site, world_readable):
    public = world_readable / "public"
    site.configure(output={"folder": str(public), "gzip": True})
    write_articles(site)

    def build() -> None:
        # What `feeds build` does.
        snapshot = site.build()
        export(snapshot.files, snapshot.config.output_folder, gzip=snapshot.config.output.gzip)

    build()
    served = create_app(site.config_path).test_client()  # what `feeds serve` answers
    with nginx("nginx-static.conf", world_readable / "nginx", ROOT=str(public)) as base:
        etags = {}
        for path in PAGES:
            status, headers, body = get(base + path)
            expected = served.get("/" + path)
            assert status == 200, path
            assert headers["Content-Type"] == expected.headers["Content-Type"], path
            assert body == expected.data == (public / (path or "index.html")).read_bytes()
            check_parses(path, body)
            assert headers["Cache-Control"] == "public, max-age=600"
            assert headers["Vary"] == "Accept-Encoding"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers.get("Access-Control-Allow-Origin") == expected.headers.get(
                "Access-Control-Allow-Origin"
            )
            etag = etags[path] = headers["ETag"]
            assert etag.startswith('"'), etag  # strong
            assert get(base + path, If_None_Match=etag).status == 304
            assert get(base + path, If_Modified_Since=headers["Last-Modified"]).status == 304

            status, headers, packed = get(base + path, Accept_Encoding="gzip, br")
            assert status == 200 and headers["Content-Encoding"] == "gzip"
            assert headers["Content-Type"] == expected.headers["Content-Type"]
            assert packed == (public / f"{path or 'index.html'}.gz").read_bytes()
            assert headers["ETag"].startswith('"') and headers["ETag"] != etag
            again = get(base + path, If_None_Match=headers["ETag"], Accept_Encoding="gzip")
            assert again.status == 304

        # Temp files of a build that is running, and the manifest, stay private.
        (public / "topics" / ".feeds-abc123.tmp").write_bytes(b"half a feed")
        for hidden in [MANIFEST, "topics/.feeds-abc123.tmp"]:
            assert (public / hidden).is_file()
            assert get(base + hidden).status == 404, hidden
        assert get(base + "nope.rss").status == 404

        # A rebuild of the same articles keeps every file, so every ETag stays valid.
        build()
        assert {path: get(base + path).headers["ETag"] for path in PAGES} == etags
        site.write("4.md", article(n=4, title="Fresh news"))
        build()
        status, headers, body = get(base + "all.rss", If_None_Match=etags["all.rss"])
        assert status == 200 and headers["ETag"] != etags["all.rss"]
        assert "Fresh news" in [e.title for e in feedparser.parse(body).entries]
        assert get(base + "all.json").headers["ETag"] != etags["all.json"]


@contextlib.contextmanager
def proxied(site, tmp_path: Path, prefix: Path) -> Iterator[tuple[str, str]]:
    """`feeds serve` for ``site`` and nginx-proxy.conf in front; yields both base URLs."""
    port = free_port()
    with (
        serving(site.config_path, port, tmp_path / "server.log") as direct,
        nginx("nginx-proxy.conf", prefix, UPSTREAM=f"127.0.0.1:{port}") as proxy,
    ):
        yield direct, proxy


def test_the_proxy_caches_what_feeds_serve_sends(site, tmp_path, world_readable):
    site.configure(feeds={"max_age": 300})
    write_articles(site)
    with proxied(site, tmp_path, world_readable / "nginx") as (direct, proxy):
        for path in PAGES:
            for encoding in ["identity", "gzip, deflate, br"]:
                expected = get(direct + path, Accept_Encoding=encoding)
                first = get(proxy + path, Accept_Encoding=encoding)
                second = get(proxy + path, Accept_Encoding=encoding)
                statuses = [a.headers["X-Cache-Status"] for a in (first, second)]
                assert statuses == ["MISS", "HIT"], (path, encoding)
                for answer in [first, second]:
                    assert answer.status == 200 and answer.body == expected.body, (path, encoding)
                    names = ["Content-Type", "ETag", "Content-Encoding", "Cache-Control"]
                    for name in [*names, "Access-Control-Allow-Origin"]:
                        assert answer.headers[name] == expected.headers[name], (path, name)
                etag = first.headers["ETag"]
                answer = get(proxy + path, Accept_Encoding=encoding, If_None_Match=etag)
                assert answer.status == 304 and answer.headers["X-Cache-Status"] == "HIT"
                assert answer.headers["ETag"] == etag
                since = first.headers["Last-Modified"]
                assert (
                    get(proxy + path, Accept_Encoding=encoding, If_Modified_Since=since).status
                    == 304
                )
            check_parses(path, get(proxy + path).body)
        assert get(proxy + "all.atom", Accept_Encoding="gzip").headers["ETag"].endswith('-gzip"')

        # Errors reach the reader as they are, and are not cached.
        for path in ["nope.rss", "all.atom?limit=0"]:
            answers = [get(proxy + path) for _ in range(2)]
            assert [a.body for a in answers] == [get(direct + path).body] * 2
            assert [a.headers["X-Cache-Status"] for a in answers] == ["MISS", "MISS"]
            assert answers[0].status in (404, 400)


def test_filtered_feeds_pass_through_the_proxy(site, tmp_path, world_readable):
    site.configure(feeds={"max_age": 300})
    write_articles(site)
    queries = ["limit=1", "min_quality=60&limit=2", "q=caf%C3%A9+robots", "q=story&topic=ai"]
    with proxied(site, tmp_path, world_readable / "nginx") as (direct, proxy):
        bodies = set()
        for query in queries:
            url = f"all.atom?{query}"
            expected = get(direct + url)
            assert expected.status == 200
            answers = [get(proxy + url) for _ in range(2)]
            assert [a.headers["X-Cache-Status"] for a in answers] == ["MISS", "HIT"], query
            assert [a.body for a in answers] == [expected.body] * 2, query
            assert answers[0].headers["ETag"] == expected.headers["ETag"]
            parsed = feedparser.parse(expected.body)
            links = {link.rel: link.href for link in parsed.feed.links}
            assert links["self"].endswith(url)  # its self link is its own URL
            bodies.add(expected.body)
        assert len(bodies) == len(queries)
        found = feedparser.parse(get(proxy + "all.atom?" + queries[2]).body).entries
        assert [e.title for e in found] == ["Café crème for robots"]


def test_the_proxy_limits_filtered_requests_per_client_and_never_plain_ones(
    site, tmp_path, world_readable
):
    write_articles(site)
    with proxied(site, tmp_path, world_readable / "nginx") as (_, proxy):
        filtered = [get(proxy + f"all.atom?q=robots&limit={n % 50 + 1}") for n in range(60)]
        plain = [get(proxy + "topics/ai.rss") for _ in range(60)]
    refused = [a for a in filtered if a.status == 429]
    # 60 in a row are far beyond 5 a second with bursts of 20; the first ones got through.
    assert filtered[0].status == 200 and refused
    assert {a.status for a in filtered} == {200, 429}
    assert all(a.headers["Retry-After"] == "1" for a in refused)
    assert {a.status for a in plain} == {200}


def test_through_the_proxy_an_expired_feed_is_revalidated_and_a_change_shows(
    site, tmp_path, world_readable
):
    site.configure(feeds={"max_age": 1}, serve={"reload_interval": 0.2})
    write_articles(site)
    with proxied(site, tmp_path, world_readable / "nginx") as (direct, proxy):
        first = get(proxy + "all.rss")
        assert first.headers["X-Cache-Status"] == "MISS"

        def wait_for(done, what: str, timeout: float = 15) -> Answer:
            deadline = time.monotonic() + timeout
            while not done(answer := get(proxy + "all.rss")):
                assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
                time.sleep(0.1)
            return answer

        # Once max_age is over, nginx asks feeds serve with If-None-Match: unchanged, a 304.
        answer = wait_for(lambda a: a.headers["X-Cache-Status"] != "HIT", "expiry")
        assert answer.headers["X-Cache-Status"] == "REVALIDATED"
        assert answer.body == first.body and answer.headers["ETag"] == first.headers["ETag"]
        assert get(proxy + "all.rss", If_None_Match=first.headers["ETag"]).status == 304

        site.write("1.md", article(n=1, title="Changed while cached"))
        changed = time.monotonic()
        answer = wait_for(lambda a: b"Changed while cached" in a.body, "the change")
        # Two expiries at most: the first refresh after a change may still get the old feed,
        # as it is what makes `feeds serve` look at the articles.
        assert time.monotonic() - changed < 2 * (1 + 1) + 0.2 + 2
        etag = answer.headers["ETag"]
        assert etag == get(direct + "all.rss").headers["ETag"] != first.headers["ETag"]
        assert get(proxy + "all.rss", If_None_Match=first.headers["ETag"]).status == 200
