"""Feeds → pages for people (an index and one page per feed) and an OPML list for readers.

Pure like :mod:`feeds.render`: no I/O, no clock, so the server and the static export give
the same bytes. Links between pages are relative to the page, so they work under
``feeds serve`` and from the exported folder at any base path; links meant to leave the
site (autodiscovery, OPML) are absolute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from feeds.model import Article, Feed, File, Rendered
from feeds.render import Renderer, etag
from feeds.reuse import PreviousBuild
from feeds.text import rfc3339

HTML = "text/html"
OPML = "text/x-opml"
# Feed readers offer every autodiscovered feed as a choice; past a few, the index
# announces only the all-articles feed, the one most people want.
MAX_DISCOVERED = 6
LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
HEADINGS = {"all": None, "topic": "Topics", "provider": "Providers"}


@dataclass(frozen=True)
class View:
    """A feed as the pages show it."""

    feed: Feed
    name: str  # the topic or provider, without the site title the feed's title starts with
    page: str  # path of its HTML page
    items: tuple[Article, ...]  # what its feed URL holds now


def _view(feed: Feed, renderer: Renderer) -> View:
    spec = feed.spec
    return View(feed, spec.name, f"{spec.path}.html", feed.items[: renderer.config.feeds.items])


_env = Environment(
    loader=PackageLoader("feeds"),
    autoescape=True,  # every template, the OPML too: article text is never trusted
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# Dates as numbers, not month names: language-neutral whatever site.language is, and
# independent of the process locale.
_env.filters.update(
    rfc3339=rfc3339,
    rfc822=lambda when: format_datetime(when.astimezone(UTC), usegmt=True),
    date=lambda when: f"{when.astimezone(UTC):%Y-%m-%d}",
    time=lambda when: f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    label=lambda name: LABELS.get(name, name.upper()),
)


def _rendered(path: str, media_type: str, template: str, **context: Any) -> Rendered:
    body = _env.get_template(template).render(**context).encode()
    return Rendered(path, media_type, body, etag(body))


def _feed_page(view: View, common: dict) -> list[Rendered]:
    root = "../" * view.feed.spec.path.count("/")
    page = _rendered(
        view.page, HTML, "feed.html", **common, view=view, root=root, discovered=[view.feed]
    )
    return [page]


def render_pages(
    feeds: Iterable[Feed], renderer: Renderer, previous: PreviousBuild | None = None
) -> Iterator[File]:
    """``index.html``, ``<feed path>.html`` for every feed, and ``feeds.opml`` (if any feed);
    a feed's page that ``previous`` holds is reused."""
    previous = previous or PreviousBuild()
    views = [_view(feed, renderer) for feed in feeds]
    groups = [
        (heading, group)
        for kind, heading in HEADINGS.items()
        if (group := [v for v in views if v.feed.spec.kind == kind])
    ]
    config = renderer.config
    common = {
        "renderer": renderer,
        "formats": renderer.formats,
        "site": config.site.title,
        "lang": config.site.language,
    }
    all_feeds = [v.feed for v in views]
    discovered = all_feeds
    if len(all_feeds) > MAX_DISCOVERED:
        discovered = [f for f in all_feeds if f.spec.kind == "all"] or all_feeds[:MAX_DISCOVERED]
    yield _rendered(
        "index.html",
        HTML,
        "index.html",
        **common,
        description=config.site.description,
        groups=groups,
        discovered=discovered,
    )
    for view in views:
        yield from previous.get(view.page, view.feed.spec, view.items, _feed_page, view, common)
    if views:
        updated = max((f.updated for f in all_feeds if f.updated), default=None)
        yield _rendered("feeds.opml", OPML, "feeds.opml", **common, groups=groups, updated=updated)
