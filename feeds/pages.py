"""Feeds → pages for people (the lists of feeds, and each feed's pages), the OPML files for
readers, and the style sheet and script the pages use.

Pure like :mod:`feeds.render`: no I/O, no clock, so the server and the static export give
the same bytes. Links between pages are relative to the page, so they work under
``feeds serve`` and from the exported folder at any base path; links meant to leave the
site (autodiscovery, OPML, the addresses to copy into a reader) are absolute.

Every page is a :class:`feeds.html.Page` keyed by what its bytes depend on, so a rebuild
renders again only the pages whose inputs changed (:class:`feeds.reuse.PreviousBuild`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from importlib.resources import files
from typing import TYPE_CHECKING

from feeds.feed_pages import Leads, feed_pages
from feeds.html import Page
from feeds.listings import Row, list_pages, row
from feeds.model import Feed, File, Rendered
from feeds.render import Renderer, etag
from feeds.reuse import PreviousBuild

if TYPE_CHECKING:
    from feeds.parallel import Renderers

# Built files the pages load (a Content-Security-Policy allows only files of the site).
ASSETS = {"feeds.css": "text/css", "feeds.js": "text/javascript"}


def plan_pages(feeds: Iterable[Feed], renderer: Renderer, leads: Leads | None = None) -> list[Page]:
    """Every page of ``feeds``, not yet rendered; ``leads`` may hold an earlier build's."""
    feeds = list(feeds)
    pages = list(site_pages([row(feed) for feed in feeds], renderer))
    if renderer.config.feeds.pages:
        common = common_context(renderer)
        leads = leads or Leads(paths(feeds))
        for feed in feeds:
            pages += feed_pages(feed, renderer, leads, common)
        leads.settle()
    return pages


def site_pages(rows: Sequence[Row], renderer: Renderer) -> Iterator[Page]:
    """The files of the whole site (not of one feed) for ``rows``, a row of every feed: the
    lists of feeds (:func:`feeds.listings.list_pages`), and with the HTML pages their style
    sheet and script."""
    pages = renderer.config.feeds.pages
    if pages:
        yield from assets()
    context = {
        **common_context(renderer),
        "root": "",
        "description": renderer.config.site.description,
    }
    yield from list_pages(rows, context, pages)


def common_context(renderer: Renderer) -> dict:
    """What every page's template is given."""
    config = renderer.config
    return {
        "renderer": renderer,
        "formats": renderer.formats,
        "site": config.site.title,
        "lang": config.site.language,
    }


def paths(feeds: Iterable[Feed]) -> frozenset[str]:
    return frozenset(feed.spec.path for feed in feeds)


def render_pages(
    feeds: Iterable[Feed],
    renderer: Renderer,
    previous: PreviousBuild | None = None,
    many: Renderers | None = None,
) -> Iterator[File]:
    """Every page of ``feeds`` rendered; a page whose key and items ``previous`` holds
    unchanged is reused, and one that ``many`` rendered with its document is taken."""
    previous = previous or PreviousBuild()
    feeds = list(feeds)
    earlier = previous.carried.get(Leads)
    leads = Leads(paths(feeds), earlier if isinstance(earlier, Leads) else None)
    previous.carried[Leads] = leads
    for page in plan_pages(feeds, renderer, leads):
        made = many.page(page.path) if many is not None else None
        render = page.render if made is None else made.copy
        yield from previous.get(page.path, page.key, page.items, render)


def assets() -> Iterator[Page]:
    """The style sheet and script the pages load."""
    for name, media_type in ASSETS.items():
        body = (files("feeds") / "static" / name).read_bytes()
        rendered = Rendered(name, media_type, body, etag(body))
        yield Page(name, ("asset", body), (), partial(_same, rendered))


def _same(rendered: Rendered) -> Rendered:
    return rendered
