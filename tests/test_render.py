import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest
from lxml import etree

from feeds import body
from feeds.articles import MAX_RELATED, MAX_TOPICS
from feeds.publisher import Publisher, Snapshot
from feeds.render import FORMATS, Renderer, _feed_entry
from feeds.settings import MAX_ITEMS
from feeds.text import MAX_URL
from feeds.web import create_app

from .conftest import BASE_URL, FAST_DUMPER, Site, article

ATOM = "http://www.w3.org/2005/Atom"


@pytest.fixture(scope="module")
def corpus_build(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Snapshot:
    """A build of the corpus, made once for the two tests that only read it."""
    site = Site(tmp_path_factory.mktemp("corpus-site"))
    site.configure(articles={"folder": str(corpus)})
    return site.build()


def test_every_corpus_feed_is_well_formed_with_unique_ids(corpus_build):
    snapshot = corpus_build
    assert snapshot.problems == ()
    assert len(snapshot.files) > 20
    for path, rendered in snapshot.files.items():
        if path.endswith(".json"):
            items = json.loads(rendered.body)["items"]
            assert len({i["id"] for i in items}) == len(items) > 0
            continue
        if not path.endswith((".rss", ".atom")):
            continue
        parsed = feedparser.parse(rendered.body)
        assert not parsed.bozo, (path, parsed.bozo_exception)
        ids = [e.id for e in parsed.entries]
        assert ids and len(ids) == len(set(ids)), path
        assert parsed.feed.links[0].href if path.endswith(".atom") else parsed.feed.link
        ElementTree.fromstring(rendered.body)  # also plain XML


@pytest.mark.parametrize(
    ("extension", "tag", "id_tag"), [("rss", "item", "guid"), ("atom", "entry", "id")]
)
def test_an_article_has_the_same_item_bytes_in_every_feed_that_holds_it(
    corpus_build, extension, tag, id_tag
):
    """An article's entry is built once and reused in each of its feeds: every copy is the
    same bytes (no namespace declared again, no field lost) wherever it lands."""
    seen: dict[bytes, bytes] = {}
    shared = 0
    for path, rendered in corpus_build.files.items():
        if not path.endswith("." + extension):
            continue
        for item in re.findall(
            rb"<%s>.*?</%s>" % (tag.encode(), tag.encode()), rendered.body, re.S
        ):
            assert b"xmlns" not in item, path
            key = re.search(rb"<%s[^>]*>([^<]+)</" % id_tag.encode(), item).group(1)
            shared += key in seen
            assert seen.setdefault(key, item) == item, (path, key)
    assert shared > len(seen)  # most articles are in several feeds


def test_no_secured_text_anywhere(corpus_build, corpus):
    secrets = set()
    for path in corpus.iterdir():
        match = re.search(rb'^secured: "?([^"\n]{24})', path.read_bytes(), re.M)
        if match:
            secrets.add(match.group(1))
    assert secrets
    for rendered in corpus_build.files.values():
        assert not any(s in rendered.body for s in secrets)


def test_rebuilding_gives_the_same_bytes(corpus_site):
    first = {p: r.body for p, r in corpus_site.build().files.items()}
    second = {p: r.body for p, r in corpus_site.build().files.items()}
    assert first == second


def test_rss_channel_and_item(site):
    site.write("1.md", article(n=1, title="Older"))
    site.write(
        "2.md",
        article(
            n=2,
            title="Newer",
            topics=["AI", "AI in Healthcare"],
            related=[
                {
                    "title": "See also <this>",
                    "webUrl": "https://o.example/r",
                    "provider": {"name": "Other"},
                }
            ],
        ),
    )
    body = site.feed("all.rss")
    channel = ElementTree.fromstring(body).find("channel")
    assert channel.findtext("link") == "https://feeds.example.org/"
    self_link = channel.find("{http://www.w3.org/2005/Atom}link")
    assert self_link.get("href") == BASE_URL + "all.rss" and self_link.get("rel") == "self"
    # The feed's date is its newest item's, never the build time.
    assert parsedate_to_datetime(channel.findtext("lastBuildDate")).isoformat() == (
        "2023-06-02T10:00:00+00:00"
    )
    newest = channel.findall("item")[0]
    assert newest.findtext("title") == "Newer"
    guid = newest.find("guid")
    assert guid.text == "https://news.example.com/story-2" and guid.get("isPermaLink") == "true"
    assert newest.findtext("pubDate") == "Fri, 02 Jun 2023 10:00:00 +0000"
    assert [c.text for c in newest.findall("category")] == ["AI", "AI in Healthcare"]
    assert newest.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Example News"
    assert newest.find("source").get("url") == "https://example.com/"
    assert newest.findtext("description") == "What happened in story 2."
    media = "{http://search.yahoo.com/mrss/}"
    assert newest.find(media + "thumbnail").get("url") == "https://img.example.com/2.jpg"
    assert newest.find(media + "content").get("medium") == "image"
    content = newest.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
    assert '<a href="https://o.example/r">See also &lt;this&gt;</a> (Other)' in content


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("all.rss", "application/rss+xml"), ("all.atom", "application/atom+xml")],
)
def test_a_filtered_feed_says_its_own_format_in_its_self_link(site, path, media_type):
    """The self link of a filtered feed, whose URL ends in its query, has the feed's type."""
    site.write("1.md", article(n=1))
    site.write("2.md", article(n=2))
    response = create_app(site.config_path).test_client().get(f"/{path}?limit=2")
    assert response.status_code == 200
    channel = ElementTree.fromstring(response.data)
    (self_link,) = [
        link
        for link in channel.iter("{http://www.w3.org/2005/Atom}link")
        if link.get("rel") == "self"
    ]
    assert self_link.get("href") == f"{BASE_URL}{path}?limit=2"
    assert self_link.get("type") == media_type


