"""Hostile article files never break publishing.

Property tests (hypothesis) generate articles with markup, control characters, odd dates,
qualities, topics, providers and URLs; ``tests/nasty/`` holds fixed files, named for what
must happen to them: ``ok-*`` are published, ``bad-*`` are reported by name, ``hidden-*``
are valid but not in the all-articles feed (a duplicate, a negative quality).

Whatever the input, a build finishes in bounded time and memory, its feeds parse, its
pages show article text escaped, the valid articles are published and the bad ones
reported with their file name, nothing is written outside the output folder, and no
``secured`` value is published.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import markupsafe
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.articles import MAX_FILE_BYTES, read
from feeds.errors import Problem
from feeds.export import MANIFEST, export
from feeds.files import find
from feeds.parsecache import CACHE_FILE, ArticleCache
from feeds.publisher import Publisher, Snapshot
from feeds.store import STORE

from .conftest import Site, article

NASTY = Path(__file__).parent / "nasty"
SECRET = "NASTY-SECRET"  # in the secured field of every article written here
ATOM = "{http://www.w3.org/2005/Atom}"
BUILD_SECONDS = 20  # generous: each of these builds takes well under a second
BUILD_MEGABYTES = 1024  # more address space than a build may take on top of the tests'
# 30 examples a run (it was 60), each of up to four articles mixing the values below: each
# builds, exports and checks every file it publishes, and these tests took a fifth of the
# suite's time. Every property is still checked on every run; a failing example is saved in
# .hypothesis/ and tried first on the next run, and each run draws new ones.
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every tag the page templates use: an article can add none.
PAGE_TAGS = {
    "html", "head", "meta", "title", "link", "style", "body", "header", "nav", "a", "h1",
    "h2", "h3", "p", "main", "ol", "ul", "li", "article", "time", "img", "section", "footer",
    "span", "div", "data", "label", "input", "select", "option", "button", "script",
    "template",
}  # fmt: skip
# The tags Markdown makes: what a body holds once sanitised (raw HTML is cut down to them).
BODY_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "a", "img", "pre", "code", "em", "strong", "del",
    "ul", "ol", "li", "blockquote", "table", "thead", "tbody", "tr", "th", "td", "hr", "br",
}  # fmt: skip
CONTENT_TAGS = {"p", "ul", "li", "a"} | BODY_TAGS  # the body and related links of an item
VOID_TAGS = {"meta", "link", "img", "br", "hr", "input"}
FEED_PATH = re.compile(
    r"(all|topics/[a-z0-9-]{1,200}|providers/[a-z0-9.-]{1,200})"
    r"(/archive/\d+)?\.(rss|atom|json|html)|index\.html|(feeds|topics|providers)\.opml"
    r"|providers(-\d+)?\.html|feeds\.(css|js)|providers\.tsv"
)
# The one script of the pages, the site's own file: no other may be in a page.
OWN_SCRIPT = re.compile(rb'<script src="(\.\./)*feeds\.js" defer></script>')


# Building and checking sites ------------------------------------------------------------


@contextlib.contextmanager
def new_site(config: str = "") -> Iterator[tuple[Site, Path]]:
    """A site in a fresh temporary folder (hypothesis examples cannot share tmp_path) and
    the folder to watch, three levels up, so a write that climbs out of the output folder
    still lands where the test looks."""
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(Path(tmp) / "a" / "b" / "site")
        site.articles.mkdir(parents=True)
        site.configure(config)
        yield site, Path(tmp)


def write_articles(site: Site, articles: list[dict]) -> list[str]:
    """``articles`` as valid YAML files 00.md, 01.md, ...; returns their names."""
    names = []
    for k, fields in enumerate(articles):
        names.append(f"{k:02d}.md")
        site.write(names[-1], {**fields, "secured": f"{SECRET}-{k}"})
    return names


def tree(root: Path, skip: Path) -> dict[str, object]:
    """Every file, folder and link under ``root`` but ``skip``, with what identifies it."""
    found: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if path == skip:
                continue
            info = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                found[str(path)] = "dir"
            else:
                found[str(path)] = (info.st_size, info.st_mtime_ns)
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
    return found


@contextlib.contextmanager
def bounded(seconds: float = BUILD_SECONDS, megabytes: int = BUILD_MEGABYTES) -> Iterator[None]:
    """Run the block with a time limit and at most ``megabytes`` more address space than
    this process has now: a build that blows up fails the test with TimeoutError or
    MemoryError instead of hanging or exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    status = Path("/proc/self/status").read_text()
    in_use = int(re.search(r"VmSize:\s*(\d+) kB", status)[1]) << 10
    resource.setrlimit(resource.RLIMIT_AS, (in_use + (megabytes << 20), hard))

    def too_slow(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def publish(site: Site, watch: Path) -> Snapshot:
    """Build and export ``site`` as `feeds build` does, within bounds, check what holds for
    any input, and return the snapshot."""
    before = tree(watch, skip=site.output)
    with bounded():
        snapshot = Publisher(site.config_path).build()
        export(snapshot.files, site.output)
    assert tree(watch, skip=site.output) == before, "something was written outside the output"
    files = {path: r.body for path, r in snapshot.files.items()}
    assert written(site.output) == files
    check_files(files)
    return snapshot


def written(output: Path) -> dict[str, bytes]:
    """The files of the output folder but the manifest, parse cache and store, by path."""
    return {
        p.relative_to(output).as_posix(): p.read_bytes()
        for p in output.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, CACHE_FILE) and STORE not in p.parts
    }


