"""Feeds → bytes: one registry of formats, feedgen for RSS 2.0 and Atom 1.0.

Pure: no I/O, no clock. The same feeds give the same bytes, which the static export and
the server both publish at the same path.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from feeds import __version__
from feeds.config import Config
from feeds.model import FORMAT_NAMES, Article, Feed, Rendered


@dataclass(frozen=True)
class Format:
    name: str  # also the file extension
    media_type: str
    serialize: Callable[[FeedGenerator], bytes]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("rss", "application/rss+xml", lambda fg: fg.rss_str(pretty=True)),
        Format("atom", "application/atom+xml", lambda fg: fg.atom_str(pretty=True)),
    )
}
assert tuple(FORMATS) == FORMAT_NAMES


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class Renderer:
    """Renders feeds for one config; an article's entry is built once and shared by its feeds."""

    def __init__(self, config: Config):
        self.config = config
        self.base_url = config["site.base_url"]
        self.formats = [FORMATS[name] for name in config["feeds.formats"]]
        self._entries: dict[int, FeedEntry] = {}

    def url(self, path: str) -> str:
        return self.base_url + path

    def render_all(self, feeds: Iterable[Feed]) -> Iterator[Rendered]:
        for feed in feeds:
            yield from self.render(feed)

    def render(self, feed: Feed) -> Iterator[Rendered]:
        fg = self._generator(feed)
        for fmt in self.formats:
            path = f"{feed.spec.path}.{fmt.name}"
            fg.id(self.url(path))
            # RSS takes its channel link from the last link added: the site, after self.
            fg.link(
                [
                    {"href": self.url(path), "rel": "self", "type": fmt.media_type},
                    {"href": self.config.site_link, "rel": "alternate", "type": "text/html"},
                ],
                replace=True,
            )
            body = fmt.serialize(fg)
            yield Rendered(path, fmt.media_type, body, etag(body))

    def _generator(self, feed: Feed) -> FeedGenerator:
        fg = FeedGenerator()
        fg.load_extension("media")
        fg.load_extension("dc", atom=False)
        fg.title(feed.spec.title)
        fg.description(feed.spec.description)
        fg.language(self.config["site.language"])
        fg.generator("feeds", __version__)
        if feed.updated:
            fg.updated(feed.updated)  # also lastBuildDate: never the build time
        for article in feed.items:
            fg.add_entry(self._entry(article), order="append")
        return fg

    def _entry(self, article: Article) -> FeedEntry:
        entry = self._entries.get(id(article))
        if entry is None:
            entry = self._entries[id(article)] = _entry(article)
        return entry


def _entry(article: Article) -> FeedEntry:
    fe = FeedEntry()
    fe.load_extension("media")
    fe.load_extension("dc", atom=False)
    fe.guid(article.id, permalink=True)
    fe.title(article.title)
    fe.link(href=article.id)  # one link only: feedgen drops rel on entry links
    fe.published(article.published)
    fe.updated(article.published)
    if article.excerpt:
        fe.summary(article.excerpt)
    if article.related:
        fe.content(_related_html(article), type="html")
    for topic in article.topics:
        fe.category(term=topic)
    provider = article.provider
    fe.author(name=provider.name)  # Atom; RSS <author> needs an email, so RSS uses dc:creator
    fe.dc.dc_creator(provider.name)
    fe.source(url=f"https://{provider.domain}/", title=provider.name)
    if article.image:
        size = {
            k: str(v)
            for k, v in (("width", article.image.width), ("height", article.image.height))
            if v
        }
        fe.media.thumbnail(url=article.image.url, group=None, **size)
        fe.media.content(url=article.image.url, medium="image", group=None, **size)
    return fe


def _related_html(article: Article) -> str:
    esc = html.escape
    items = "".join(
        f'<li><a href="{esc(r.url)}">{esc(r.title)}</a>'
        + (f" ({esc(r.provider)})" if r.provider else "")
        + "</li>"
        for r in article.related
    )
    summary = f"<p>{esc(article.excerpt)}</p>" if article.excerpt else ""
    return f"{summary}<p>Related:</p><ul>{items}</ul>"