def test_atom_feed_and_entry(site):
    site.write("1.md", article(n=1))
    parsed = feedparser.parse(site.feed("topics/ai.atom"))
    assert parsed.version == "atom10"
    assert parsed.feed.id == BASE_URL + "topics/ai.atom"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {"self": BASE_URL + "topics/ai.atom", "alternate": "https://feeds.example.org/"}
    assert parsed.feed.updated == "2023-06-01T10:00:00+00:00"
    (entry,) = parsed.entries
    assert entry.id == entry.link == "https://news.example.com/story-1"
    assert [link.rel for link in entry.links] == ["alternate"]  # the image is media, not a link
    assert entry.author == "Example News"
    assert entry.summary == "What happened in story 1."
    assert entry.published == "2023-06-01T10:00:00+00:00"
    assert entry.media_thumbnail[0]["url"] == "https://img.example.com/1.jpg"


def test_markup_is_escaped_and_bad_characters_dropped(site):
    site.write(
        "1.md",
        article(title="<script>alert(1)</script> & \x0b friends", excerpt="]]> <b>bold</b> \x01"),
    )
    body = site.feed("all.rss")
    assert b"<script>" not in body and b"<b>" not in body
    (item,) = ElementTree.fromstring(body).iter("item")
    assert item.findtext("title") == "<script>alert(1)</script> & friends"
    # RSS description is HTML: the plain-text excerpt is escaped as HTML, then as XML.
    assert item.findtext("description") == "]]&gt; &lt;b&gt;bold&lt;/b&gt;"
    (entry,) = feedparser.parse(body).entries
    assert entry.summary == "]]&gt; &lt;b&gt;bold&lt;/b&gt;"  # feedparser keeps it as HTML


def test_atom_links_its_site_first_and_names_each_source_with_an_id_and_a_date(site):
    """A popular JavaScript parser takes a feed's first link for the site's; the W3C
    validator wants id and updated in every atom:source."""
    site.write("1.md", article())
    atom = ElementTree.fromstring(site.feed("all.atom"))
    links = atom.findall(f"{{{ATOM}}}link")
    assert [link.get("rel") for link in links] == ["alternate", "self"]
    source = atom.find(f"{{{ATOM}}}entry/{{{ATOM}}}source")
    assert source.findtext(f"{{{ATOM}}}id") == "https://example.com/"
    assert source.findtext(f"{{{ATOM}}}updated") == "2023-06-01T10:00:00+00:00"
    assert feedparser.parse(site.feed("all.atom")).feed.link == "https://feeds.example.org/"