class _Page(HTMLParser):
    """The tags of an HTML text, whether they nest properly, the URLs they link to, and any
    attribute that runs script or styles (event handlers, style)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.open: list[str] = []
        self.misnested: list[str] = []
        self.unsafe: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [value or "" for name, value in attrs if name in ("href", "src")]
        self.unsafe += [name for name, _ in attrs if name.startswith("on") or name == "style"]
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.misnested.append(tag)


# The files check_files passed: the checks give the same answer for the same path and bytes,
# and the examples publish many of the same files again (half of the feeds, most pages).
_CHECKED: set[tuple[str, bytes]] = set()


def check_files(files: Mapping[str, bytes]) -> None:
    """What every published file holds whatever the articles: it parses, article markup
    stays text, every URL is http(s), and no secured value is in it."""
    for path, body in files.items():
        if (path, body) not in _CHECKED:
            check_file(path, body)
            _CHECKED.add((path, body))


def check_file(path: str, body: bytes) -> None:
    """check_files for one file."""
    assert FEED_PATH.fullmatch(path), path
    assert all(len(part.encode()) <= 255 for part in path.split("/")), path
    assert SECRET.encode() not in body, path
    kind = path.rsplit(".", 1)[1]
    if kind == "json":
        check_json_feed(path, json.loads(body))
        return
    if kind in ("css", "js"):  # the package's own files
        return
    if kind == "tsv":  # path, name, stories, date: four fields a line, whatever the name
        lines = body.decode().splitlines()
        assert all(len(line.split("\t")) == 4 for line in lines), path
        return
    if kind == "html":
        assert len(OWN_SCRIPT.findall(body)) == 1, path
        body = OWN_SCRIPT.sub(b"", body)
    assert b"<script" not in body and b"<b>" not in body, path
    if kind == "html":
        page = _Page(body.decode())
        assert page.tags <= PAGE_TAGS | BODY_TAGS and not page.open and not page.misnested, path
        assert not page.unsafe, (path, page.unsafe)
        assert all(is_http(url) or not has_scheme(url) for url in page.urls), path
        return
    root = ET.fromstring(body)
    if kind in ("rss", "atom"):
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        check_xml_urls(path, root)


def check_json_feed(path: str, feed: dict) -> None:
    assert is_http(feed["feed_url"]), path
    for item in feed["items"]:
        urls = [item["id"], item["url"], item.get("image", "https://x/")]
        urls += [a["url"] for a in item["authors"]]
        page = _Page(item.get("content_html", ""))
        assert page.tags <= CONTENT_TAGS and not page.open and not page.misnested, path
        assert not page.unsafe, (path, page.unsafe)
        assert all(map(is_http, urls + page.urls)), (path, urls + page.urls)


def check_xml_urls(path: str, root: ET.Element) -> None:
    urls = []
    for element in root.iter():
        urls += [v for k, v in element.attrib.items() if k in ("href", "url", "src")]
        name = element.tag.rsplit("}", 1)[-1]
        if name in ("guid", "id", "uri") or (name == "link" and element.text):
            urls.append(element.text or "")
        if name in ("encoded", "content") and element.text:
            page = _Page(element.text)
            assert page.tags <= CONTENT_TAGS and not page.unsafe, (path, page.tags, page.unsafe)
            urls += page.urls
    assert all(map(is_http, urls)), (path, [u for u in urls if not is_http(u)])


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def has_scheme(url: str) -> bool:
    return re.match(r"\s*[a-zA-Z][a-zA-Z0-9+.-]*:", url) is not None


def entries(files: Mapping[str, bytes], feed: str = "all") -> dict[str, dict[str, str]]:
    """Title of each item by id, in each format of ``feed``."""
    rss = ET.fromstring(files[f"{feed}.rss"])
    atom = ET.fromstring(files[f"{feed}.atom"])
    return {
        "rss": {i.findtext("guid"): i.findtext("title") for i in rss.iter("item")},
        "atom": {
            e.findtext(f"{ATOM}id"): e.findtext(f"{ATOM}title") for e in atom.iter(f"{ATOM}entry")
        },
        "json": {i["id"]: i["title"] for i in json.loads(files[f"{feed}.json"])["items"]},
    }


def all_items(snapshot: Snapshot):
    """The articles of the all-articles feed, by file name (a feed with no items does not
    exist)."""
    feed = next((f for f in snapshot.feeds if f.spec.kind == "all"), None)
    return {Path(a.source).name: a for a in feed.items} if feed else {}


def reported(snapshot: Snapshot) -> dict[str, str]:
    """The problems of a build, by file name."""
    return {Path(p.source).name: p.message for p in snapshot.problems}


def assert_published(snapshot: Snapshot, names) -> None:
    """Each of ``names`` is in the all-articles feed, with its title, in every format."""
    if not names:
        return
    files = {path: r.body for path, r in snapshot.files.items()}
    items = all_items(snapshot)
    page = files["all.html"].decode()
    for name in names:
        assert name in items, (name, reported(snapshot).get(name))
        a = items[name]
        for fmt, titles in entries(files).items():
            assert titles[a.id] == a.title, fmt
        assert str(markupsafe.escape(a.title)) in page


def limits(seconds: int, megabytes: int):
    """preexec_fn for a child process with bounded CPU time and address space."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    return apply


