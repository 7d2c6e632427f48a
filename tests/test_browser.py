"""The pages in a real browser: headless Debian chromium against a running ``feeds serve``.

Nothing leaves the machine: the server and every fetch are on 127.0.0.1, chromium resolves
no other host, and the page's article images are answered by the test with a placeholder.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from tests.conftest import LOCAL, Site, article, free_port, serving

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
HOST = "127.0.0.1"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="450">'
    b'<rect width="800" height="450" fill="#8a9bb0"/></svg>'
)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"
)


def fetch(url: str) -> bytes:
    assert urlsplit(url).hostname == HOST, url  # only ever talk to the local server
    with LOCAL.open(url, timeout=10) as response:
        return response.read()


# Module-scoped, the server and the browser: both viewports only read from them, and each
# takes longer to start than a viewport's test takes.
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``feeds serve`` as a real process on a free port; yields its base URL."""
    site = Site(tmp_path_factory.mktemp("browsed"))
    port = free_port()
    base = f"http://{HOST}:{port}/"
    site.configure(site={"title": "Test <News>", "base_url": base})
    site.write("1.md", article(n=1, topics=["AI", "Robots"]))
    site.write("2.md", article(n=2, provider={"name": "Other Daily", "domain": "other.org"}))
    site.write("3.md", article(n=3, title="Robots & <people> at work"))
    with serving(site.config_path, port, site.root / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, viewport: dict):
    context = browser.new_context(viewport=viewport)

    def only_local(route):
        request = route.request
        if urlsplit(request.url).hostname == HOST:
            route.continue_()
        elif request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
        else:
            route.abort()

    context.route("**/*", only_local)
    return context, context.new_page()


def check_alternates(page) -> list[str]:
    """Every autodiscovery link of the page: fetched from the server, a valid feed."""
    hrefs = page.eval_on_selector_all("link[rel=alternate]", "ls => ls.map(l => l.href)")
    assert hrefs
    for href in hrefs:
        body = fetch(href)
        if href.endswith(".json"):
            assert json.loads(body)["items"]
        else:
            parsed = feedparser.parse(body)
            assert not parsed.bozo, (href, parsed.bozo_exception)
            assert parsed.entries
    return hrefs


def fits(page) -> bool:
    """No sideways scrolling."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_index_and_feed_page_in_a_browser(server, browser, viewport, tmp_path):
    context, page = open_page(browser, viewport)
    try:
        page.goto(server + "index.html")
        assert page.title() == "Test <News>"
        assert page.get_by_role("heading", level=1).inner_text() == "Test <News>"
        for name in ["All articles", "AI", "Robots", "Example News", "Other Daily"]:
            assert page.get_by_role("link", name=name, exact=True).is_visible()
        assert page.get_by_role("link", name="RSS feed of Robots").get_attribute("href") == (
            "topics/robots.rss"
        )
        alternates = check_alternates(page)
        assert server + "all.rss" in alternates
        assert fits(page)
        page.screenshot(path=tmp_path / "index.png", full_page=True)

        page.get_by_role("link", name="AI", exact=True).click()
        page.wait_for_url(server + "topics/ai.html")
        assert page.get_by_role("heading", level=1).inner_text() == "AI"
        titles = page.get_by_role("heading", level=2).all_inner_texts()
        assert titles == ["Robots & <people> at work", "Story number 2", "Story number 1"]
        link = page.get_by_role("link", name="Robots & <people> at work")
        assert link.get_attribute("href") == "https://news.example.com/story-3"
        assert (
            page.locator("article img").first.evaluate("i => i.decode().then(() => i.naturalWidth)")
            == 800
        )
        assert check_alternates(page) == [
            server + f"topics/ai.{ext}" for ext in ("rss", "atom", "json")
        ]
        assert fits(page)
        page.screenshot(path=tmp_path / "feed.png", full_page=True)

        page.get_by_role("link", name="All feeds of Test <News>").click()
        page.wait_for_url(server + "index.html")
    finally:
        context.close()