def test_feed_titles_and_paths(site):
    site.write(
        "1.md",
        article(
            topics=["AI in Healthcare"], provider={"name": "Bloomberg", "domain": "Bloomberg.com"}
        ),
    )
    files = {p: r for p, r in site.build().files.items() if p.endswith((".rss", ".atom"))}
    assert sorted(files) == sorted(
        f"{p}.{ext}"
        for p in ("all", "topics/ai-in-healthcare", "providers/bloomberg.com")
        for ext in ("rss", "atom")
    )
    assert feedparser.parse(files["providers/bloomberg.com.rss"].body).feed.title == (
        "Test News: Bloomberg"
    )
    assert files["all.rss"].media_type == "application/rss+xml"


def test_only_configured_formats_are_rendered(site):
    site.configure(feeds={"formats": ["atom"]})
    site.write("1.md", article())
    pages = (".html", ".opml", ".css", ".js", ".tsv")
    feeds = [p for p in site.build().files if not p.endswith(pages)]
    assert feeds and all(p.endswith(".atom") for p in feeds)


def test_older_items_are_on_archive_pages(site):
    site.configure(feeds={"items": 3})
    for n in range(1, 9):
        site.write(f"{n}.md", article(n=n))
    files = site.build().files

    def atom(path):
        parsed = feedparser.parse(files[path].body)
        assert not parsed.bozo
        links = {link.rel: link.href.removeprefix(BASE_URL) for link in parsed.feed.links}
        return [e.title.removeprefix("Story number ") for e in parsed.entries], links

    # Newest 3 at the feed URL; the history in pages of 3 from the oldest, so they never shift.
    assert atom("all.atom") == (
        ["8", "7", "6"],
        {
            "self": "all.atom",
            "alternate": "",  # the site link, here the base URL
            "prev-archive": "all/archive/2.atom",
        },
    )
    assert atom("all/archive/2.atom") == (
        ["6", "5", "4"],
        {
            "self": "all/archive/2.atom",
            "alternate": "",  # the site link, here the base URL
            "current": "all.atom",
            "prev-archive": "all/archive/1.atom",
        },
    )
    assert atom("all/archive/1.atom")[0] == ["3", "2", "1"]
    assert "next-archive" in atom("all/archive/1.atom")[1]
    assert b"<fh:archive/>" in files["all/archive/1.atom"].body
    assert b"<fh:archive/>" not in files["all.atom"].body
    # RSS keeps the archive links that feedgen would drop.
    channel = ElementTree.fromstring(files["all.rss"].body).find("channel")
    rels = {a.get("rel"): a.get("href") for a in channel.iter("{http://www.w3.org/2005/Atom}link")}
    assert rels["prev-archive"] == BASE_URL + "all/archive/2.rss"
    assert json.loads(files["all.json"].body)["next_url"] == BASE_URL + "all/archive/2.json"


def test_archives_can_be_turned_off(site):
    site.configure(feeds={"items": 1, "archives": False})
    site.write("1.md", article(n=1))
    site.write("2.md", article(n=2))
    assert not any("archive" in p for p in site.build().files)


def test_hub_and_ttl_are_announced_in_every_format(site):
    site.configure(websub={"hub": "https://hub.example.net/"}, feeds={"max_age": 900})
    site.write("1.md", article())
    files = site.build().files
    channel = ElementTree.fromstring(files["all.rss"].body).find("channel")
    rels = {a.get("rel"): a.get("href") for a in channel.iter("{http://www.w3.org/2005/Atom}link")}
    assert rels["hub"] == "https://hub.example.net/"
    assert channel.findtext("ttl") == "15"
    atom = feedparser.parse(files["all.atom"].body)
    assert {"rel": "hub", "href": "https://hub.example.net/"}.items() <= {
        k: v for link in atom.feed.links if link.rel == "hub" for k, v in link.items()
    }.items()
    assert json.loads(files["all.json"].body)["hubs"] == [
        {"type": "WebSub", "url": "https://hub.example.net/"}
    ]


