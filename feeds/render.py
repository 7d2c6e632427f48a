"""Feeds → bytes: one registry of formats; feedgen for RSS 2.0 and Atom 1.0, and
:mod:`feeds.jsonfeed` for JSON Feed 1.1.

Pure: no I/O, no clock. The same feeds give the same bytes, which the static export and
the server both publish at the same path.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseExtension
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feeds import __version__
from feeds.config import Config
from feeds.jsonfeed import content_html, item_json, json_feed
from feeds.model import MEDIA_TYPES, Article, Document, Feed, Rendered

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_NS = "http://search.yahoo.com/mrss/"
HISTORY_NS = "http://purl.org/syndication/history/1.0"


@dataclass(frozen=True)
class Format:
    name: str  # also the file extension
    media_type: str
    render: Callable[[Renderer, Document, Format, str], bytes]  # (renderer, doc, fmt, self URL)


def _feedgen(serialize: Callable[[FeedGenerator], bytes], end: bytes) -> Callable[..., bytes]:
    """A format feedgen renders: the document without its entries, which are its last
    elements, then each entry's serialised XML (:meth:`_Entry.xml`) joined in before
    ``end``, the document's closing tags: the bytes feedgen writes with them in the
    document, without parsing each entry again for every document that holds it."""

    def render(renderer: Renderer, doc: Document, fmt: Format, self_url: str) -> bytes:
        document = serialize(renderer.generator(doc, fmt, self_url))
        if not doc.items:
            return document
        entries = b"".join(renderer.entry(article).xml(fmt.name) for article in doc.items)
        if not document.endswith(end):
            raise ValueError(f"{fmt.name}: feedgen wrote a document that does not end as expected")
        return document[: -len(end)] + entries + end

    return render


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def paginate(feed: Feed, size: int, archives: bool) -> list[Document]:
    """The current document (newest ``size`` items) and, with ``archives``, RFC 5005 archive
    pages: the history cut in pages of ``size`` from the oldest, so a full page never changes.
    """
    return [
        Document(feed, feed.items[part.start : part.stop], part.path, part.links, part.archive)
        for part in pages_of(feed.spec.path, len(feed.items), size, archives)
    ]


@dataclass(frozen=True)
class Part:
    """Where one document of a feed lies in its items (newest first): ``items[start:stop]``."""

    path: str
    start: int
    stop: int
    links: tuple[tuple[str, str], ...] = ()
    archive: bool = False


def pages_of(base: str, count: int, size: int, archives: bool) -> list[Part]:
    """The documents of :func:`paginate` for a feed at ``base`` of ``count`` items, as
    positions in its items: what an incremental build needs without the items at hand."""
    pages = math.ceil(max(count - size, 0) / size) if archives else 0
    if not pages:
        return [Part(base, 0, min(size, count))]

    def archive(k: int) -> str:
        return f"{base}/archive/{k}"

    parts = [Part(base, 0, size, (("prev-archive", archive(pages)),))]
    for k in range(1, pages + 1):
        links = [("current", base)]
        if k > 1:
            links.append(("prev-archive", archive(k - 1)))
        if k < pages:
            links.append(("next-archive", archive(k + 1)))
        # Cut from the oldest: archive k holds the k-th ``size`` items counted from the end.
        start, stop = max(count - k * size, 0), count - (k - 1) * size
        parts.append(Part(archive(k), start, stop, tuple(links), archive=True))
    return parts


class Renderer:
    """Renders feeds for one config; an article's entry is built once and shared by its feeds
    (after :meth:`plan`, kept only until the last document that holds it is rendered)."""

    def __init__(self, config: Config):
        self.config = config
        self.base_url = config.site.base_url
        self.formats = [FORMATS[name] for name in config.feeds.formats]
        # The formats an entry builds (JSON Feed has no feedgen entry).
        self.entry_formats = frozenset(f.name for f in self.formats) & {"rss", "atom"}
        self.hub = config.websub.hub
        self.full = config.feeds.content == "full"  # items carry their bodies
        self.ttl = math.ceil(config.feeds.max_age / 60)
        self._entries: dict[int, _Entry] = {}  # by id() of the article
        self._uses: dict[int, int] = {}  # documents left to render that hold the article
        self._generator: tuple[Document, FeedGenerator] | None = None

    def url(self, path: str, fmt: Format) -> str:
        return f"{self.base_url}{path}.{fmt.name}"

    def documents(self, feeds: Iterable[Feed]) -> list[Document]:
        """Every document of ``feeds``: each one's current page and archive pages."""
        size, archives = self.config.feeds.items, self.config.feeds.archives
        return [doc for feed in feeds for doc in paginate(feed, size, archives)]

    def plan(self, docs: Iterable[Document]) -> None:
        """Count the documents to render that hold each article, so that
        :meth:`render_list` lets go of its entry after the last."""
        for doc in docs:
            for article in doc.items:
                self._uses[id(article)] = self._uses.get(id(article), 0) + 1

    def expect(self, article: Article, uses: int) -> None:
        """What :meth:`plan` counts, for one article: the documents left that hold it."""
        if uses:
            self._uses[id(article)] = uses

    def render_list(self, doc: Document) -> list[Rendered]:
        """``doc`` in every format; then the entries it was the last to hold are let go."""
        files = list(self.render(doc))
        for article in doc.items:
            uses = self._uses.get(id(article), 0) - 1
            if uses > 0:
                self._uses[id(article)] = uses
            else:
                self._uses.pop(id(article), None)
                self._entries.pop(id(article), None)
        return files

    def render(self, doc: Document) -> Iterator[Rendered]:
        """``doc`` in every configured format."""
        for fmt in self.formats:
            yield self.render_as(doc, fmt)

    def render_as(self, doc: Document, fmt: Format, self_url: str | None = None) -> Rendered:
        """``doc`` in ``fmt``; ``self_url`` overrides its self link (a filtered view's URL)."""
        body = fmt.render(self, doc, fmt, self_url or self.url(doc.path, fmt))
        return Rendered(f"{doc.path}.{fmt.name}", fmt.media_type, body, etag(body))

    def links(self, doc: Document, fmt: Format, self_url: str) -> list[tuple[str, str]]:
        """(rel, URL) of the document in ``fmt``: self, hub and its archive links."""
        links = [("self", self_url)]
        if self.hub:
            links.append(("hub", self.hub))
        links += [(rel, self.url(path, fmt)) for rel, path in doc.links]
        return links

    def generator(self, doc: Document, fmt: Format, self_url: str) -> FeedGenerator:
        """The feedgen generator of ``doc`` with its links in ``fmt``, reused across the
        feedgen formats."""
        if self._generator is None or self._generator[0] != doc:
            self._generator = (doc, self._new_generator(doc))
        fg = self._generator[1]
        links = self.links(doc, fmt, self_url)
        fg.id(self_url)
        # RSS takes its channel link from the last link added: the site, after the rest.
        fg.link(
            [{"href": self_url, "rel": "self", "type": fmt.media_type}]
            + [{"href": href, "rel": rel} for rel, href in links[1:]]
            + [{"href": self.config.site_link, "rel": "alternate", "type": "text/html"}],
            replace=True,
        )
        fg.extra_links.links = [(rel, href) for rel, href in links if rel != "self"]
        return fg

    def _new_generator(self, doc: Document) -> FeedGenerator:
        fg = FeedGenerator()
        # What load_extension registers, without its import of a missing module (see
        # _feed_entry).
        fg.register_extension("media", MediaExtension, MediaEntryExtension)
        fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False)
        fg.register_extension("extra_links", ExtraLinks)
        fg.title(doc.feed.spec.title)
        fg.description(doc.feed.spec.description)
        fg.language(self.config.site.language)
        fg.generator("feeds", __version__)
        fg.ttl(self.ttl)
        fg.extra_links.archive = doc.archive
        icon, logo = self.config.feed_images(doc.feed.spec)
        if icon:
            fg.icon(icon)
        if logo or icon:
            fg.image(logo or icon)  # RSS's image (readers show it wide or square)
        fg.extra_links.logo = bool(logo)  # feedgen makes the RSS image Atom's logo too
        if doc.items:
            fg.updated(doc.items[0].published)  # also lastBuildDate: never the build time
        return fg  # without its entries: see _feedgen

    def json_item(self, article: Article) -> bytes:
        """The article's JSON Feed item, made once for the documents that hold it."""
        return self.entry(article).json()

    def entry(self, article: Article) -> _Entry:
        """The article's entry in every format, made when a document first needs it."""
        entry = self._entries.get(id(article))
        if entry is None:
            entry = self._entries[id(article)] = _Entry(article, self)
        return entry


