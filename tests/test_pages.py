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

from tests.conftest import BASE_URL, article


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


def test_index_lists_every_feed_with_count_date_and_links(site):
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
    expected = {
        "all.html": ("All articles", "2 articles", "2023-06-03T10:00:00Z"),
        "topics/ai.html": ("AI", "2 articles", "2023-06-03T10:00:00Z"),
        "topics/robots.html": ("Robots", "1 article", "2023-06-01T10:00:00Z"),
        "providers/example.com.html": ("Example News", "2 articles", "2023-06-03T10:00:00Z"),
        "providers/other.org.html": ("Other Daily", "1 article", "2023-06-02T10:00:00Z"),
    }
    for page, (name, count, newest) in expected.items():
        [link] = doc.xpath("//li/a[@href=$p]", p=page)
        assert link.text_content() == name
        entry = link.getparent()
        assert count in entry.text_content()
        assert entry.xpath(".//time/@datetime") == [newest]
        feed = page.removesuffix(".html")
        assert [a.get("href") for a in entry.xpath(".//a[@type]")] == [
            f"{feed}.rss",
            f"{feed}.atom",
            f"{feed}.json",
        ]
    # Grouped: the all-articles feed first, then topics, then providers.
    assert doc.xpath("//h2/text()") == ["Topics", "Providers"]
    topics = doc.xpath("//section[h2='Topics']//li/a[not(@type)]/@href")
    assert topics == ["topics/ai.html", "topics/robots.html"]
    assert set(internal_links(snapshot, "index.html")) <= set(snapshot.files)


def test_feed_page_lists_its_current_items(site):
    three_articles(site)
    site.write("4.md", article(n=4, images=[{"url": "https://img.example.com/4.jpg"}]))
    snapshot = site.build()
    doc = html(snapshot, "topics/ai.html")
    assert doc.xpath("//h1")[0].text_content() == "AI"
    items = doc.xpath("//main/ol/li")
    assert len(items) == 2  # feeds.items, the newest first
    first, second = items
    [title] = first.xpath(".//h2/a")
    assert (title.text_content(), title.get("href")) == (
        "Story number 4",
        "https://news.example.com/story-4",
    )
    assert "Example News" in first.xpath(".//p[@class='meta']")[0].text_content()
    assert first.xpath(".//time/@datetime") == ["2023-06-04T10:00:00Z"]
    assert "What happened in story 4." in first.text_content()
    [image] = first.xpath(".//img")
    assert image.attrib == {"src": "https://img.example.com/4.jpg", "loading": "lazy", "alt": ""}
    [image] = second.xpath(".//img")
    assert (image.get("src"), image.get("width"), image.get("height")) == (
        "https://img.example.com/3.jpg",
        "800",
        "450",
    )
    assert second.xpath(".//h2/a/@href") == ["https://news.example.com/story-3"]
    # Links back to the index and to its own feed, relative to the page.
    links = internal_links(snapshot, "topics/ai.html")
    assert "index.html" in links
    assert {"topics/ai.rss", "topics/ai.atom", "topics/ai.json"} <= set(links)
    assert set(links) <= set(snapshot.files)


def test_article_without_image_or_excerpt(site):
    site.write("1.md", article(n=1, images=None, excerpt=None))
    doc = html(site.build(), "all.html")
    assert doc.xpath("//img") == []
    assert doc.xpath("//article/p") == doc.xpath("//article/p[@class='meta']")


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
        assert not doc.xpath("//script | //@*[starts-with(name(), 'on')]"), page  # no JavaScript
        levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4")]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels)), page


def test_article_markup_is_escaped(site):
    title = '<script>alert("t")</script> & <b>bold</b>'
    excerpt = "<img src=x onerror=alert(1)> Tom & Jerry"
    site.write("1.md", article(n=1, title=title, excerpt=excerpt, topics=["<i>AI</i>"]))
    snapshot = site.build()
    for path, rendered in snapshot.files.items():
        if path.endswith((".html", ".opml")):
            assert b"<script" not in rendered.body, path
            assert b"<img src=x" not in rendered.body, path
            assert b"<i>" not in rendered.body, path
    doc = html(snapshot, "all.html")
    assert doc.xpath("//article//h2")[0].text_content() == title
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
    assert set(snapshot.files) == {"index.html"}
    assert "No feeds yet." in html(snapshot, "index.html").text_content()


def test_pages_are_byte_identical_on_rebuild(site):
    three_articles(site)
    first = site.build()
    site.write("3.md", article(n=3))  # rewritten, same content
    second = site.build()
    pages = [p for p in first.files if p.endswith((".html", ".opml"))]
    assert len(pages) == 7
    for path in pages:
        assert first.files[path].body == second.files[path].body
        assert first.files[path].etag == second.files[path].etag


def test_pages_module_does_not_import_the_web_stack():
    code = "import sys, feeds.pages; print(sorted({'flask', 'click'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
