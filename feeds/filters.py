"""Subscriber-side filters on a feed URL (``?limit=&min_quality=&topic=&provider=&q=``).

Query parameters are checked once and turned into an immutable :class:`ItemFilter`; no
user input is ever used as a regular expression.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from feeds.errors import FeedsError
from feeds.model import Article, FeedKind, quality_number
from feeds.settings import MAX_ITEMS
from feeds.text import provider_key, slugify

MAX_LIMIT = MAX_ITEMS  # a feed of more could pass the 5 MiB readers accept
MAX_WORDS = 10
MAX_VALUE = 200  # characters in one parameter value
NAMES = ("limit", "min_quality", "topic", "provider", "q")


class InvalidFilter(FeedsError):
    """A filter parameter has a value that cannot be used; the message is one line."""


def asks_filter(args: Mapping[str, str]) -> bool:
    """Whether the query parameters ``args`` ask for one (see :meth:`ItemFilter.from_args`)."""
    return any(name in args for name in NAMES)


@dataclass(frozen=True)
class ItemFilter:
    limit: int | None = None
    min_quality: float | None = None
    topic: str | None = None  # slug
    provider: str | None = None  # domain
    words: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, str], kind: FeedKind) -> ItemFilter | None:
        """The filter the parameters ask for, or None if they ask for none.

        Parameters other than these are ignored (readers add cache busters)."""
        values = {name: args[name] for name in NAMES if name in args}
        if not values:
            return None
        for name, value in values.items():
            if len(value) > MAX_VALUE:
                raise InvalidFilter(f"{name}: longer than {MAX_VALUE} characters")
        return cls(
            limit=_limit(values.get("limit")),
            min_quality=_quality(values.get("min_quality")),
            topic=_topic(values.get("topic"), kind),
            provider=_provider(values.get("provider"), kind),
            words=_words(values.get("q")),
        )

    def apply(self, items: Iterable[Article], default_limit: int) -> tuple[Article, ...]:
        kept = []
        limit = self.limit or default_limit
        for article in items:
            if self._keeps(article):
                kept.append(article)
                if len(kept) == limit:
                    break
        return tuple(kept)

    def _keeps(self, article: Article) -> bool:
        if self.min_quality is not None and (
            article.quality is None or article.quality < self.min_quality
        ):
            return False
        if self.topic and self.topic not in article.topic_slugs:
            return False
        if self.provider and article.provider.domain != self.provider:
            return False
        if self.words:
            text = searchable(article)
            return all(word in text for word in self.words)
        return True


def searchable(article: Article) -> str:
    """The text ``q`` words are looked for in (feeds.search indexes the same text)."""
    return f"{article.title} {article.excerpt}".casefold()


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidFilter(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def _quality(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return quality_number(value)
    except ValueError:
        raise InvalidFilter("min_quality: expected a number") from None


def _topic(value: str | None, kind: FeedKind) -> str | None:
    if value is None:
        return None
    if kind == "topic":
        raise InvalidFilter("topic: a topic feed is one topic already; filter by provider")
    return slugify(value)


def _provider(value: str | None, kind: FeedKind) -> str | None:
    if value is None:
        return None
    if kind == "provider":
        raise InvalidFilter("provider: a provider feed is one provider already; filter by topic")
    domain = provider_key(value)
    if domain is None:
        raise InvalidFilter("provider: expected a domain name such as example.com")
    return domain


def _words(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    words = tuple(dict.fromkeys(value.casefold().split()))
    if not words:
        raise InvalidFilter("q: expected one or more words")
    if len(words) > MAX_WORDS:
        raise InvalidFilter(f"q: at most {MAX_WORDS} words")
    return words
