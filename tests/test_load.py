"""Load: many readers while the articles change, against a real `feeds serve` (bench/load.py),
and the server's caches under many distinct filtered URLs."""

from __future__ import annotations

import gzip
import json
import random
import string
import subprocess
import sys
import threading
from pathlib import Path

import feedparser

from feeds import live
from feeds.web import create_app

from .conftest import ROOT, Site, article, free_port, serving

RELOAD_INTERVAL = 0.25
MARGIN = 2.0  # seconds a change may take beyond the reload interval: a rebuild under load
# Seconds of load, and article changes a second meanwhile: the 30 changes that 6 s at 5 a
# second made, in less time (thousands of requests even so, for the hundreds checked).
DURATION, WRITES_PER_SECOND = 1.5, 20


def many_articles(site: Site, count: int = 60) -> None:
    for n in range(count):
        site.write(
            f"{n:03d}.md",
            article(
                n=1,
                title=f"Story {n}",
                webUrl=f"https://news{n % 5}.example.com/story/{n}",
                publishedDateTime=f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                provider={"name": f"News {n % 5}", "domain": f"news{n % 5}.example.com"},
                topics=["AI", f"Topic {n % 6}"],
            ),
        )


def test_readers_get_whole_feeds_and_new_articles_in_time_while_articles_change(
    site: Site, tmp_path: Path
):
    """bench/load.py for 1.5 s: no 5xx, no malformed answer, every change in time."""
    # As many filtered renders as clients: none is refused, so any 5xx is a fault.
    site.configure(serve={"reload_interval": RELOAD_INTERVAL, "filtered_renders": 6})
    many_articles(site)
    figures = tmp_path / "load.json"
    with serving(site.config_path, free_port(), tmp_path / "serve.log") as url:
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "load.py"),
                *("--url", url, "--config", str(site.config_path)),
                *("--duration", str(DURATION), "--clients", "6"),
                *("--writes-per-second", str(WRITES_PER_SECOND)),
                *("--margin", str(MARGIN), "--timeout", "10", "--json", str(figures)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    r = json.loads(figures.read_text())
    assert r["errors"] == 0, r["samples"]
    assert not any(status.startswith("5") for status in r["statuses"])
    # Both answers are exercised, in shares that do not depend on the machine's speed: half
    # of the requests are conditional, and an ETag lasts until the next change of its feed.
    assert r["requests"] >= 100
    assert r["statuses"].get("200", 0) >= 0.3 * r["requests"]
    assert r["statuses"].get("304", 0) >= 0.05 * r["requests"]
    assert r["changes"].get("added", 0) >= 5 and r["changes"].get("deleted", 0) >= 1
    assert 0 < r["appear_max_s"] <= RELOAD_INTERVAL + MARGIN
    assert r["leave_max_s"] <= RELOAD_INTERVAL + MARGIN
    # It cleans up after itself: only the articles the test wrote are left.
    assert sorted(p.name for p in site.articles.iterdir()) == [f"{n:03d}.md" for n in range(60)]


# --- the server's caches under many distinct URLs -------------------------------------------


def test_caches_stay_bounded_under_many_distinct_filtered_urls(site: Site, monkeypatch):
    monkeypatch.setattr(live, "FILTER_CACHE", 32)  # the bound, whatever its value
    site.configure(serve={"memory": 1})  # MiB: half of it for gzipped bodies
    rng = random.Random(1)
    for n in range(20):  # excerpts that compress little: 15 KB a feed of them, gzipped
        excerpt = "".join(rng.choices(string.ascii_letters + " ", k=6000))
        site.write(f"{n:03d}.md", article(n=n + 1, excerpt=excerpt))
    app = create_app(site.config_path)
    client = app.test_client()

    sent = 0
    for n in range(64):  # cache busters: every URL its own bytes and ETag
        response = client.get(f"/all.rss?limit=20&_={n}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        sent += len(response.data)

    state = app.extensions["feeds"].state
    assert len(state.filtered) == 32
    assert sent > 512 * 1024  # more than the gzip cache may hold
    assert 0 < state.gzipped.size <= 512 * 1024


def test_a_filtered_feed_links_to_its_own_url_whatever_was_asked_before(site: Site):
    many_articles(site, 10)
    client = create_app(site.config_path).test_client()
    client.get("/all.atom?limit=5&_=1")

    response = client.get("/all.atom?limit=5")

    links = {link.rel: link.href for link in feedparser.parse(response.data).feed.links}
    assert links["self"].endswith("/all.atom?limit=5")
    fresh = create_app(site.config_path).test_client().get("/all.atom?limit=5")
    assert response.data == fresh.data and response.headers["ETag"] == fresh.headers["ETag"]


def test_concurrent_filtered_requests_never_fail(site: Site):
    """Threads evicting from the same full cache used to race into a KeyError, a 500."""
    site.configure(serve={"filtered_renders": 6})  # one per thread: none refused
    many_articles(site, 10)
    app = create_app(site.config_path)
    statuses: list[int] = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races

    def read(k: int) -> None:
        client = app.test_client()
        for n in range(120):
            response = client.get(f"/all.rss?limit=1&q=story+{k}x{n}")
            if n % 3 == 0:
                gzip.decompress(
                    client.get(
                        f"/all.rss?limit=1&q=story+{k}x{n}", headers={"Accept-Encoding": "gzip"}
                    ).data
                )
            statuses.append(response.status_code)

    try:
        threads = [threading.Thread(target=read, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(switch)
    assert statuses == [200] * 720