class ExtraLinks(BaseExtension):
    """What feedgen leaves out of RSS: atom:link rel=hub and the RFC 5005 archive links,
    and the fh:archive marker of an archive page (in Atom too); and in Atom, the site's
    link first and no logo but a wide one."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []
        self.archive = False
        self.logo = False  # Atom keeps feedgen's logo (the RSS image): it is a wide one

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS} if self.archive else {}

    def extend_rss(self, rss):
        channel = rss[0]
        at = channel.index(channel.find(f"{{{ATOM_NS}}}link")) + 1
        for offset, (rel, href) in enumerate(self.links):
            link = etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel)
            channel.insert(at + offset, link)
        self._mark(channel)
        return rss

    def extend_atom(self, feed):
        # The site's link first: some readers (a popular JavaScript parser among them) take
        # the first link of a feed for its site.
        links = feed.findall("link")
        site = next((link for link in links if link.get("rel") == "alternate"), None)
        if site is not None and site is not links[0]:
            links[0].addprevious(site)
        logo = feed.find("logo")
        if logo is not None and not self.logo:
            feed.remove(logo)
        self._mark(feed)
        return feed

    def _mark(self, parent: etree._Element) -> None:
        if self.archive:
            parent.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))


class _Entry:
    """An article's entry in each format, serialised as it stands in a document (see
    :func:`_feedgen`): made once, kept only while the renderer has documents left that hold
    it (at 100,000 articles some 22,000 entries are alive at once). The feedgen entry that
    builds the XML formats (6 KB, twice their XML) is let go once it has built each of
    those the renderer makes."""

    def __init__(self, article: Article, renderer: Renderer):
        self._article = article
        self._renderer = renderer
        self._built: dict[str, bytes] = {}
        self._unbuilt = set(renderer.entry_formats)
        self._feed_entry: _FeedEntry | None = None

    def xml(self, fmt: str) -> bytes:
        """The entry (RSS's item) of ``fmt``, indented as in its document."""
        return self._kept(fmt) or self._keep(fmt, self._build(fmt))

    def json(self) -> bytes:
        """The article's JSON Feed item (which feedgen does not make)."""
        kept = self._kept("json")
        return kept or self._keep("json", item_json(self._article, self._renderer.full))

    def _last(self) -> bool:
        """Whether this is the last use: the renderer's count of the documents left that
        hold it is one (or none: a use not planned)."""
        return self._renderer._uses.get(id(self._article), 0) <= 1

    def _kept(self, fmt: str) -> bytes | None:
        """What was kept of ``fmt``, let go at its last use."""
        return self._built.pop(fmt, None) if self._last() else self._built.get(fmt)

    def _keep(self, fmt: str, built: bytes) -> bytes:
        if not self._last():
            self._built[fmt] = built
        return built

    def _build(self, fmt: str) -> bytes:
        entry = self._feed_entry or _feed_entry(self._article, self._renderer.full)
        self._unbuilt.discard(fmt)
        self._feed_entry = entry if self._unbuilt else None
        return _in_place(fmt, entry.rss_entry() if fmt == "rss" else entry.atom_entry())


def _in_place(fmt: str, element: etree._Element) -> bytes:
    """``element``, an entry of ``fmt``, serialised (pretty) as feedgen's document writes
    it: at its depth, under a root that declares the namespaces the document's root does
    (then the entry declares none of its own)."""
    if fmt == "rss":
        root = etree.Element("rss", nsmap=_RSS_NAMESPACES)
        etree.SubElement(root, "channel").append(element)
        text = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
        return text[text.index(b"<channel>\n") + 10 : text.rindex(b"  </channel>")]
    root = etree.Element("feed", nsmap=_ATOM_NAMESPACES)
    root.append(element)
    text = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    return text[text.index(b">\n") + 2 : text.rindex(b"</feed>")]


# What feedgen declares on the root of each format's document (with the media and dc
# extensions loaded), of which the entries use some.
_RSS_NAMESPACES = {
    "media": MEDIA_NS,
    "dc": "http://purl.org/dc/elements/1.1/",
    "atom": ATOM_NS,
    "content": "http://purl.org/rss/1.0/modules/content/",
}
_ATOM_NAMESPACES = {"media": MEDIA_NS}


class _FeedEntry(FeedEntry):
    """The feedgen entry of an article, with what feedgen leaves out of each format."""

    def __init__(self, article: Article) -> None:
        super().__init__()
        self._article = article

    def rss_entry(self, extensions: bool = True) -> etree._Element:
        entry = super().rss_entry(extensions)
        if self._article.excerpt:
            # RSS's description is HTML: the plain-text excerpt ("Tom & Jerry <b>") is
            # escaped as HTML, then (by lxml) as XML.
            entry.find("description").text = html.escape(self._article.excerpt, quote=False)
        return entry

    def atom_entry(self, extensions: bool = True) -> etree._Element:
        entry = super().atom_entry(extensions)
        # The provider as Atom's source, with the id and updated date it needs: its home page,
        # and (its own feed unknown) the article's date.
        source = entry.find("source")
        etree.SubElement(source, "id").text = self.source()["url"]
        etree.SubElement(source, "updated").text = self._article.published.isoformat()
        return entry


def _feed_entry(article: Article, full: bool) -> _FeedEntry:
    fe = _FeedEntry(article)
    # What load_extension("media") and ("dc", atom=False) register, without the failed
    # import of a "feedgen.ext.media_entry" module that each of its calls first makes: that
    # search of sys.path was a quarter of the time an entry took to build.
    fe.register_extension("media", MediaEntryExtension)
    fe.register_extension("dc", DcEntryExtension, atom=False)
    fe.guid(article.id, permalink=True)
    fe.title(article.title)
    fe.link(href=article.id)  # one link only: feedgen drops rel on entry links
    fe.published(article.published)
    fe.updated(article.published)
    if article.excerpt:
        fe.summary(article.excerpt)
    if content := content_html(article, full):
        fe.content(content, type="html")
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


def _json_feed(renderer: Renderer, doc: Document, fmt: Format, self_url: str) -> bytes:
    links = renderer.links(doc, fmt, self_url)
    return json_feed(doc, renderer.config, self_url, links, renderer.json_item)


_RENDERERS: dict[str, Callable[[Renderer, Document, Format, str], bytes]] = {
    "rss": _feedgen(lambda fg: fg.rss_str(pretty=True), b"  </channel>\n</rss>\n"),
    "atom": _feedgen(lambda fg: fg.atom_str(pretty=True), b"</feed>\n"),
    "json": _json_feed,
}
# The names and media types come from feeds.model, which config checks names against: a
# format added there without a renderer here fails on import.
FORMATS = {name: Format(name, media, _RENDERERS[name]) for name, media in MEDIA_TYPES.items()}