# Generated articles ---------------------------------------------------------------------

NASTY_BITS = [
    "]]>", "<b>x</b>", "<script>alert(1)</script>", "&amp;", "&lt;b&gt;", "&#0;", "&#xD800;",
    "&#x1F984;", "&bogus;", "<![CDATA[", "-->", "\u202eRTL", "مرحبا", "שלום", "🦄",
    "👩\u200d👩\u200d👧", "\ufeff", "\u200b", "'\"", "\\", "\x00", "\x1b[31m", "\x85", "\u2028",
    "\ufffe", "\uffff", "{{ 7*7 }}", "%s%n", " " * 5,
]  # fmt: skip
# Any text but lone surrogates, which YAML cannot carry (a test below writes them as escapes).
nasty_text = st.lists(
    st.sampled_from(NASTY_BITS) | st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
    max_size=8,
).map("".join)
LONG_DOMAIN = ".".join(["a" * 63] * 3 + ["a" * 61])
domains = st.sampled_from(
    ["../../etc", "<b>x</b>", "EXAMPLE.COM", "www.Example.com.", "bücher.de", "BÜCHER.DE",
     "xn--bcher-kva.de", "localhost", "127.0.0.1", "[::1]", "a" * 64 + ".com", LONG_DOMAIN,
     "", "..", "-x.com", "x_y.com", "javascript:alert(1)", "例え.テスト"]
) | nasty_text  # fmt: skip
topic_names = (
    st.sampled_from(
        ["../../etc", "..", "/", "<b>x</b>", "UPPER CASE", "upper case", "bücher", "BÜCHER",
         "日本語", "㎯" * 100, "x" * 500, "%2e%2e%2f", "C:\\Windows", "con", ".hidden", "a/b",
         "archive", "", "   "]
    )
    | nasty_text
)  # fmt: skip
topic_lists = st.one_of(
    st.lists(topic_names, max_size=30),
    st.integers(100, 400).map(lambda k: [f"Topic {i % 150}" for i in range(k)]),
    topic_names,  # a string instead of a list
    st.none(),
    st.integers(),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
providers = st.one_of(
    st.none(),
    st.fixed_dictionaries({"name": nasty_text, "domain": domains}),
    st.fixed_dictionaries({}, optional={"name": nasty_text | st.integers(), "domain": domains}),
    nasty_text,  # a string instead of a mapping
    st.lists(st.text(max_size=3), max_size=2),
    st.integers(),
)


# Properties -----------------------------------------------------------------------------


@PROPERTY
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "title": nasty_text,
                "excerpt": nasty_text,
                "category": nasty_text,
                "type": nasty_text,
                "provider": st.fixed_dictionaries({"name": nasty_text, "domain": domains}),
                "topics": st.lists(nasty_text, max_size=4),
                "related": st.lists(
                    st.fixed_dictionaries(
                        {
                            "title": nasty_text,
                            "webUrl": st.sampled_from(
                                ["https://rel.example.com/<b>?q=]]>", "javascript:alert(1)"]
                            ),
                            "provider": st.fixed_dictionaries({"name": nasty_text}),
                        }
                    ),
                    max_size=3,
                ),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_markup_and_odd_characters_in_every_field_are_published_as_text(texts):
    """Markup, entities, ]]>, control characters, RTL text and emoji in every text field:
    each article is published, its title the same in RSS, Atom and JSON, and escaped on
    the HTML page."""
    with new_site() as (site, watch):
        # A word of its own keeps each title non-empty once the text is cleaned.
        fields = [
            article(n=n + 1, **{**t, "title": f"Story{n} {t['title']}"})
            for n, t in enumerate(texts)
        ]
        names = write_articles(site, fields)
        snapshot = publish(site, watch)
        assert reported(snapshot) == {}
        assert_published(snapshot, names)
        for name, a in all_items(snapshot).items():
            assert f"Story{int(name[:2])}" in a.title


INVALID_ESCAPE = "found invalid Unicode character escape code"
ESCAPES = ["\\ud800", "\\udfff", "\\x01", "\\x1b", "\\0", "\\x7f", "\\N", "\\L", "\\uFFFE"]
ESCAPES += ["\\uFFFF", "\\U0001F984", "\\e", "\\a", "\\t", "\\\\", '\\"', "\\/", "]]>", "<b>"]


@PROPERTY
@given(
    st.lists(st.lists(st.sampled_from(ESCAPES), max_size=6).map("".join), min_size=4, max_size=4)
)
def test_escaped_control_characters_and_lone_surrogates_never_break_a_build(texts):
    """YAML escapes in double-quoted fields, lone surrogates ("\\ud800") among them: libyaml
    refuses a lone surrogate, so that file is reported as invalid YAML with its name and
    line; every other file is published with the characters XML forbids removed."""
    with new_site() as (site, watch):
        title, excerpt, provider, topic = texts
        text = (
            "---\n"
            f'title: "Story {title}"\n'
            f'excerpt: "{excerpt}"\n'
            f'provider: {{name: "{provider}"}}\n'
            f'topics: ["{topic}"]\n'
            'webUrl: "https://news.example.com/escapes"\n'
            'publishedDateTime: "2023-06-01T10:00:00Z"\n'
            f'secured: "{SECRET}"\n'
            "---\n"
        )
        site.write("escapes.md", raw=text)
        snapshot = publish(site, watch)
        if "\\ud800" in text or "\\udfff" in text:
            assert reported(snapshot) == {"escapes.md": "invalid YAML: " + INVALID_ESCAPE}
            assert snapshot.problems[0].line in (2, 3, 4, 5)
        else:
            assert_published(snapshot, ["escapes.md"])


@PROPERTY
@given(
    st.lists(
        st.fixed_dictionaries({"topics": topic_lists, "provider": providers}),
        min_size=1,
        max_size=4,
    )
)
def test_hostile_topics_and_providers_give_safe_feed_paths(shapes):
    """Topics like ``../../etc``, ``<b>x</b>``, upper case, IDN, hundreds of them or a string
    instead of a list, and providers missing, a string or with hostile domains: every
    article is published, feeds land only at slug or domain paths inside the output folder,
    and each provider key is a lowercase ASCII host name."""
    with new_site() as (site, watch):
        # A None provider or topics leaves the field out.
        names = write_articles(site, [article(n=n + 1, **s) for n, s in enumerate(shapes)])
        snapshot = publish(site, watch)
        assert reported(snapshot) == {}
        assert_published(snapshot, names)
        for a in all_items(snapshot).values():
            assert len(a.topics) <= 20
            assert re.fullmatch(r"[a-z0-9.-]{1,200}", a.provider.domain)
            assert not a.provider.domain.startswith("www.")


def _iso(moment: datetime, offset: int | None) -> str:
    if offset is None:
        return moment.isoformat()
    sign, minutes = "+-"[offset < 0], abs(offset)
    return f"{moment.isoformat()}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


offsets = st.none() | st.integers(-(23 * 60 + 59), 23 * 60 + 59)
date_values = st.one_of(
    st.builds(_iso, st.datetimes(min_value=datetime(1, 1, 2)), offsets),
    st.builds(_iso, st.datetimes(min_value=datetime(9999, 12, 31)), offsets),  # far future
    st.builds(_iso, st.datetimes(max_value=datetime(1, 1, 1, 23, 59)), offsets),
    st.integers() | st.floats(),  # a number, not a date
    st.sampled_from(
        ["yesterday", "now", "June 5", "Monday", "next week", "tomorrow 10:00", "June 2023",
         "5 June 2023", "2023", "Fri, 09 Jun 2023 11:47:00 GMT", "2023-06-09 10:00 EST",
         "2023-06-09 10:00 +0200 (CEST)", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+01:00",
         "", "T", "2023-02-30", "2023-06-09T25:00"]
    ),
    st.text(max_size=20),
    st.none(),
)  # fmt: skip
# Dates that dateutil can only complete from today's date, or whose zone is a guess:
# accepted, they would change with the day or the machine of the build.
VAGUE = {"yesterday", "now", "June 5", "Monday", "next week", "tomorrow 10:00", "June 2023"}
VAGUE |= {"2023-06-09 10:00 EST"}


@PROPERTY
@given(st.lists(date_values, min_size=1, max_size=5))
def test_any_date_is_published_in_utc_or_reported(dates):
    """Dates naive, with offsets, in year 9999 with offsets, as numbers or words: each
    article is published with an aware UTC date that every feed carries, or reported by
    name as a bad publishedDateTime; dates that only today's date could complete are
    reported."""
    with new_site() as (site, watch):
        names = write_articles(
            site, [article(n=n + 1, publishedDateTime=d) for n, d in enumerate(dates)]
        )
        snapshot = publish(site, watch)
        items, problems = all_items(snapshot), reported(snapshot)
        for name, value in zip(names, dates, strict=True):
            assert (name in items) != (name in problems), name
            if name in problems:
                assert problems[name].startswith("publishedDateTime: ")
            else:
                assert items[name].published.tzinfo == UTC
                assert isinstance(value, str) and value.strip() not in VAGUE
        assert_published(snapshot, items)
        if items:
            atom = ET.fromstring(snapshot.files["all.atom"].body)
            published = {e.findtext(f"{ATOM}id"): e.findtext(f"{ATOM}published") for e in atom}
            for a in items.values():
                assert datetime.fromisoformat(published[a.id]) == a.published


def _expected_quality(value) -> float | str | None:
    """What the README promises for a quality value: a number, None, or "bad"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return "bad"
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return "bad"
    return number if math.isfinite(number) else "bad"


qualities = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.integers(10**300, 10**400),
    st.floats(),
    st.sampled_from(["75", " 12.5 ", "-1", "1e999", "nan", "inf", "high", "", "0x10"]),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
)


@PROPERTY
@given(st.lists(qualities, min_size=1, max_size=5))
def test_any_quality_is_used_or_reported(values):
    """Quality as a string, float, negative, huge, NaN, null or bool: numbers (and numeric
    strings) are used against quality.min 0, null is included, anything else is reported
    with the file name; a negative quality is left out without a report."""
    with new_site() as (site, watch):
        fields = [{**article(n=n + 1), "quality": value} for n, value in enumerate(values)]
        names = write_articles(site, fields)
        snapshot = publish(site, watch)
        items, problems = all_items(snapshot), reported(snapshot)
        for name, value in zip(names, values, strict=True):
            expected = _expected_quality(value)
            if expected == "bad":
                assert problems.get(name, "").startswith("quality: expected a number"), name
            else:
                assert name not in problems
                assert (name in items) == (expected is None or expected >= 0)


YAML_TAGS = ["!!bool", "!!int", "!!float", "!!null", "!!str", "!!binary", "!!timestamp", ""]
YAML_TAGS += ["!!set", "!!omap", "!!seq", "!!map"]
YAML_VALUES = ["", "''", "maybe", "1:2:3", "1:" * 3000 + "1", "0x", "0x_", "0b", "-", "_"]
YAML_VALUES += [".inf", ".nan", "YQ==", "~", "08", "9" * 5000, "[1, [2]]", "{a: b}", "[{a: 1}]"]
tagged_values = st.builds(
    lambda tag, value: f"{tag} {value}".strip(),
    st.sampled_from(YAML_TAGS),
    st.sampled_from(YAML_VALUES) | st.text(alphabet="0123456789:._-+xobeE", max_size=12),
)


@PROPERTY
@given(
    st.lists(
        st.tuples(st.sampled_from(["x", "quality", "published", "title", "images"]), tagged_values),
        min_size=1,
        max_size=4,
    )
)
def test_any_tagged_or_odd_yaml_value_is_read_or_reported(fields):
    """YAML tags and scalars that PyYAML converts with int(), float() and look-ups
    (``!!bool maybe``, ``!!int ''``, a plain ``0x_``, 5,000 digits) once ended the build:
    now each file is published or reported with its name and line."""
    with new_site() as (site, watch):
        names = []
        for k, (field, value) in enumerate(fields):
            valid = {**article(n=k + 1), "secured": SECRET}
            valid.pop(field, None)
            names.append(f"{k:02d}.md")
            text = yaml.safe_dump(valid, allow_unicode=True) + f"{field}: {value}\n"
            site.write(names[-1], raw=f"---\n{text}---\n")
        snapshot = publish(site, watch)
        items, problems = all_items(snapshot), reported(snapshot)
        for name, (field, _) in zip(names, fields, strict=True):
            # A valid negative quality is left out of the feed without a report.
            assert name in items or name in problems or field == "quality", name
            assert not (name in items and name in problems), name


# Spellings of two stories, by the canonical URL that is their id.
SAME_STORY = {
    "https://news.example.com/a": [
        "https://news.example.com/a", "HTTPS://NEWS.EXAMPLE.COM/a?utm_source=x",
        "https://news.example.com/a#top", "https://news.example.com:443/a?fbclid=1",
    ],
    "http://news.example.com/b?id=1": [
        "http://news.example.com/b?id=1", "http://news.example.com/b?utm_medium=y&id=1",
    ],
}  # fmt: skip
SPELLINGS = [(story, url) for story, urls in SAME_STORY.items() for url in urls]


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(SPELLINGS), st.integers(0, 100)), min_size=2, max_size=6))
def test_duplicate_urls_are_published_once_as_the_best_copy(copies):
    """Files with the same canonical URL (case, port, fragment and tracking parameters
    aside) are one story: each feed has it once, as the copy with the highest quality."""
    with new_site() as (site, watch):
        fields = [
            article(n=n + 1, webUrl=url, quality=quality)
            for n, ((_, url), quality) in enumerate(copies)
        ]
        write_articles(site, fields)
        snapshot = publish(site, watch)
        for feed in snapshot.feeds:
            ids = [a.id for a in feed.items]
            assert len(ids) == len(set(ids)), feed.spec.path
        best: dict[str, int] = {}
        for (story, _), quality in copies:
            best[story] = max(best.get(story, 0), quality)
        files = {path: r.body for path, r in snapshot.files.items()}
        assert all(set(titles) == set(best) for titles in entries(files).values())
        assert {a.id: a.quality for a in all_items(snapshot).values()} == best


HOSTILE_URLS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "\x01javascript:x",
    "java\tscript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>",
    "//evil.example/x", "/relative", "relative.html", "http://", "https://exa mple.com/",
    "http://[::1]/", "ftp://files.example.com/x", "mailto:x@example.com", "file:///etc/passwd",
    "https://../../etc", "https://%2e%2e/",
    "http://example.com:99999/", "https://<b>x</b>/",
]  # fmt: skip
GOOD_URLS = [
    "https://news.example.com/<b>?q=]]>&x=\"'", "http://bücher.de/ä ö", "https://x.example",
    "https://user:pw@evil.example@good.example/",  # user info: the host is good.example
]  # fmt: skip


@PROPERTY
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "webUrl": st.sampled_from(HOSTILE_URLS + GOOD_URLS),
                "originalUrl": st.sampled_from([*HOSTILE_URLS, *GOOD_URLS, None]),
                "images": st.lists(
                    st.fixed_dictionaries({"url": st.sampled_from(HOSTILE_URLS + GOOD_URLS)}),
                    max_size=2,
                ),
                "related": st.lists(
                    st.fixed_dictionaries(
                        {"title": st.just("Related"), "webUrl": st.sampled_from(HOSTILE_URLS)}
                    ),
                    max_size=2,
                ),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_only_http_urls_are_ever_published(links):
    """javascript:, data:, relative and malformed URLs in any URL field: an article with
    no http(s) originalUrl or webUrl is reported, the rest are published, and every URL in
    every feed and page is http(s) (page links between feeds are relative)."""
    with new_site() as (site, watch):
        names = write_articles(site, [article(n=n + 1, **f) for n, f in enumerate(links)])
        snapshot = publish(site, watch)
        problems = reported(snapshot)
        for name, f in zip(names, links, strict=True):
            valid = {f["webUrl"], f["originalUrl"]} & set(GOOD_URLS)
            assert (name in problems) == (not valid), name
            if not valid:
                assert problems[name].startswith("webUrl: not an http(s) URL")


# Fixed cases ----------------------------------------------------------------------------

TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_call [[touch, '{marker}']]",
    "!!python/object/new:subprocess.Popen [[touch, '{marker}']]",
    "!!python/object/apply:builtins.exec [\"open('{marker}', 'w')\"]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    "!shell touch {marker}",
]


def test_yaml_tags_are_never_executed(site, tmp_path):
    """Python object tags in front matter are refused as invalid YAML with the file name and
    line, and never run: the marker file they would create does not appear."""
    marker = tmp_path / "pwned"
    for k, tag in enumerate(TAGS):
        fields = yaml.safe_dump(article(n=k + 1), allow_unicode=True)
        site.write(f"tag{k}.md", raw=f"---\n{fields}x: {tag.format(marker=marker)}\n---\n")
    snapshot = publish(site, tmp_path)
    assert not marker.exists()
    problems = {Path(p.source).name: p for p in snapshot.problems}
    assert sorted(problems) == [f"tag{k}.md" for k in range(len(TAGS))]
    for problem in problems.values():
        assert problem.message.startswith("invalid YAML: ") and problem.line


def test_a_huge_file_is_refused_without_being_read_whole(site, tmp_path):
    """A sparse 1 GiB article file is reported as too large while the build allocates a
    small part of that; a 2 MB excerpt is published, cut to 1,000 characters."""
    huge = site.articles / "huge.md"
    with huge.open("wb") as f:
        f.write(b"---\ntitle: x\n")
        f.truncate(1 << 30)
    excerpt = "Word <b>bold</b> ]]> &amp; 🦄 \u202e " * (2_000_000 // 36)
    site.write("long.md", {**article(excerpt=excerpt), "secured": SECRET})
    tracemalloc.start()
    try:
        snapshot = publish(site, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_FILE_BYTES  # well below the 1 GiB file
    assert reported(snapshot) == {"huge.md": "file is larger than 16 MiB"}
    assert_published(snapshot, ["long.md"])
    assert len(all_items(snapshot)["long.md"].excerpt) <= 1001


def test_files_that_are_not_articles_are_reported_by_name(site, tmp_path):
    """Folders, FIFOs, dangling links, link loops and links that lead outside the articles
    folder, all named *.md: each is reported and none is read (an article outside, with a
    secret in its title, is not published); a link to an article inside is fine."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.md").write_text(
        "---\n" + yaml.safe_dump(article(n=9, title=SECRET)) + "---\n", encoding="utf-8"
    )
    site.write("real.md", {**article(n=1), "secured": SECRET})
    (site.articles / "folder.md").mkdir()
    os.mkfifo(site.articles / "fifo.md")  # reading it would block the build forever
    (site.articles / "outside.md").symlink_to(outside / "private.md")
    (site.articles / "climb.md").symlink_to("../../outside/private.md")
    (site.articles / "dangling.md").symlink_to(site.articles / "missing.md")
    (site.articles / "loop.md").symlink_to("loop.md")
    (site.articles / "loop-a.md").symlink_to("loop-b.md")
    (site.articles / "loop-b.md").symlink_to("loop-a.md")
    (site.articles / "inside.md").symlink_to("real.md")
    snapshot = publish(site, tmp_path)
    problems = reported(snapshot)
    assert sorted(problems) == [
        "climb.md", "dangling.md", "fifo.md", "folder.md", "loop-a.md", "loop-b.md",
        "loop.md", "outside.md",
    ]  # fmt: skip
    leads_outside, not_a_file = (
        "skipped: leads outside the articles folder",
        "skipped: not a regular file",
    )
    assert problems["outside.md"] == problems["climb.md"] == leads_outside
    assert problems["folder.md"] == problems["fifo.md"] == not_a_file
    assert {a.id for a in all_items(snapshot).values()} == {article(n=1)["webUrl"]}


