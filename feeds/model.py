"""Immutable values that flow through the pipeline: articles, feeds, rendered files; and
what a quality number is."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    domain: str  # lowercase ASCII (IDN as punycode); the key of the provider's feed
    image: str | None = None  # the provider's own image (logo or icon), an http(s) URL


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Related:
    title: str
    url: str
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One normalised article: dates aware UTC, URLs http(s), text free of XML-illegal chars."""

    source: str  # the file it came from, for messages
    id: str  # canonical URL: the entry id, link and dedupe key
    title: str
    excerpt: str
    published: datetime
    provider: Provider  # from the article's host when its front matter has none
    topics: tuple[str, ...]
    topic_slugs: tuple[str, ...]  # feeds.text.slugify of each topic, in the same order
    quality: float | None
    image: Image | None = None
    related: tuple[Related, ...] = ()
    category: str | None = None
    type: str | None = None
    body: str = ""  # the Markdown body as safe HTML (feeds.body); "" for none


def quality_number(value: Any) -> float:
    """``value`` as an article's quality or a quality limit: a finite float from a number
    or its text (not a bool); raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not a number: {type(value).__name__}")
    try:
        # An int beyond float's range raises OverflowError here, not in isfinite below.
        number = float(value)
    except OverflowError:
        raise ValueError("beyond a float's range") from None
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


FeedKind = Literal["all", "topic", "provider"]

# The formats every feed can be rendered in, by name (also the file extension), and their
# media types: the one list of them. feeds.render has a renderer for each.
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
FORMAT_NAMES = tuple(MEDIA_TYPES)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a feed is: its kind, key and where it lives (``path`` has no extension)."""

    kind: FeedKind
    key: str
    name: str  # the topic or provider as people call it ("All articles" for the all feed)
    title: str
    description: str
    path: str
    image: str | None = None  # a provider feed's own image (its provider's), if any


@dataclass(frozen=True, slots=True)
class Feed:
    spec: FeedSpec
    items: tuple[Article, ...]  # the whole history, newest first, unique ids

    @property
    def updated(self) -> datetime | None:
        return self.items[0].published if self.items else None


@dataclass(frozen=True, slots=True)
class Document:
    """One page of a feed: the current items at the feed's path, or an RFC 5005 archive."""

    feed: Feed
    items: tuple[Article, ...]
    path: str  # without extension
    links: tuple[tuple[str, str], ...] = ()  # (rel, path) to the feed's other pages
    archive: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """One feed in one format: the bytes served and exported at ``path``."""

    path: str
    media_type: str
    body: bytes
    etag: str


class File(Protocol):
    """A file to serve or export: a :class:`Rendered` in memory, or one whose body is read
    from disk when it is asked for (:class:`feeds.store.Stored`)."""

    @property
    def path(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def etag(self) -> str: ...
    @property
    def body(self) -> bytes: ...


class OnDisk(Protocol):
    """A file whose body already lies in a file of its own that is never changed once
    written (a :class:`feeds.store.Stored`): an export may link to it instead of copying."""

    @property
    def source(self) -> Path: ...
