"""WebSub publish notifications, sent to a real HTTP hub stub on 127.0.0.1."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from feeds import websub
from feeds.websub import Notifier, publish

HANG = 10  # seconds: a generous bound that only a hang would reach


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]

    @property
    def urls(self) -> list[str]:
        return self.form.get("hub.url", [])


@dataclass
class Hub:
    """The stub's script and what it received; answers 204 once the script runs out."""

    url: str
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    # While cleared, the stub holds each request after recording it: a slow hub.
    gate: threading.Event = field(default_factory=threading.Event)
    received: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script += [s if isinstance(s, tuple) else (s, {}) for s in statuses]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        hub = self.server.hub
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with hub.lock:
            hub.posts.append(Post(self.path, dict(self.headers), parse_qs(body)))
            status, headers = hub.script.pop(0) if hub.script else (204, {})
        hub.received.release()
        hub.gate.wait(HANG)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keeps the test output to what failed


class _Server(ThreadingHTTPServer):
    hub: Hub


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables: the requests must go straight to 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def hub() -> Iterator[Hub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hub = Hub(f"http://127.0.0.1:{server.server_address[1]}/hub")
    server.hub.gate.set()
    # shutdown() waits for the loop to look again: 50 ms at every test's end, 5 ms here.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005})
    thread.start()
    yield server.hub
    server.hub.gate.set()  # frees a request a failed test left held
    server.shutdown()
    server.server_close()
    thread.join(HANG)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays publish() waits between attempts, recorded instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(websub, "sleep", delays.append)
    return delays


def feed_urls(n: int) -> list[str]:
    return [f"https://feeds.example.org/topic-{i:03d}.atom" for i in range(n)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# publish()


def test_publish_posts_the_changed_urls_as_a_form(hub: Hub) -> None:
    urls = ["https://feeds.example.org/b.rss", "https://feeds.example.org/a.atom"]

    assert publish(hub.url, [*urls, urls[0]]) is True

    [post] = hub.posts
    assert post.path == "/hub"
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert post.form == {"hub.mode": ["publish"], "hub.url": sorted(urls)}


def test_publish_sends_at_most_50_urls_per_request(hub: Hub) -> None:
    urls = feed_urls(120)

    assert publish(hub.url, reversed(urls)) is True

    assert [len(p.urls) for p in hub.posts] == [50, 50, 20]
    assert [u for p in hub.posts for u in p.urls] == urls
    assert all(p.form["hub.mode"] == ["publish"] for p in hub.posts)


def test_publish_of_no_urls_sends_nothing(hub: Hub) -> None:
    assert publish(hub.url, []) is True
    assert hub.posts == []


def test_publish_retries_server_errors_with_exponential_backoff(
    hub: Hub, sleeps: list[float]
) -> None:
    hub.answer(503, 500, 202)

    assert publish(hub.url, feed_urls(2), attempts=3, backoff=0.5) is True

    assert [p.urls for p in hub.posts] == [feed_urls(2)] * 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(("retry_after", "waited"), [("2", 2.0), ("3600", 60.0), ("soon", 0.5)])
def test_publish_retries_429_after_the_hubs_retry_after(
    hub: Hub, sleeps: list[float], retry_after: str, waited: float
) -> None:
    hub.answer((429, {"Retry-After": retry_after}), 204)

    assert publish(hub.url, feed_urls(1), backoff=0.5) is True

    assert len(hub.posts) == 2
    assert sleeps == [waited]  # capped at a minute; not a number: the backoff


def test_publish_waits_until_a_retry_after_date(hub: Hub, sleeps: list[float]) -> None:
    """Retry-After may be an HTTP date: waited for until then, capped like a number."""
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    hub.answer(
        (503, {"Retry-After": soon}), (503, {"Retry-After": "Sun, 06 Nov 1994 08:49:37 GMT"}), 204
    )

    assert publish(hub.url, feed_urls(1), backoff=0.5) is True

    assert len(hub.posts) == 3
    assert 27 <= sleeps[0] <= 30  # the seconds left until the date
    assert sleeps[1] == 0  # a date past: at once


def test_publish_gives_up_after_its_attempts(hub: Hub) -> None:
    hub.answer(503, 503, 503, 204)

    assert publish(hub.url, feed_urls(60), attempts=2, backoff=0.01) is False

    # The second batch is not sent to a hub that is down.
    assert [len(p.urls) for p in hub.posts] == [50, 50]


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_publish_does_not_retry_a_rejection(hub: Hub, status: int) -> None:
    hub.answer(status)

    assert publish(hub.url, feed_urls(1), backoff=0.01) is False

    assert len(hub.posts) == 1


def test_a_rejected_batch_does_not_stop_the_others(hub: Hub) -> None:
    hub.answer(400, 204)

    assert publish(hub.url, feed_urls(60), backoff=0.01) is False

    assert [len(p.urls) for p in hub.posts] == [50, 10]


def test_publish_does_not_follow_a_redirect(hub: Hub) -> None:
    hub.answer((307, {"Location": hub.url + "/elsewhere"}))

    assert publish(hub.url, feed_urls(1), backoff=0.01) is False

    assert [p.path for p in hub.posts] == ["/hub"]


def test_publish_to_a_closed_port_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    start = time.monotonic()

    assert publish(f"http://127.0.0.1:{closed_port()}/", feed_urls(1), backoff=0.01) is False

    assert time.monotonic() - start < HANG
    assert "giving up after attempt 3 of 3" in caplog.text


def test_publish_gives_up_on_a_hub_that_does_not_answer(hub: Hub) -> None:
    hub.gate.clear()

    assert publish(hub.url, feed_urls(1), attempts=2, backoff=0.01, timeout=0.2) is False

    assert len(hub.posts) == 2


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://hub.example.org/", "/hub"])
def test_publish_refuses_a_hub_that_is_not_http(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        publish(url, feed_urls(1))


def test_publish_refuses_one_url_as_a_str(hub: Hub) -> None:
    with pytest.raises(TypeError):
        publish(hub.url, "https://feeds.example.org/all.atom")
    assert hub.posts == []


# Notifier


@pytest.fixture
def notifier(hub: Hub) -> Iterator[Notifier]:
    notifier = Notifier(hub.url, backoff=0.01, timeout=HANG)
    yield notifier
    hub.gate.set()
    notifier.close(HANG)


def test_notify_returns_while_the_hub_is_slow(hub: Hub, notifier: Notifier) -> None:
    hub.gate.clear()
    start = time.monotonic()

    notifier.notify(feed_urls(3))
    assert hub.received.acquire(timeout=HANG)  # the hub holds the request...

    assert time.monotonic() - start < HANG  # ...and notify() did not wait for it
    assert notifier.flush(timeout=0.05) is False
    hub.gate.set()
    assert notifier.flush(timeout=HANG) is True
    assert [p.urls for p in hub.posts] == [feed_urls(3)]


def test_urls_queued_during_a_notification_go_out_together(hub: Hub, notifier: Notifier) -> None:
    first, *later = feed_urls(4)
    hub.gate.clear()
    notifier.notify([first])
    assert hub.received.acquire(timeout=HANG)

    for url in [*later, later[0]]:
        notifier.notify([url])
    hub.gate.set()

    assert notifier.flush(timeout=HANG) is True
    assert [p.urls for p in hub.posts] == [[first], later]


def test_notifier_keeps_working_after_a_failure(hub: Hub, notifier: Notifier) -> None:
    hub.answer(400)
    notifier.notify(feed_urls(1))
    assert notifier.flush(timeout=HANG) is True

    notifier.notify(feed_urls(2))

    assert notifier.flush(timeout=HANG) is True
    assert [p.urls for p in hub.posts] == [feed_urls(1), feed_urls(2)]


def test_notify_of_no_urls_sends_nothing(hub: Hub, notifier: Notifier) -> None:
    notifier.notify([])
    assert notifier.flush(timeout=HANG) is True
    assert hub.posts == []


def test_close_sends_what_is_queued_then_refuses_more(hub: Hub) -> None:
    notifier = Notifier(hub.url, backoff=0.01)
    hub.gate.clear()
    notifier.notify(feed_urls(1))
    assert hub.received.acquire(timeout=HANG)
    notifier.notify(feed_urls(2))

    hub.gate.set()
    notifier.close(timeout=HANG)

    assert [p.urls for p in hub.posts] == [feed_urls(1), feed_urls(2)]
    with pytest.raises(RuntimeError):
        notifier.notify(feed_urls(1))


def test_notifier_checks_its_settings_at_once() -> None:
    with pytest.raises(ValueError):
        Notifier("file:///etc/passwd")
    with pytest.raises(ValueError):
        Notifier("https://hub.example.org/", attempts=0)


# The publisher tells the hub of exactly the feeds that changed.


def _site_with_hub(site, hub: Hub) -> None:
    from .conftest import article

    site.configure(websub={"hub": hub.url}, feeds={"formats": ["atom", "rss"]})
    site.write("1.md", article(n=1, topics=["AI"]))
    site.write("2.md", article(n=2, topics=["Robots"], provider={"name": "B", "domain": "b.org"}))


def test_build_tells_the_hub_of_the_feeds_it_wrote(site, runner, hub: Hub) -> None:
    from .conftest import BASE_URL, article

    _site_with_hub(site, hub)
    result = runner("build")
    assert "Told the WebSub hub of" in result.stdout
    feeds = sorted(p for p in site.build().files if p.endswith((".atom", ".rss")))
    assert [u for p in hub.posts for u in p.urls] == [BASE_URL + p for p in feeds]

    hub.posts.clear()
    runner("build")
    assert hub.posts == []  # nothing changed, nothing to tell

    site.write("3.md", article(n=3, topics=["Robots"], provider={"name": "B", "domain": "b.org"}))
    runner("build")
    changed = ["all", "providers/b.org", "topics/robots"]
    assert [u for p in hub.posts for u in p.urls] == [
        f"{BASE_URL}{path}.{ext}" for path in changed for ext in ("atom", "rss")
    ]


def test_a_live_reload_tells_the_hub_without_waiting(site, hub: Hub) -> None:
    from feeds.web import create_app

    from .conftest import BASE_URL, article

    _site_with_hub(site, hub)
    app = create_app(site.config_path)
    assert hub.posts == []  # starting up is not a change
    hub.gate.clear()  # a slow hub: the reload must not wait for it
    site.write("3.md", article(n=3, topics=["AI"]))
    live = app.extensions["feeds"]
    assert live.refresh() is True
    assert hub.received.acquire(timeout=HANG)
    hub.gate.set()
    live.reloader.notifier.flush(HANG)
    (post,) = hub.posts
    assert post.urls == [
        f"{BASE_URL}{path}.{ext}"
        for path in ("all", "providers/example.com", "topics/ai")
        for ext in ("atom", "rss")
    ]