def test_a_file_that_vanishes_after_listing_is_reported(site):
    """A file deleted between listing and reading is a problem naming it, for the cache the
    builds use and for a plain read; the other files are still read."""
    for n in (1, 2):
        site.write(f"{n}.md", article(n=n))
    paths, problems = find(site.articles, ["*.md"])
    assert problems == [] and len(paths) == 2
    os.unlink(paths[0])
    results = list(ArticleCache().load(paths))
    assert isinstance(results[0], Problem) and results[0].source == str(paths[0])
    assert "No such file" in results[0].message
    assert results[1].id == article(n=2)["webUrl"]
    gone = read(paths[0])
    assert isinstance(gone, Problem) and gone.source == str(paths[0])


# Files that once crashed the interpreter itself (libyaml's recursion overflowed the C
# stack): only the test that builds in a child process reads them, so that a regression
# fails one test instead of killing the test run.
CRASHERS = ("bad-deep-*",)


def nasty_site(site: Site, leave_out: tuple[str, ...] = ()) -> None:
    shutil.rmtree(site.articles)
    shutil.copytree(NASTY, site.articles, ignore=shutil.ignore_patterns(".*", *leave_out))


def nasty_names(prefix: str, leave_out: tuple[str, ...] = ()) -> list[str]:
    names = (p.name for p in NASTY.glob(f"{prefix}-*.md"))
    return sorted(n for n in names if not any(fnmatch.fnmatch(n, p) for p in leave_out))


