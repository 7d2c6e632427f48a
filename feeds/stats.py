"""What the quality thresholds and the dedupe did: the counts of a build's summary, and
each feed's candidates, what it kept and dropped, and the quality of its candidates
(``feeds stats``). Pure: it reads a snapshot's articles and config, never a file."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from feeds.files import path_order
from feeds.model import Article, Feed, FeedKind
from feeds.publisher import Snapshot
from feeds.select import Key, Rules, feed_spec, rank

BIN = 10  # quality points per bar of a histogram


@dataclass(frozen=True)
class Counts:
    """What became of every article file read: each file is in exactly one group (in no
    particular order: :func:`details` sorts them)."""

    broken: tuple[str, ...]  # files skipped as unreadable or invalid
    below: tuple[str, ...]  # articles no feed takes at their quality
    duplicates: tuple[str, ...]  # taken, but every feed shows another copy of the story
    unfed: tuple[str, ...]  # in no configured feed whatever their quality
    published: tuple[str, ...]  # the best copy of each story a feed shows
    feeds: int

    @property
    def stories(self) -> int:
        return len(self.published)

    @property
    def read(self) -> int:
        return sum(map(len, (self.broken, self.below, self.duplicates, self.unfed, self.published)))


def counts(snapshot: Snapshot) -> Counts:
    """The fate of each file of ``snapshot``. Of the copies of a story, the best (as a feed
    picks it) counts as the story published and the others as duplicates, even where a feed
    the best is not in shows one of them."""
    rules = Rules(snapshot.config)
    published_feeds = {(f.spec.kind, f.spec.key) for f in snapshot.feeds}
    shown = {a.source: a for feed in snapshot.feeds for a in feed.items}
    best: dict[str, Article] = {}
    for article in shown.values():
        if article.id not in best or rank(article) > rank(best[article.id]):
            best[article.id] = article
    groups: dict[str, list[str]] = {"below": [], "duplicates": [], "unfed": []}
    for article in snapshot.read:
        if article.source in shown:
            if best[article.id].source != article.source:
                groups["duplicates"].append(article.source)
            continue
        taken = below = False
        for key, _, limit in rules.candidacies(article):
            if not rules.passes(article.quality, limit):
                below = True
            elif key in published_feeds:
                taken = True
        group = "duplicates" if taken else "below" if below else "unfed"
        groups[group].append(article.source)
    return Counts(
        broken=tuple(p.source for p in snapshot.problems),
        below=tuple(groups["below"]),
        duplicates=tuple(groups["duplicates"]),
        unfed=tuple(groups["unfed"]),
        published=tuple(a.source for a in best.values()),
        feeds=len(snapshot.feeds),
    )


def _sorted(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(paths, key=path_order))


def summary(counts: Counts) -> str:
    """One line: how many files were read and what became of them."""
    unfed = f", {len(counts.unfed)} in no feed" if counts.unfed else ""
    return (
        f"Read {counts.read} article files: {len(counts.broken)} broken, "
        f"{len(counts.below)} below the quality threshold, {len(counts.duplicates)} "
        f"duplicates{unfed}; {counts.stories} stories published in {counts.feeds} feeds."
    )


def details(counts: Counts) -> list[str]:
    """The files each count of :func:`summary` holds (but the published), one a line."""
    groups = (
        ("broken", counts.broken),
        ("below the quality threshold", counts.below),
        ("duplicate", counts.duplicates),
        ("in no feed", counts.unfed),
    )
    return [f"  {name}: {path}" for name, paths in groups for path in _sorted(paths)]


@dataclass(frozen=True)
class FeedStats:
    """One feed (published or emptied by its threshold) and what it took of its candidates."""

    kind: FeedKind
    key: str
    name: str
    path: str
    threshold: float
    published: bool  # False: nothing kept, or a provider below feeds.providers.min_articles
    candidates: int  # articles the feed would take at any quality
    kept: int  # its items: distinct stories that pass the threshold
    below: int  # candidates dropped by the threshold
    duplicates: int  # candidates that pass, dropped as another copy of a story kept
    no_quality: int  # candidates without a quality
    qualities: tuple[float, ...]  # of the candidates that have one, lowest first
    newest: datetime | None  # of the items kept
    oldest: datetime | None


def feed_stats(snapshot: Snapshot) -> list[FeedStats]:
    """Every feed the articles of ``snapshot`` are candidates for, in the order published:
    all, topics, providers."""
    config = snapshot.config
    rules = Rules(config)
    candidates: dict[Key, list[tuple[Article, str, float]]] = defaultdict(list)
    for article in snapshot.read:
        for key, name, limit in rules.candidacies(article):
            candidates[key].append((article, name, limit))
    published: dict[Key, Feed] = {(f.spec.kind, f.spec.key): f for f in snapshot.feeds}
    order = {"all": 0, "topic": 1, "provider": 2}
    out = []
    for key in sorted(candidates, key=lambda k: (order[k[0]], k[1])):
        members = candidates[key]
        limit = members[0][2]
        kept = [a for a, _, _ in members if rules.passes(a.quality, limit)]
        stories = {a.id for a in kept}
        newest = max((a.published for a in kept), default=None)
        oldest = min((a.published for a in kept), default=None)
        feed = published.get(key)
        spec = feed.spec if feed else feed_spec(key[0], key[1], _name(members), config)
        out.append(
            FeedStats(
                kind=spec.kind,
                key=spec.key,
                name=spec.name,
                path=spec.path,
                threshold=limit,
                published=feed is not None,
                candidates=len(members),
                kept=len(stories),
                below=len(members) - len(kept),
                duplicates=len(kept) - len(stories),
                no_quality=sum(a.quality is None for a, _, _ in members),
                qualities=tuple(sorted(a.quality for a, _, _ in members if a.quality is not None)),
                newest=newest,
                oldest=oldest,
            )
        )
    return out


def _name(members: list[tuple[Article, str, float]]) -> str:
    """The name most candidates call a feed by (of equals the first), as select does."""
    names: dict[str, int] = defaultdict(int)
    for _, name, _ in members:
        names[name] += 1
    return min(names.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def quartiles(values: Sequence[float]) -> tuple[float, float, float, float, float] | None:
    """Lowest, first quartile, median, third quartile and highest of sorted ``values``
    (quartiles by linear interpolation between the values); None for none."""
    if not values:
        return None
    if len(values) == 1:
        return (values[0],) * 5
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return values[0], q1, median, q3, values[-1]


def histogram(values: Iterable[float], start: float, bins: int) -> list[int]:
    """How many of ``values`` fall in each of ``bins`` bars :data:`BIN` wide from ``start``."""
    counts = [0] * bins
    for value in values:
        counts[min(int((value - start) // BIN), bins - 1)] += 1
    return counts


def histogram_range(stats: Iterable[FeedStats]) -> tuple[float, int]:
    """The start and number of bars that hold every feed's qualities: one scale for all."""
    values = [v for s in stats for v in (s.qualities[:1] + s.qualities[-1:])]
    if not values:
        return 0, 0
    start = math.floor(min(values) / BIN) * BIN
    return start, int((max(values) - start) // BIN) + 1
