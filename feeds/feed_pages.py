"""A feed's pages for people: its newest items at ``<feed>.html`` and the whole history on
``<feed>/archive/<n>.html``, the same slices as its RFC 5005 archive documents, linked
``rel="next"`` (older) and ``rel="prev"`` (newer)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import partial

from feeds.html import HTML, Page, rendered
from feeds.model import Article, Document, Feed, Rendered
from feeds.render import Renderer, paginate

# Where an article's provider and topics lead: the path of the provider's feed and each
# (topic, path of its feed), None where that feed does not exist.
Lead = tuple[str | None, tuple[tuple[str, str | None], ...]]


@dataclass(frozen=True)
class Story:
    """An item as a page shows it: the article and where its provider and topics lead."""

    article: Article
    provider: str | None
    topics: tuple[tuple[str, str | None], ...]


class Leads:
    """Where each article's provider and topics lead, among the feeds of one build: worked
    out once per article, though it is on a page of each of its feeds (and a page's key
    holds it for every item: what it links to is part of its bytes). An ``earlier`` build's
    are taken over while the same feeds exist, for the articles that are the same objects
    (the parse cache keeps an unchanged file's article)."""

    def __init__(self, feeds: Collection[str], earlier: Leads | None = None):
        self._feeds = feeds  # the paths of every feed
        self._known: dict[int, tuple[Article, Lead]] = {}  # by id() of the article
        same = earlier is not None and earlier._feeds == feeds
        self._earlier = earlier._known if earlier is not None and same else {}

    def of(self, items: tuple[Article, ...]) -> tuple[Lead, ...]:
        """The lead of each of ``items``: one lookup each once they are known (at 100,000
        articles, 300,000 items are on pages, for every rebuild)."""
        try:
            return tuple(lead for _, lead in map(self._known.__getitem__, map(id, items)))
        except KeyError:
            return tuple(map(self, items))

    def __call__(self, article: Article) -> Lead:
        known = self._known.get(id(article)) or self._earlier.get(id(article))
        if known is not None and known[0] is article:
            lead = known[1]
        else:
            provider = f"providers/{article.provider.domain}"
            topics = tuple(
                (name, path if (path := f"topics/{slug}") in self._feeds else None)
                for name, slug in zip(article.topics, article.topic_slugs, strict=True)
            )
            lead = (provider if provider in self._feeds else None, topics)
        self._known[id(article)] = (article, lead)
        return lead

    def settle(self) -> None:
        """Let go of the earlier build's (and the articles they hold)."""
        self._earlier = {}


def feed_pages(feed: Feed, renderer: Renderer, leads: Leads, common: dict) -> Iterator[Page]:
    """The pages of ``feed``, one per document of :func:`feeds.render.paginate`."""
    config = renderer.config.feeds
    for doc in paginate(feed, config.items, config.archives):
        yield feed_page(doc, len(feed.items), leads, common)


def feed_page(doc: Document, stories: int, leads: Leads, common: dict) -> Page:
    """The page of ``doc``, a document of a feed of ``stories`` items. Of the feed it needs
    only its spec and, for its newest page, its newest item (``doc.feed.updated``)."""
    links = dict(doc.links)
    older = links.get("prev-archive")
    newer = links.get("next-archive") or links.get("current")
    # Only the newest page counts the feed's stories: an archive page's bytes stay the
    # same while newer items arrive, like its feed document's.
    total = None if doc.archive else stories
    where = leads.of(doc.items)
    key = ("feed page", doc.feed.spec, older, newer, total, where)
    make = partial(_page, doc, leads, older, newer, total, common)
    return Page(f"{doc.path}.html", key, doc.items, make)


def _page(
    doc: Document,
    leads: Leads,
    older: str | None,
    newer: str | None,
    total: int | None,
    common: dict,
) -> Rendered:
    root = "../" * doc.path.count("/")
    return rendered(
        f"{doc.path}.html",
        HTML,
        "feed.html",
        **common,
        root=root,
        discovered=[doc.feed],
        feed=doc.feed,
        doc=doc,
        stories=[Story(article, *leads(article)) for article in doc.items],
        total=total,
        before=f"{root}{newer}.html" if newer else None,
        after=f"{root}{older}.html" if older else None,
        before_label="Newer stories",
        after_label="Older stories",
    )
