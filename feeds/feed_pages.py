"""A feed's pages for people: its newest items at ``<feed>.html`` and the whole history on
``<feed>/archive/<n>.html``, the same slices as its RFC 5005 archive documents, linked
``rel="next"`` (older) and ``rel="prev"`` (newer)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import partial

from feeds.html import HTML, Page, rendered
from feeds.model import Article, Document, Feed, Rendered
from feeds.render import Renderer, paginate


@dataclass(frozen=True)
class Story:
    """An item as a page shows it: the article and where its provider and topics lead."""

    article: Article
    provider: str | None  # path of the provider's feed, when it has one
    topics: tuple[tuple[str, str | None], ...]  # (topic, path of its feed or None)


def story(article: Article, feeds: Collection[str]) -> Story:
    """``article`` with links to those of its feeds that exist (among the paths ``feeds``)."""
    provider = f"providers/{article.provider.domain}"
    topics = tuple(
        (name, path if (path := f"topics/{slug}") in feeds else None)
        for name, slug in zip(article.topics, article.topic_slugs, strict=True)
    )
    return Story(article, provider if provider in feeds else None, topics)


def feed_pages(
    feed: Feed, renderer: Renderer, feeds: Collection[str], common: dict
) -> Iterator[Page]:
    """The pages of ``feed``, one per document of :func:`feeds.render.paginate`; ``feeds``
    are the paths of every feed, which items link to."""
    config = renderer.config.feeds
    for doc in paginate(feed, config.items, config.archives):
        links = dict(doc.links)
        older = links.get("prev-archive")
        newer = links.get("next-archive") or links.get("current")
        # Only the newest page counts the feed's stories: an archive page's bytes stay the
        # same while newer items arrive, like its feed document's.
        total = None if doc.archive else len(feed.items)
        # Which of its items' feeds exist, as a digest: a page's key is kept until the next
        # build, for thousands of pages.
        leads = [(s.provider, s.topics) for s in (story(a, feeds) for a in doc.items)]
        digest = hashlib.blake2b(repr(leads).encode(), digest_size=16).digest()
        key = ("feed page", doc.feed.spec, older, newer, total, digest)
        make = partial(_page, doc, feeds, older, newer, total, common)
        yield Page(f"{doc.path}.html", key, doc.items, make)


def _page(
    doc: Document,
    feeds: Collection[str],
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
        stories=[story(article, feeds) for article in doc.items],
        total=total,
        before=f"{root}{newer}.html" if newer else None,
        after=f"{root}{older}.html" if older else None,
        before_label="Newer stories",
        after_label="Older stories",
    )