def test_every_feed_stays_under_5_mib_with_every_field_at_its_limit(site):
    """Readers such as CommaFeed refuse feeds over 5 MiB. Articles with every field at its
    limit, and markup that escaping makes longest (``&`` is ``&amp;amp;`` inside the
    related-links HTML), at the largest feeds.items: every file stays under 5 MiB. Half of
    them have a huge body, of the same markup, which is cut to fit."""
    site.configure(feeds={"items": MAX_ITEMS, "archives": False, "formats": ["rss", "atom"]})
    amps = "&" * 400  # longer than any text limit: cut to it
    query = "a&b=" * 500
    # 150 paragraphs: some 30,000 characters, whose escaping alone is far past an item's room.
    markup = "\n\n".join(f"{k} " + '&<>"' * 50 for k in range(150))
    for n in range(MAX_ITEMS):
        path = site.write(
            f"{n:03d}.md",
            article(
                title=f"{n} {amps}",
                excerpt=amps,
                publishedDateTime=f"2023-01-01T00:{n:02d}:00Z",
                webUrl=f"https://x.example/{n}?" + query[: MAX_URL - 30],
                provider={"name": amps, "domain": "x.example"},
                topics=[f"{k:02d}{amps}" for k in range(MAX_TOPICS + 1)],
                images=[{"url": "https://img.example/?" + query[: MAX_URL - 30]}],
                related=[
                    {
                        "title": amps,
                        "webUrl": f"https://r{k}.example/?" + query[: MAX_URL - 30],
                        "provider": {"name": amps},
                    }
                    for k in range(MAX_RELATED + 1)
                ],
            ),
            dumper=FAST_DUMPER,  # PyYAML's own emitter's text, in a tenth of the time
        )
        if n % 2:
            path.write_bytes(path.read_bytes() + markup.encode())
    snapshot = Publisher(site.config_path).build()
    assert snapshot.problems == ()
    # lxml, not feedparser: parsing these 4 MiB took feedparser most of the test's time.
    atom = etree.fromstring(snapshot.files["all.atom"].body)
    contents = atom.findall(f"{{{ATOM}}}entry/{{{ATOM}}}content")
    assert sum(body.MORE in content.text for content in contents) == MAX_ITEMS // 2
    largest = max(snapshot.files.values(), key=lambda r: len(r.body))
    assert largest.path.endswith((".rss", ".atom"))
    assert len(largest.body) > 4 << 20  # near the limit: the field limits are what hold it
    assert all(len(r.body) < 5 << 20 for r in snapshot.files.values())


BODY = """Intro with a [relative link](../x/) and ![a chart](chart.png "Chart").

| a | b |
|---|---|
| 1 | ~~2~~ |

<script>alert(1)</script> <a href="javascript:alert(2)" onclick="alert(3)">bad</a>
"""


def write_with_body(site: Site, name: str, text: str = BODY, **fields) -> None:
    path = site.write(name, article(webUrl="https://site.example/2026/11/story/", **fields))
    path.write_bytes(path.read_bytes() + text.encode())


def test_a_body_is_full_content_beside_the_summary_in_every_format(site):
    write_with_body(
        site,
        "1.md",
        related=[{"title": "Other", "webUrl": "https://news.example.com/other"}],
    )
    files = site.build().files
    expected_urls = [
        "https://site.example/2026/11/x/",
        "https://site.example/2026/11/story/chart.png",
    ]
    contents = {}
    for fmt in ["rss", "atom"]:
        (entry,) = feedparser.parse(files[f"all.{fmt}"].body).entries
        assert entry.summary == "What happened in story 1."
        contents[fmt] = entry.content[0].value
    (item,) = json.loads(files["all.json"].body)["items"]
    assert item["summary"] == "What happened in story 1." and "content_text" not in item
    contents["json"] = item["content_html"]
    for fmt, content in contents.items():
        assert "<table>" in content and "<del>2</del>" in content, fmt
        assert [u for u in re.findall(r'(?:href|src)="([^"]+)"', content)][:2] == expected_urls
        assert "<script" not in content and "javascript:" not in content, fmt
        assert "onclick" not in content, fmt
        assert content.index("<table>") < content.index("Related:") < content.index("/other")
    rss = ElementTree.fromstring(files["all.rss"].body)
    assert rss.find("channel/item/description").text == "What happened in story 1."
    page = files["all.html"].body.decode()
    assert "<table>" in page and 'src="https://site.example/2026/11/story/chart.png"' in page


