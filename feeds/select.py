"""Articles → feeds: the quality filter, per-feed dedupe and grouping."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from feeds.config import Config, TopicFeedSettings
from feeds.model import Article, Feed, FeedSpec


class Ranked(Protocol):
    """What the dedupe looks at: an :class:`Article`, or a light record of one (an
    incremental build's), whose ``published`` need only sort as the article's date does."""

    @property
    def source(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def quality(self) -> float | None: ...
    @property
    def published(self) -> Any: ...


def rank(article: Ranked) -> tuple:
    """Which of two copies of a story wins: higher quality, then newer, then file name."""
    quality = article.quality if article.quality is not None else float("-inf")
    return (quality, article.published, _reverse(article.source))


def _reverse(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def _newest_first(article: Article) -> tuple:
    return (-article.published.timestamp(), article.id)


R = TypeVar("R", bound=Ranked)


def grouped(members: Sequence[tuple[object, R, str]]) -> tuple[tuple[R, ...], str]:
    """A feed's items, the best copy of each story, newest first; and the name most of its
    articles call it by (of equals, the alphabetically first, for stable titles).
    ``members`` are every copy the feed takes, newest first, each with the name it gives
    the feed."""
    items: dict[str, R] = {}
    for _, article, _ in members:
        current = items.setdefault(article.id, article)
        if current is not article and rank(article) > rank(current):
            del items[article.id]  # an older copy wins: it moves down to its place
            items[article.id] = article
    names = Counter(member[2] for member in members)
    return tuple(items.values()), min(names.items(), key=lambda kv: (-kv[1], kv[0]))[0]


Key = tuple[str, str]  # (kind, key) of a feed


class Rules:
    """Which feeds an article is a candidate for (the configured feeds its topics and
    provider name), and the quality each of them asks."""

    def __init__(self, config: Config):
        quality = config.quality
        self.min = quality.min
        self.include_missing = quality.missing == "include"
        self.topics = quality.topics
        self.providers = quality.providers
        self._want_all = config.feeds.all
        self._want_topic = _wanted(config.feeds.topics)
        self._want_provider = _wanted(config.feeds.providers)

    def passes(self, quality: float | None, limit: float) -> bool:
        if quality is None:
            return self.include_missing
        return quality >= limit

    def candidacies(self, article: Article) -> Iterator[tuple[Key, str, float]]:
        """The feeds ``article`` is a candidate for: each feed's key, the name the article
        calls it by, and the lowest quality the feed takes."""
        if self._want_all:
            yield ("all", ""), "", self.min
        for topic, slug in zip(article.topics, article.topic_slugs, strict=True):
            if self._want_topic(slug):
                yield ("topic", slug), topic, self.topics.get(slug, self.min)
        domain = article.provider.domain
        if self._want_provider(domain):
            yield ("provider", domain), article.provider.name, self.providers.get(domain, self.min)


def _wanted(settings: TopicFeedSettings) -> Callable[[str], bool]:
    """A predicate over feed keys for the topic or provider feeds."""
    enabled = settings.enabled
    include = set(settings.include)
    exclude = set(settings.exclude)
    return lambda key: enabled and (not include or key in include) and key not in exclude


def select(articles: Iterable[Article], config: Config) -> list[Feed]:
    """Group articles into every configured feed: each feed's whole history, newest first,
    one item per story (the renderer pages it)."""
    selection = Selection(config)
    selection.update(added=articles)
    return selection.feeds()


Member = tuple[tuple, Article, str]  # (_newest_first, article, the name it gives the feed)
_order = itemgetter(0)


class Selection:
    """The feeds of a set of articles that changes: :meth:`update` takes articles in and
    out, and :meth:`feeds` regroups only the feeds whose articles changed, so a server that
    sees one file change does not regroup 100,000 articles. Its feeds are always those
    :func:`select` makes of the same articles; the feeds that did not change are the same
    objects as before."""

    def __init__(self, config: Config):
        self._config = config
        self._rules = Rules(config)
        # Every copy of every story each feed takes, newest first.
        self._members: dict[Key, list[Member]] = defaultdict(list)
        self._feeds: dict[Key, Feed | None] = {}  # None: too few articles to publish
        self._dirty: set[Key] = set()

    def update(self, added: Iterable[Article] = (), removed: Iterable[Article] = ()) -> None:
        """Take ``removed`` out (the very objects that were added) and ``added`` in."""
        for article in removed:
            order = _newest_first(article)
            for key, _ in self._memberships(article):
                members = self._members[key]
                at = bisect.bisect_left(members, order, key=_order)
                while members[at][1] is not article:
                    at += 1
                del members[at]
                self._dirty.add(key)
        for article in sorted(added, key=_newest_first):
            member_of = (_newest_first(article), article)
            for key, name in self._memberships(article):
                members = self._members[key]
                member = (*member_of, name)
                if not members or members[-1][0] <= member[0]:
                    members.append(member)  # all of a first build: it comes sorted
                else:
                    bisect.insort_right(members, member, key=_order)
                self._dirty.add(key)

    def _memberships(self, article: Article) -> Iterator[tuple[Key, str]]:
        """The feeds ``article`` belongs in, with the name it calls each by."""
        passes, quality = self._rules.passes, article.quality
        for key, name, limit in self._rules.candidacies(article):
            if passes(quality, limit):
                yield key, name

    def feeds(self) -> list[Feed]:
        """Every feed to publish, in a stable order: all, topics, providers."""
        min_provider = self._config.feeds.providers.min_articles
        for key in self._dirty:
            members = self._members[key]
            if not members:
                del self._members[key]
                self._feeds.pop(key, None)
                continue
            items, name = grouped(members)
            kind = key[0]
            if kind == "provider" and len(items) < min_provider:
                self._feeds[key] = None
            else:
                image = _image(items) if kind == "provider" else None
                self._feeds[key] = Feed(feed_spec(kind, key[1], name, self._config, image), items)
        self._dirty.clear()
        ordered = sorted(self._feeds.items(), key=lambda kv: feed_order(kv[0]))
        return [feed for _, feed in ordered if feed is not None]


_KIND_ORDER = {"all": 0, "topic": 1, "provider": 2}


def feed_order(key: Key) -> tuple[int, str]:
    """Where the feed of ``key`` comes among the feeds: all, topics, providers."""
    return (_KIND_ORDER[key[0]], key[1])


def _image(items: tuple[Article, ...]) -> str | None:
    """A provider feed's image: the provider's own, as its newest article that has one
    gives it."""
    return next((a.provider.image for a in items if a.provider.image), None)


def feed_spec(kind: str, key: str, name: str, config: Config, image: str | None = None) -> FeedSpec:
    site = config.site.title
    if kind == "all":
        return FeedSpec("all", "", "All articles", site, config.site.description, "all")
    if kind == "topic":
        return FeedSpec(
            "topic", key, name, f"{site}: {name}", f"{name}: news from {site}", f"topics/{key}"
        )
    return FeedSpec(
        "provider",
        key,
        name,
        f"{site}: {name}",
        f"News from {name} ({key}) on {site}",
        f"providers/{key}",
        image,
    )