def test_the_nasty_corpus_builds_in_bounded_time_and_memory(site, tmp_path):
    """`feeds build` on tests/nasty/ as a separate process with 60 s of CPU and 1 GiB of
    address space: alias bombs, 50,000 nested brackets and 5,000-digit numbers once
    exhausted memory or crashed the interpreter; the build succeeds within the limits."""
    nasty_site(site)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build"],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=limits(seconds=60, megabytes=1024),
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert time.monotonic() - started < 60
    stderr = result.stderr.decode()
    for name in nasty_names("bad"):
        assert f"{name}:" in stderr, name
    check_files(written(site.output))


def test_the_nasty_corpus(site, runner, tmp_path, monkeypatch):
    """tests/nasty/ through `feeds build`: ok-* files are published, bad-* files are each
    reported on stderr by name, hidden-* files are neither; YAML tags ran nothing in the
    working folder; `--strict` and `feeds check` fail on the same files."""
    nasty_site(site, leave_out=CRASHERS)
    bad = set(nasty_names("bad", leave_out=CRASHERS))
    monkeypatch.chdir(tmp_path)  # where bad-python-tag.md would `touch pwned-by-yaml`
    before = tree(tmp_path, skip=site.output)

    with bounded():
        result = runner("build")

    assert result.exit_code == 0, result.output
    assert tree(tmp_path, skip=site.output) == before
    assert not list(tmp_path.rglob("pwned*"))
    assert {Path(line.split(":")[0]).name for line in result.stderr.splitlines()} == bad
    files = written(site.output)
    check_files(files)
    ok = {read(site.articles / name).id for name in nasty_names("ok")}
    for titles in entries(files).values():
        assert set(titles) == ok
    with bounded():
        snapshot = Publisher(site.config_path).build()
    assert_published(snapshot, nasty_names("ok"))
    assert set(reported(snapshot)) == bad

    with bounded():
        strict, check = runner("build", "--strict"), runner("check")
    assert strict.exit_code == 1
    assert f"{len(bad)} article files skipped" in strict.stderr
    assert check.exit_code == 1
    assert {Path(line.split(":")[0]).name for line in check.stdout.splitlines()} == bad
