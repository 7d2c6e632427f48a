"""The pages in a real browser: headless Debian chromium against a running ``feeds serve``.

Nothing leaves the machine: the server and every fetch are on 127.0.0.1, chromium resolves
no other host, and the page's article images are answered by the test with a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from tests.conftest import LOCAL, Site, article, free_port, serving

sync_api = pytest.importorskip("playwright.sync_api")
axe = pytest.importorskip("axe_playwright_python.sync_playwright")
AXE = axe.Axe()

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


# Module-scoped, the server and the browser: the tests only read from them, and each
# takes longer to start than a test takes.
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``feeds serve`` as a real process on a free port; yields its base URL."""
    site = Site(tmp_path_factory.mktemp("browsed"))
    port = free_port()
    base = f"http://{HOST}:{port}/"
    site.configure(site={"title": "Test <News>", "base_url": base}, feeds={"items": 2})
    site.write("1.md", article(n=1, topics=["AI", "Robots"]))
    site.write("2.md", article(n=2, provider={"name": "Other Daily", "domain": "other.org"}))
    site.write("3.md", article(n=3, title="Robots & <people> at work"))
    other = {"name": "Other Daily", "domain": "other.org"}
    site.write("0.md", article(n=9, provider=other, topics=["Ethics"], webUrl="https://o.org/9"))
    for n in range(4, 7):  # older pages, and a provider of one story each (on the A-Z page)
        provider = {"name": f"Tiny {n}", "domain": f"tiny{n}.example.net"}
        site.write(f"{n}.md", article(n=n + 10, provider=provider, topics=["Ethics"]))
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


@contextmanager
def opened(browser, viewport: dict, **options) -> Iterator:
    """A page of a new context that reaches the server only (article images get a
    placeholder), and fails the test on any error in the console (a script the CSP
    refused, one that threw)."""
    context = browser.new_context(viewport=viewport, **options)

    def only_local(route):
        request = route.request
        if urlsplit(request.url).hostname == HOST:
            route.continue_()
        elif request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
        else:
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
        assert errors == []
    finally:
        context.close()


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


