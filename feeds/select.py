"""Articles → feeds: the quality filter, per-feed dedupe and grouping, in one pass."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from feeds.config import Config
from feeds.model import Article, Feed, FeedSpec
from feeds.text import slugify


def _rank(article: Article) -> tuple:
    """Which of two copies of a story wins: higher quality, then newer, then file name."""
    quality = article.quality if article.quality is not None else float("-inf")
    return (quality, article.published, _reverse(article.source))


def _reverse(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def _newest_first(article: Article) -> tuple:
    return (-article.published.timestamp(), article.id)


@dataclass
class _Group:
    """A feed being collected: the best copy of each story, and the names it was called by."""

    items: dict[str, Article]
    names: Counter

    def add(self, article: Article, name: str) -> None:
        """Add articles newest first: the items then stay in that order."""
        current = self.items.get(article.id)
        if current is None:
            self.items[article.id] = article
        elif _rank(article) > _rank(current):
            del self.items[article.id]  # an older copy wins: it moves down to its place
            self.items[article.id] = article
        self.names[name] += 1

    @property
    def name(self) -> str:
        # The most used spelling; ties go to the alphabetically first, for stable titles.
        return min(self.names.items(), key=lambda kv: (-kv[1], kv[0]))[0]


class _Thresholds:
    def __init__(self, config: Config):
        self.min = config["quality.min"]
        self.include_missing = config["quality.missing"] == "include"
        self.topics = config["quality.topics"]
        self.providers = config["quality.providers"]

    def passes(self, quality: float | None, override: float | None) -> bool:
        if quality is None:
            return self.include_missing
        return quality >= (self.min if override is None else override)


def _wanted(config: Config, kind: str):
    """A predicate over feed keys for the topic or provider feeds."""
    enabled = config[f"feeds.{kind}.enabled"]
    include = set(config[f"feeds.{kind}.include"])
    exclude = set(config[f"feeds.{kind}.exclude"])
    return lambda key: enabled and (not include or key in include) and key not in exclude


def select(articles: Iterable[Article], config: Config) -> list[Feed]:
    """Group articles into every configured feed: each feed's whole history, newest first,
    one item per story (the renderer pages it)."""
    limits = _Thresholds(config)
    want_topic, want_provider = _wanted(config, "topics"), _wanted(config, "providers")
    groups: dict[tuple[str, str], _Group] = defaultdict(lambda: _Group({}, Counter()))

    want_all = config["feeds.all"]
    for article in sorted(articles, key=_newest_first):
        if want_all and limits.passes(article.quality, None):
            groups["all", ""].add(article, "")
        for topic in article.topics:
            slug = slugify(topic)
            if want_topic(slug) and limits.passes(article.quality, limits.topics.get(slug)):
                groups["topic", slug].add(article, topic)
        domain = article.provider.domain
        if want_provider(domain) and limits.passes(article.quality, limits.providers.get(domain)):
            groups["provider", domain].add(article, article.provider.name)

    feeds = []
    min_provider = config["feeds.providers.min_articles"]
    for (kind, key), group in sorted(
        groups.items(), key=lambda kv: (_KIND_ORDER[kv[0][0]], kv[0][1])
    ):
        if kind == "provider" and len(group.items) < min_provider:
            continue
        feeds.append(Feed(_spec(kind, key, group.name, config), tuple(group.items.values())))
    return feeds


_KIND_ORDER = {"all": 0, "topic": 1, "provider": 2}


def _spec(kind: str, key: str, name: str, config: Config) -> FeedSpec:
    site = config["site.title"]
    if kind == "all":
        return FeedSpec("all", "", "All articles", site, config["site.description"], "all")
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
    )