def test_with_summaries_only_no_body_is_published(site):
    site.configure(feeds={"content": "summary"})
    write_with_body(site, "1.md")
    files = site.build().files
    for path in ["all.rss", "all.atom", "all.json", "all.html"]:
        assert b"<table>" not in files[path].body and b"&lt;table" not in files[path].body
    (item,) = json.loads(files["all.json"].body)["items"]
    assert item["content_text"] == "What happened in story 1."


def test_an_article_without_a_body_is_published_as_before(site):
    write_with_body(site, "1.md", text="\n  \n")
    files = site.build().files
    (entry,) = feedparser.parse(files["all.atom"].body).entries
    assert "content" not in entry
    assert json.loads(files["all.json"].body)["items"][0]["content_text"]


def test_site_icon_and_logo_and_a_providers_own_image(site):
    site.configure(
        site={
            "title": "Test News",
            "base_url": BASE_URL,
            "icon": "https://feeds.example.org/icon.png",
            "logo": "https://feeds.example.org/logo.png",
        }
    )
    site.write("1.md", article())
    own = {"name": "Own", "domain": "own.example", "images": [{"url": "/relative.png"}]}
    own["images"].append({"url": "https://own.example/logo.png", "width": 50, "height": 50})
    site.write("2.md", article(n=2, provider=own))
    files = site.build().files
    rss = feedparser.parse(files["all.rss"].body).feed
    assert rss.image.href == "https://feeds.example.org/logo.png"
    atom = feedparser.parse(files["all.atom"].body).feed
    assert (atom.icon, atom.logo) == (
        "https://feeds.example.org/icon.png",
        "https://feeds.example.org/logo.png",
    )
    feed = json.loads(files["all.json"].body)
    assert feed["icon"] == feed["favicon"] == "https://feeds.example.org/icon.png"
    assert b'<link rel="icon" href="https://feeds.example.org/icon.png">' in files["all.html"].body
    # A provider feed shows the provider's own image (its first absolute one).
    assert feedparser.parse(files["providers/own.example.rss"].body).feed.image.href == (
        "https://own.example/logo.png"
    )
    atom = ElementTree.fromstring(files["providers/own.example.atom"].body)
    assert atom.findtext(f"{{{ATOM}}}icon") == "https://own.example/logo.png"
    assert atom.find(f"{{{ATOM}}}logo") is None
    own_json = json.loads(files["providers/own.example.json"].body)
    assert own_json["icon"] == "https://own.example/logo.png"
    assert json.loads(files["providers/example.com.json"].body)["icon"].endswith("/icon.png")


@pytest.mark.parametrize("content", ["summary", "full"])
def test_each_document_is_the_bytes_feedgen_writes_with_its_entries_in_it(
    corpus, tmp_path, content
):
    """Entries are serialised once and joined into each document that holds them: what
    comes out is, byte for byte, feedgen's own document with the entries added to it (with
    archive pages, a hub, every image and link, bodies or not)."""
    site = Site(tmp_path)
    site.configure(
        articles={"folder": str(corpus)},
        feeds={"items": 7, "content": content},
        websub={"hub": "https://hub.example/"},
    )
    snapshot = site.build()
    renderer = Renderer(snapshot.config)
    for doc in renderer.documents(snapshot.feeds):
        for fmt in (FORMATS["rss"], FORMATS["atom"]):
            fg = Renderer(snapshot.config).generator(doc, fmt, renderer.url(doc.path, fmt))
            for item in doc.items:
                fg.add_entry(_feed_entry(item, content == "full"), order="append")
            whole = fg.rss_str(pretty=True) if fmt.name == "rss" else fg.atom_str(pretty=True)
            assert snapshot.files[f"{doc.path}.{fmt.name}"].body == whole