def check_page(page, path: Path, axe: bool = True) -> int:
    """What every page must be: no sideways scrolling, no axe-core violation (checked once
    per template unless ``axe``); a screenshot at ``path``. Returns the page's height."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    if axe:
        violations = AXE.run(page).response["violations"]
        assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []
    page.screenshot(path=path, full_page=True)
    return page.evaluate("document.documentElement.scrollHeight")


def heights(page, selector: str) -> list[float]:
    return page.eval_on_selector_all(selector, "es => es.map(e => e.offsetHeight)")


# A phone in dark mode and a desktop in light mode: each scheme and width once, as the
# style sheet's rules for them are independent.
@pytest.mark.parametrize(
    ("viewport", "scheme"), [(PHONE, "dark"), (DESKTOP, "light")], ids=["phone", "desktop"]
)
def test_pages_in_a_browser(server, browser, viewport, scheme, tmp_path):
    with opened(browser, viewport, color_scheme=scheme) as page:
        page.goto(server + "index.html")
        assert page.title() == "Test <News>"
        assert page.get_by_role("heading", level=1).inner_text() == "Test <News>"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (scheme == "light")
        for name in ["All articles", "AI", "Robots", "Example News", "Other Daily"]:
            assert page.get_by_role("link", name=name, exact=True).is_visible()
        assert page.get_by_role("link", name="Tiny 4").count() == 0  # one story: on A-Z
        assert page.get_by_role("link", name="RSS feed of Robots").get_attribute("href") == (
            "topics/robots.rss"
        )
        assert server + "all.rss" in check_alternates(page)
        assert page.get_by_label("Find a feed").is_visible()  # shown by the script
        # Compact rows: one line each on a desktop, two on a phone.
        rows = heights(page, "ul.feeds li")
        assert len(rows) == 6 and max(rows) <= (36 if viewport is DESKTOP else 64)
        check_page(page, tmp_path / f"index-{scheme}.png")

        page.get_by_role("link", name="All providers A–Z").click()
        page.wait_for_url(server + "providers.html")
        assert page.get_by_role("link", name="Tiny 4", exact=True).is_visible()
        check_page(page, tmp_path / f"providers-{scheme}.png", axe=False)  # index's rows

        page.goto(server + "topics/ai.html")
        assert page.get_by_role("heading", level=1).inner_text() == "AI"
        assert page.get_by_role("heading", level=3).all_inner_texts() == [
            "Robots & <people> at work",
            "Story number 2",
        ]
        link = page.get_by_role("link", name="Robots & <people> at work")
        assert link.get_attribute("href") == "https://news.example.com/story-3"
        image = page.locator("article img").first
        assert image.evaluate("i => i.decode().then(() => i.naturalWidth)") == 800
        assert check_alternates(page) == [
            server + f"topics/ai.{ext}" for ext in ("rss", "atom", "json")
        ]
        assert page.get_by_label("Atom").input_value() == server + "topics/ai.atom"
        check_page(page, tmp_path / f"feed-{scheme}.png")

        # Every story, page after page, and back to the newest.
        page.get_by_role("link", name="Older stories").click()
        page.wait_for_url(server + "topics/ai/archive/1.html")
        # The slice of the archive document: the oldest two, of which one is also newest.
        assert page.get_by_role("heading", level=3).all_inner_texts() == [
            "Story number 2",
            "Story number 1",
        ]
        check_page(page, tmp_path / f"archive-{scheme}.png", axe=False)  # feed.html
        page.get_by_role("link", name="Newer stories").click()
        page.wait_for_url(server + "topics/ai.html")
        page.get_by_role("link", name="All feeds of Test <News>").click()
        page.wait_for_url(server + "index.html")


def test_find_and_sort_as_you_type_by_keyboard(server, browser, tmp_path):
    with opened(browser, DESKTOP) as page:
        page.goto(server + "index.html")
        names = page.locator("ul.feeds li > a:first-child")
        assert names.count() == 6
        # From the top of the page, the keyboard reaches the search box.
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "filter":
                break
        else:
            pytest.fail("the search box is not reachable with Tab")
        page.keyboard.type("rob")
        assert page.locator("ul.feeds li:visible > a:first-child").all_inner_texts() == ["Robots"]
        status = page.get_by_role("status")
        sync_api.expect(status).to_have_text("Found 1 of the 6 feeds listed here.")
        assert page.locator("#providers").is_hidden()  # a section with no match folds away
        # Providers of one story are not listed on the index: found in providers.tsv.
        page.keyboard.press("Control+A")
        page.keyboard.type("tiny")
        sync_api.expect(status).to_have_text(
            "Found 0 of the 6 feeds listed here and 3 more providers."
        )
        more = page.locator("#more li > a:first-child")
        assert more.all_inner_texts() == ["Tiny 4", "Tiny 5", "Tiny 6"]
        atom = page.get_by_role("link", name="Atom feed of Tiny 5")
        assert atom.get_attribute("href") == "providers/tiny5.example.net.atom"
        assert feedparser.parse(fetch(server + "providers/tiny5.example.net.atom")).entries
        check_page(page, tmp_path / "found.png")
        page.keyboard.press("Tab")  # on to the sort order, then back to the search box
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Control+A")
        page.keyboard.type("other")
        visible = page.locator("ul.feeds li:visible > a:first-child")
        assert visible.all_inner_texts() == ["Other Daily"]
        visible.first.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(server + "providers/other.org.html")
        page.go_back()
        page.get_by_label("Find a feed").fill("")
        page.get_by_label("Sort by").select_option("name")
        topics = page.locator("#topics li > a:first-child").all_inner_texts()
        assert topics == ["AI", "Ethics", "Robots"]
        page.get_by_label("Sort by").select_option("stories")
        assert page.locator("#topics li > a:first-child").all_inner_texts() == [
            "Ethics",
            "AI",
            "Robots",
        ]
        page.get_by_label("Sort by").select_option("newest")
        assert page.locator("#topics li > a:first-child").all_inner_texts() == [
            "Ethics",
            "AI",
            "Robots",
        ]


def test_copy_a_feed_url(server, browser):
    with opened(browser, PHONE, permissions=["clipboard-read", "clipboard-write"]) as page:
        page.goto(server + "topics/ai.html")
        button = page.locator("button[data-copy=url-atom]")
        button.click()
        sync_api.expect(button).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == server + "topics/ai.atom"
