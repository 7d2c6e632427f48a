"""The lists of feeds: the index page, the providers A–Z pages and the OPML files.

At thousands of feeds most providers hold a story or two. The index lists every topic and
the larger providers (at most :data:`INDEX_PROVIDERS`), so it stays small and quick at any
scale; the providers A–Z pages list every provider, :data:`DIRECTORY_PAGE` a page.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from feeds.html import HTML, OPML, Page, rendered
from feeds.model import Feed, FeedSpec, Rendered
from feeds.render import etag
from feeds.text import rfc3339

# Feed readers offer every autodiscovered feed as a choice; past a few, the lists announce
# only the all-articles feed, the one most people want.
MAX_DISCOVERED = 6
INDEX_PROVIDERS = 100  # the largest providers listed on the index...
INDEX_MIN_STORIES = 2  # ...of those with at least this many stories
DIRECTORY_PAGE = 500  # providers on each A–Z page
DIRECTORY = "providers"  # the A–Z pages: providers.html, providers-2.html, ...
# Every provider, one a line, for the search box to find those a page does not list; tab-
# separated, not JSON: a .json file of the site is a JSON Feed (its media type, WebSub).
PROVIDER_LIST = "providers.tsv"
TSV = "text/tab-separated-values"


@dataclass(frozen=True)
class Row:
    """A feed as a list shows it."""

    spec: FeedSpec
    stories: int  # every item of the feed, archives included
    newest: datetime


@dataclass(frozen=True)
class Section:
    """A group of feeds on the index: its rows and where the rest of it is."""

    id: str  # its anchor, and the name of its OPML file
    heading: str | None
    rows: tuple[Row, ...]  # those the index lists
    total: int  # feeds in the group
    opml: str | None  # its own OPML file


def row(feed: Feed) -> Row:
    return Row(feed.spec, len(feed.items), feed.items[0].published)


def _by_size(r: Row) -> tuple:
    return (-r.stories, r.spec.name.casefold(), r.spec.path)


def _by_name(r: Row) -> tuple:
    return (r.spec.name.casefold(), r.spec.path)


def sections(rows: Sequence[Row]) -> list[Section]:
    """The index's sections: all articles, topics and providers (the larger ones), each
    largest first; an empty one is left out."""
    kinds = {k: [r for r in rows if r.spec.kind == k] for k in ("all", "topic", "provider")}
    topics = sorted(kinds["topic"], key=_by_size)
    providers = sorted(kinds["provider"], key=_by_size)
    head = [r for r in providers if r.stories >= INDEX_MIN_STORIES][:INDEX_PROVIDERS]
    found = [
        Section("all", None, tuple(kinds["all"]), len(kinds["all"]), None),
        Section("topics", "Topics", tuple(topics), len(topics), "topics.opml"),
        Section("providers", "Providers", tuple(head), len(providers), "providers.opml"),
    ]
    return [s for s in found if s.total]


def directory_path(number: int) -> str:
    return f"{DIRECTORY}.html" if number == 1 else f"{DIRECTORY}-{number}.html"


def discovered(rows: Sequence[Row]) -> list[Row]:
    """The feeds the lists announce to feed readers (``<link rel="alternate">``)."""
    if len(rows) <= MAX_DISCOVERED:
        return list(rows)
    return [r for r in rows if r.spec.kind == "all"] or list(rows[:MAX_DISCOVERED])


def list_pages(rows: Sequence[Row], common: dict, pages: bool) -> Iterator[Page]:
    """``index.html``, the providers A–Z pages (with ``pages``) and the OPML files (when
    there are feeds), from the :func:`row` of every feed, in the order published."""
    announced = discovered(rows)
    common = {**common, "discovered": announced}
    index_sections = tuple(sections(rows))
    if pages:
        yield from _html_lists(rows, index_sections, common)
    if not rows:
        return
    groups = [("all", None, rows)] + [
        (s.opml, s.heading, [r for r in rows if r.spec.kind == s.id.removesuffix("s")])
        for s in index_sections
        if s.opml
    ]
    for name, heading, members in groups:
        path = "feeds.opml" if name == "all" else name
        lists = _opml_groups(members) if heading is None else [(heading, members)]
        # What an OPML file shows of its feeds: no counts, only the newest date of all.
        key = ("opml", tuple(r.spec for r in members), max(r.newest for r in members))
        yield Page(path, key, (), partial(_opml, path, lists, common))


def _html_lists(
    rows: Sequence[Row], index_sections: tuple[Section, ...], common: dict
) -> Iterator[Page]:
    """``index.html``, the providers A–Z pages and the list of every provider."""
    heads = tuple(f.spec for f in common["discovered"])  # in the key of every HTML page
    make = partial(_index, index_sections, common)
    yield Page("index.html", ("index", heads, index_sections), (), make)
    providers = sorted((r for r in rows if r.spec.kind == "provider"), key=_by_name)
    count = -(-len(providers) // DIRECTORY_PAGE)
    for number in range(1, count + 1):
        part = tuple(providers[(number - 1) * DIRECTORY_PAGE : number * DIRECTORY_PAGE])
        key: tuple = ("directory", heads, number, count, len(providers), part)
        make = partial(_directory, number, count, len(providers), part, common)
        yield Page(directory_path(number), key, (), make)
    if providers:
        everyone = tuple(sorted(providers, key=_by_size))
        yield Page(PROVIDER_LIST, ("list", everyone), (), partial(_provider_list, everyone))


def _opml_groups(rows: Sequence[Row]) -> list[tuple[str | None, list[Row]]]:
    headings = {"all": None, "topic": "Topics", "provider": "Providers"}
    return [
        (heading, group)
        for kind, heading in headings.items()
        if (group := [r for r in rows if r.spec.kind == kind])
    ]


def _index(index_sections: tuple[Section, ...], common: dict) -> Rendered:
    return rendered("index.html", HTML, "index.html", **common, sections=index_sections)


def _directory(
    number: int, count: int, total: int, rows: tuple[Row, ...], common: dict
) -> Rendered:
    return rendered(
        directory_path(number),
        HTML,
        "directory.html",
        **common,
        rows=rows,
        number=number,
        count=count,
        total=total,
        before=directory_path(number - 1) if number > 1 else None,
        after=directory_path(number + 1) if number < count else None,
        before_label="Previous page",
        after_label="Next page",
    )


def _provider_list(rows: tuple[Row, ...]) -> Rendered:
    """Path, name, stories and newest date of each of ``rows``."""
    lines = [
        f"{r.spec.path}\t{_cell(r.spec.name)}\t{r.stories}\t{rfc3339(r.newest)}\n" for r in rows
    ]
    body = "".join(lines).encode()
    return Rendered(PROVIDER_LIST, TSV, body, etag(body))


def _cell(text: str) -> str:
    return " ".join(text.split())  # no tab or line break inside a field


def _opml(path: str, groups: list, common: dict) -> Rendered:
    updated = max(r.newest for _, rows in groups for r in rows)
    return rendered(path, OPML, "feeds.opml", **common, groups=groups, updated=updated)
