"""The HTML pages and the OPML list: what a person and a feed reader find there."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import feedparser
import lxml.html

from feeds import listings, parsecache
from feeds.publisher import Publisher
from tests.conftest import BASE_URL, article
from tests.test_handover import exported


def html(snapshot, path: str):
    rendered = snapshot.files[path]
    assert rendered.media_type == "text/html"
    return lxml.html.fromstring(rendered.body)


def local(url: str) -> str:
    """The snapshot path of an absolute URL on the site."""
    assert url.startswith(BASE_URL), url
    return url.removeprefix(BASE_URL).split("#")[0]


def resolve(page: str, href: str) -> str:
    """Where a link on ``page`` leads, as the browser resolves it."""
    return urljoin(BASE_URL + page, href)


def internal_links(snapshot, page: str) -> list[str]:
    doc = html(snapshot, page)
    urls = [resolve(page, href) for href in doc.xpath("//a/@href")]
    return [local(u) for u in urls if u.startswith(BASE_URL)]


def three_articles(site) -> None:
    site.configure(feeds={"items": 2})
    site.write("1.md", article(n=1, topics=["AI", "Robots"]))
    site.write("2.md", article(n=2, provider={"name": "Other Daily", "domain": "other.org"}))
    site.write("3.md", article(n=3))


def test_index_lists_every_feed_with_true_count_date_and_links(site):
    three_articles(site)
    snapshot = site.build()
    doc = html(snapshot, "index.html")
    assert [f.spec.path for f in snapshot.feeds] == [
        "all",
        "topics/ai",
        "topics/robots",
        "providers/example.com",
        "providers/other.org",
    ]
    # Counts are the whole history, not the feeds.items the feed URL holds (2 here).
    expected = {
        "all.html": ("All articles", "3 stories", "2023-06-03T10:00:00Z"),
        "topics/ai.html": ("AI", "3 stories", "2023-06-03T10:00:00Z"),
        "topics/robots.html": ("Robots", "1 story", "2023-06-01T10:00:00Z"),
        "providers/example.com.html": ("Example News", "2 stories", "2023-06-03T10:00:00Z"),
    }
    for page, (name, count, newest) in expected.items():
        [link] = doc.xpath("//li/a[@href=$p]", p=page)
        assert link.text_content() == name
        entry = link.getparent()
        assert entry.xpath(".//data")[0].text_content() == count
        assert entry.xpath(".//time/@datetime") == [newest]
        feed = page.removesuffix(".html")
        assert [a.get("href") for a in entry.xpath(".//a[@type]")] == [
            f"{feed}.rss",
            f"{feed}.atom",
            f"{feed}.json",
        ]
    # Sections with jump links, largest first; a provider of one story is on the A-Z page.
    assert doc.xpath("//section[not(@hidden)]/h2/text()") == ["Topics", "Providers"]
    jumps = doc.xpath("//nav[@aria-label='Sections']//a/@href")
    assert jumps == ["#topics", "#providers", "providers.html", "feeds.opml"]
    assert doc.xpath("//section[@id='topics']//li/a[not(@type)]/@href") == [
        "topics/ai.html",
        "topics/robots.html",
    ]
    assert doc.xpath("//section[@id='providers']//li/a[not(@type)]/@href") == [
        "providers/example.com.html"
    ]
    directory = html(snapshot, "providers.html")
    assert directory.xpath("//li/a[not(@type)]/text()") == ["Example News", "Other Daily"]
    for page in ("index.html", "providers.html"):
        assert set(internal_links(snapshot, page)) <= set(snapshot.files)


def test_index_stays_small_with_thousands_of_providers(site, monkeypatch):
    monkeypatch.setattr(listings, "DIRECTORY_PAGE", 40)
    for n in range(1, 121):  # 120 providers, the first 30 with two stories
        provider = {"name": f"Provider {n:03d}", "domain": f"p{n:03d}.example.com"}
        site.write(f"{n}.md", article(n=n % 28 + 1, webUrl=f"https://x.org/{n}", provider=provider))
        if n <= 30:
            site.write(f"{n}b.md", article(webUrl=f"https://x.org/{n}b", provider=provider))
    snapshot = site.build()
    index = html(snapshot, "index.html")
    listed = index.xpath("//section[@id='providers']//li/a[not(@type)]/text()")
    assert sorted(listed) == [f"Provider {n:03d}" for n in range(1, 31)]
    assert "every provider A–Z" in index.xpath("//section[@id='providers']/p")[0].text_content()
    # The A-Z pages: every provider once, by name, 40 a page, linked next and prev.
    names, page, pages = [], "providers.html", []
    while page:
        pages.append(page)
        doc = html(snapshot, page)
        names += doc.xpath("//main//li/a[not(@type)]/text()")
        older = doc.xpath("//a[@rel='next']/@href")
        page = older[0] if older else None
        if page:
            assert html(snapshot, page).xpath("//a[@rel='prev']/@href") == [pages[-1]]
    assert pages == ["providers.html", "providers-2.html", "providers-3.html"]
    assert names == [f"Provider {n:03d}" for n in range(1, 121)]


def test_opml_per_section(site):
    three_articles(site)
    snapshot = site.build()
    for path, kind in [("topics.opml", "topic"), ("providers.opml", "provider")]:
        root = ET.fromstring(snapshot.files[path].body)
        urls = [local(o.get("xmlUrl")) for o in root.iter("outline") if o.get("xmlUrl")]
        assert urls == [f"{f.spec.path}.rss" for f in snapshot.feeds if f.spec.kind == kind]


def test_feed_page_lists_its_newest_items_with_provider_and_topics(site):
    three_articles(site)
    site.write("4.md", article(n=4, images=[{"url": "https://img.example.com/4.jpg"}]))
    snapshot = site.build()
    doc = html(snapshot, "topics/ai.html")
    assert doc.xpath("//h1")[0].text_content() == "AI"
    assert "4 stories, the newest on 2023-06-04" in doc.xpath("//header")[0].text_content()
    items = doc.xpath("//main/ol/li")
    assert len(items) == 2  # feeds.items, the newest first
    first, second = items
    [title] = first.xpath(".//h3/a")
    assert (title.text_content(), title.get("href")) == (
        "Story number 4",
        "https://news.example.com/story-4",
    )
    [provider] = first.xpath(".//p[@class='meta']/a")
    assert (provider.text_content(), provider.get("href")) == (
        "Example News",
        "../providers/example.com.html",
    )
    assert first.xpath(".//time/@datetime") == ["2023-06-04T10:00:00Z"]
    assert first.xpath(".//div[@class='text']")[0].text_content() == "What happened in story 4."
    assert first.xpath(".//p[@class='topics']/a/@href") == ["../topics/ai.html"]
    [image] = first.xpath(".//img")
    assert image.attrib == {"src": "https://img.example.com/4.jpg", "loading": "lazy", "alt": ""}
    [image] = second.xpath(".//img")
    assert (image.get("src"), image.get("width"), image.get("height")) == (
        "https://img.example.com/3.jpg",
        "800",
        "450",
    )
    assert second.xpath(".//h3/a/@href") == ["https://news.example.com/story-3"]
    # Subscribe: each feed URL to copy, one line on what to do with it.
    fields = doc.xpath("//section[@class='subscribe']//input")
    assert [local(f.get("value")) for f in fields] == [
        "topics/ai.rss",
        "topics/ai.atom",
        "topics/ai.json",
    ]
    buttons = doc.xpath("//section[@class='subscribe']//button/@data-copy")
    assert buttons == [f.get("id") for f in fields]
    assert (
        "paste it into your feed reader"
        in doc.xpath("//section[@class='subscribe']")[0].text_content()
    )
    # Links back to the index and on to older stories, relative to the page.
    links = internal_links(snapshot, "topics/ai.html")
    assert {"index.html", "topics/ai/archive/1.html", "providers/example.com.html"} <= set(links)
    assert set(links) <= set(snapshot.files)


def test_feed_pages_mirror_the_archive_pages(site):
    site.configure(feeds={"items": 3})
    for n in range(1, 12):
        site.write(f"{n}.md", article(n=n))
    snapshot = site.build()
    # Walk from the feed's page to the oldest by rel="next", and back by rel="prev".
    page, chain = "all.html", []
    while page:
        chain.append(page)
        doc = html(snapshot, page)
        ids = doc.xpath("//main/ol/li//h3/a/@href")
        path = page.removesuffix(".html")
        entries = [e.id for e in feedparser.parse(snapshot.files[f"{path}.atom"].body).entries]
        assert ids == entries, page  # the same slice as the feed document at the same path
        [head_next] = doc.xpath("//head/link[@rel='next']/@href") or [None]
        older = doc.xpath("//nav[@class='pager']/a[@rel='next']/@href")
        assert older == ([head_next] if head_next else [])
        page = local(resolve(page, older[0])) if older else None
        if page:
            newer = html(snapshot, page).xpath("//nav[@class='pager']/a[@rel='prev']/@href")
            assert [local(resolve(page, h)) for h in newer] == [chain[-1]]
    assert chain == ["all.html", "all/archive/3.html", "all/archive/2.html", "all/archive/1.html"]
    seen = {href for p in chain for href in html(snapshot, p).xpath("//main/ol/li//h3/a/@href")}
    assert len(seen) == 11  # every story reachable
    archive = html(snapshot, "all/archive/1.html")
    assert archive.xpath("//h2")[0].text_content() == "Stories from 2023-06-01 to 2023-06-03"
    assert not archive.xpath("//section[@class='subscribe']")


def test_archive_pages_are_not_rendered_again_for_a_newer_story(site, monkeypatch):
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)
    site.configure(feeds={"items": 2})
    for n in range(1, 8):
        site.write(f"{n}.md", article(n=n))
    publisher = Publisher(site.config_path)
    first = publisher.build()
    site.write("8.md", article(n=8))
    second = publisher.build()
    same = [p for p in first.files if p.endswith(".html") and first.files[p] is second.files.get(p)]
    archives = ["all/archive/1.html", "all/archive/2.html", "all/archive/3.html"]
    assert set(archives) <= set(same)
    assert "all.html" not in same and "index.html" not in same


def test_article_without_image_or_excerpt(site):
    site.write("1.md", article(n=1, images=None, excerpt=None))
    doc = html(site.build(), "all.html")
    assert doc.xpath("//img") == []
    assert doc.xpath("//article//div[@class='text']") == []


def test_autodiscovery_links_are_feeds_of_the_snapshot(site):
    three_articles(site)
    snapshot = site.build()
    media = {"rss": "application/rss+xml", "atom": "application/atom+xml"}
    media["json"] = "application/feed+json"
    for page in ["index.html", *(f"{f.spec.path}.html" for f in snapshot.feeds)]:
        links = html(snapshot, page).xpath("//head/link[@rel='alternate']")
        assert links, page
        for link in links:
            path = local(link.get("href"))
            assert link.get("type") == media[path.rsplit(".", 1)[1]]
            assert link.get("title")
            body = snapshot.files[path].body
            if path.endswith(".json"):
                assert json.loads(body)["items"]
            else:
                parsed = feedparser.parse(body)
                assert not parsed.bozo, (path, parsed.bozo_exception)
                assert parsed.entries
    own = html(snapshot, "providers/other.org.html").xpath("//link[@rel='alternate']/@href")
    assert [local(u) for u in own] == [
        "providers/other.org.rss",
        "providers/other.org.atom",
        "providers/other.org.json",
    ]


def test_index_announces_only_the_all_feed_when_there_are_many(site):
    site.configure(feeds={"formats": ["atom", "rss"]})
    site.write("1.md", article(n=1, topics=[f"Topic {k}" for k in range(10)]))
    snapshot = site.build()
    hrefs = html(snapshot, "index.html").xpath("//link[@rel='alternate']/@href")
    assert [local(h) for h in hrefs] == ["all.atom", "all.rss"]


def test_every_page_is_a_small_html5_document_in_the_site_language(site):
    site.configure(site={"title": "Nachrichten", "base_url": BASE_URL, "language": "de"})
    site.write("1.md", article(n=1))
    snapshot = site.build()
    pages = [p for p, r in snapshot.files.items() if r.media_type == "text/html"]
    assert sorted(pages) == [
        "all.html",
        "index.html",
        "providers.html",
        "providers/example.com.html",
        "topics/ai.html",
    ]
    for page in pages:
        body = snapshot.files[page].body
        assert body.startswith(b"<!doctype html>\n")
        doc = lxml.html.fromstring(body)
        assert doc.get("lang") == "de"
        assert doc.xpath("//meta[@name='viewport']/@content")
        assert doc.xpath("//title/text()")
        # No script of its own but the site's file (which the CSP alone allows), no handler.
        root = "../" * page.count("/")
        assert doc.xpath("//script/@src") == [f"{root}feeds.js"], page
        assert not doc.xpath("//script/text() | //@*[starts-with(name(), 'on')]"), page
        [csp] = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4")]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels)), page


def test_article_markup_is_escaped(site):
    title = '<script>alert("t")</script> & <b>bold</b>'
    excerpt = "<img src=x onerror=alert(1)> Tom & Jerry"
    site.write("1.md", article(n=1, title=title, excerpt=excerpt, topics=["<i>AI</i>"]))
    snapshot = site.build()
    for path, rendered in snapshot.files.items():
        if path.endswith((".html", ".opml")):
            assert b"<script>" not in rendered.body, path
            assert b"<img src=x" not in rendered.body, path
            assert b"<i>" not in rendered.body, path
    doc = html(snapshot, "all.html")
    assert doc.xpath("//article//h3")[0].text_content() == title
    assert excerpt in doc.xpath("//article")[0].text_content()
    assert doc.xpath("//img/@src") == ["https://img.example.com/1.jpg"]


def test_opml_lists_every_feed_once(site):
    three_articles(site)
    site.configure(feeds={"formats": ["atom", "json"]})
    snapshot = site.build()
    opml = snapshot.files["feeds.opml"]
    assert opml.media_type == "text/x-opml"
    root = ET.fromstring(opml.body)
    assert (root.tag, root.get("version")) == ("opml", "2.0")
    assert root.findtext("head/title") == "Test News"
    assert root.findtext("head/dateModified") == "Sat, 03 Jun 2023 10:00:00 GMT"
    outlines = [o for o in root.iter("outline") if o.get("xmlUrl")]
    assert [local(o.get("xmlUrl")) for o in outlines] == [
        f"{f.spec.path}.atom" for f in snapshot.feeds
    ]
    for outline, feed in zip(outlines, snapshot.feeds, strict=True):
        assert outline.get("text") == outline.get("title") == feed.spec.title
        assert local(outline.get("htmlUrl")) == f"{feed.spec.path}.html"
        assert local(outline.get("htmlUrl")) in snapshot.files
        assert feedparser.parse(snapshot.files[local(outline.get("xmlUrl"))].body).entries


def test_a_site_without_feeds_has_an_index_and_no_opml(site):
    snapshot = site.build()
    assert set(snapshot.files) == {"index.html", "feeds.css", "feeds.js"}
    assert "No feeds yet." in html(snapshot, "index.html").text_content()


def test_without_pages_the_feeds_and_opml_files_are_published_alone(site, runner):
    three_articles(site)
    assert runner("build").exit_code == 0
    with_pages = exported(site)
    site.configure(feeds={"items": 2, "pages": False})

    result = runner("build")

    assert result.exit_code == 0, result.output
    alone = exported(site)
    for_people = {p for p in with_pages if p.endswith((".html", ".css", ".js", ".tsv"))}
    assert "index.html" in for_people and "topics/ai/archive/1.html" in for_people
    assert alone.keys() == with_pages.keys() - for_people
    assert {"feeds.opml", "topics.opml", "providers.opml"} <= alone.keys()
    feeds = [p for p in alone if not p.endswith(".opml")]
    assert feeds and all(alone[p] == with_pages[p] for p in feeds)
    # The OPML files send readers to the site, not to pages that are not there.
    for name in ("feeds.opml", "topics.opml", "providers.opml"):
        outlines = ET.fromstring(alone[name]).iter("outline")
        links = {o.get("htmlUrl") for o in outlines if o.get("xmlUrl")}
        assert links == {BASE_URL}, name


def test_pages_are_byte_identical_on_rebuild(site):
    three_articles(site)
    first = site.build()
    site.write("3.md", article(n=3))  # rewritten, same content
    second = site.build()
    pages = [p for p in first.files if p.endswith((".html", ".opml"))]
    assert len(pages) == 12
    for path in pages:
        assert first.files[path].body == second.files[path].body
        assert first.files[path].etag == second.files[path].etag


def test_pages_module_does_not_import_the_web_stack():
    code = "import sys, feeds.pages; print(sorted({'flask', 'click'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_items_link_to_a_feed_as_soon_as_it_exists(site, monkeypatch):
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)
    site.configure(feeds={"items": 1, "providers": {"min_articles": 2}})
    other = {"name": "Other Daily", "domain": "other.org"}
    site.write("1.md", article(n=1, provider=other))
    site.write("2.md", article(n=2))
    publisher = Publisher(site.config_path)

    def provider_links(files, page):
        doc = lxml.html.fromstring(files[page].body)
        return doc.xpath("//article//p[@class='meta']/a/@href")

    first = publisher.build()
    assert provider_links(first.files, "all/archive/1.html") == []  # one story: no feed yet
    site.write("3.md", article(n=3, provider=other))
    second = publisher.build()
    assert provider_links(second.files, "all/archive/1.html") == ["../../providers/other.org.html"]
    assert second.files["all/archive/1.html"].body == site.build().files["all/archive/1.html"].body
