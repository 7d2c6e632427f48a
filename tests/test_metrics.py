"""GET /metrics: what the server answered and the state of its feeds, in Prometheus text."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feeds.metrics import kind
from feeds.web import create_app

from .conftest import THIRD, article


def scrape(client) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, as a Prometheus server would read them."""
    return parse(client.get("/metrics"))


def parse(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


SENT = "feeds_http_response_body_bytes_total"


def requests(metrics: dict, status: str, kind: str) -> float:
    return metrics.get(("feeds_http_requests_total", (("kind", kind), ("status", status))), 0)


def test_requests_are_counted_by_status_and_kind_replayed_or_not(client):
    sent = 0
    for _ in range(3):  # the first answered by the app, the others replayed by FastPath
        sent += len(client.get("/all.rss").data)
    atom = client.get("/all.atom")
    sent += len(atom.data)
    sent += len(client.get("/all.atom", headers={"Accept-Encoding": "gzip"}).data)
    not_modified = client.get("/all.atom", headers={"If-None-Match": atom.headers["ETag"]})
    assert not_modified.status_code == 304
    assert client.head("/topics/ai.rss").status_code == 200  # no body sent
    sent += len(client.get("/").data) + len(client.get("/feeds.opml").data)
    for _ in range(2):
        missing = client.get("/no-such.rss")
        assert missing.status_code == 404
        sent += len(missing.data)
    sent += len(client.get("/healthz").data)

    metrics = scrape(client)

    assert requests(metrics, "2xx", "feed") == 6
    assert requests(metrics, "3xx", "feed") == 1
    assert requests(metrics, "4xx", "feed") == 2
    assert requests(metrics, "2xx", "page") == 1
    assert requests(metrics, "2xx", "opml") == 1
    assert requests(metrics, "2xx", "other") == 1  # /healthz; this scrape is not counted yet
    assert metrics[(SENT, ())] == sent


def test_loads_and_the_state_of_the_feeds_are_reported(site):
    site.write("first.md", article(n=1))
    site.write("broken.md", raw="no front matter")
    before = time.time()
    app = create_app(site.config_path)
    client = app.test_client()
    metrics = scrape(client)

    assert metrics[("feeds_articles_skipped", ())] == 1
    feeds = len(app.extensions["feeds"].current().snapshot.feeds)
    assert metrics[("feeds_served", ())] == feeds
    assert before <= metrics[("feeds_last_load_timestamp_seconds", ())] <= time.time()
    assert metrics[("feeds_build_duration_seconds_count", ())] == 1

    site.write("third.md", article(n=3, title=THIRD, topics=["Chips"]))
    assert app.extensions["feeds"].refresh() is True

    metrics = scrape(client)
    assert metrics[("feeds_build_duration_seconds_count", ())] == 2
    assert metrics[("feeds_served", ())] == feeds + 1


def test_two_apps_in_one_process_count_apart(app, client, site):
    client.get("/all.rss")
    other = create_app(site.config_path).test_client()
    assert requests(scrape(other), "2xx", "feed") == 0
    assert requests(scrape(client), "2xx", "feed") == 1


def test_answers_on_many_threads_are_all_counted(app, client):
    """Each request thread counts on its own; a scrape sums them, while they go on."""
    feed = len(client.get("/all.rss").data)
    first = client.get("/metrics")
    before = parse(first)
    scraped = [len(first.data)]  # scrapes are answers too, each counted once answered

    def read_feeds() -> None:
        reader = app.test_client()
        for _ in range(200):
            assert reader.get("/all.rss").status_code == 200

    threads = [threading.Thread(target=read_feeds) for _ in range(6)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        scraped.append(len(client.get("/metrics").data))  # read as the counts change
    for thread in threads:
        thread.join()

    after = scrape(client)
    assert requests(after, "2xx", "feed") - requests(before, "2xx", "feed") == 1200
    # The threads that ended are summed up as one: their counts are not kept apart for ever
    # (granian retires idle threads and starts new ones).
    assert len(app.extensions["feeds"].metrics.answers._live) == 1  # this thread's
    assert requests(after, "2xx", "other") - requests(before, "2xx", "other") == len(scraped)
    sent = after[(SENT, ())] - before[(SENT, ())]
    assert sent == 1200 * feed + sum(scraped)


def test_healthz_and_metrics_are_not_files_of_the_feeds(client):
    assert client.get("/healthz").data == b"ok\n"
    for path in ("/", "/feeds.opml", "/topics/ai.html"):
        body = client.get(path).data
        assert b"healthz" not in body
        assert b"metrics" not in body


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/all.rss", "feed"),
        ("/topics/ai.json", "feed"),
        ("/all/archive/3.atom", "archive"),
        ("/", "page"),
        ("/providers/example-com.html", "page"),
        ("/feeds.opml", "opml"),
        ("/metrics", "other"),
        ("/robots.txt", "other"),
    ],
)
def test_kinds_of_document(path, expected):
    assert kind(path) == expected
