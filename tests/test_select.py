import functools

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.config import parse
from feeds.model import Article, Provider
from feeds.select import Selection, select
from feeds.text import slugify

from .conftest import BASE_URL


@functools.cache  # a Config is frozen: one for each text, not one a call (hundreds below)
def config(extra: str = ""):
    return parse(yaml.safe_load(f"site: {{title: T, base_url: '{BASE_URL}'}}\n" + extra))


def make(n: int, quality=50.0, topics=("AI",), domain="example.com", url=None, day=None) -> Article:
    from datetime import UTC, datetime

    return Article(
        source=f"{n:03d}.md",
        id=url or f"https://news.example.com/{n}",
        title=f"Story {n}",
        excerpt="",
        published=datetime(2023, 1, day or n, tzinfo=UTC),
        provider=Provider(domain.split(".")[0].title(), domain),
        topics=tuple(topics),
        topic_slugs=tuple(map(slugify, topics)),
        quality=quality,
    )


def feeds_by_path(articles, extra=""):
    return {f.spec.path: [a.title for a in f.items] for f in select(articles, config(extra))}


def test_one_feed_for_all_each_topic_and_each_provider_newest_first():
    got = feeds_by_path(
        [
            make(1, topics=["AI", "AI in Healthcare"]),
            make(2, domain="cnn.com"),
            make(3, topics=["Robots"], domain="cnn.com"),
        ]
    )
    assert got == {
        "all": ["Story 3", "Story 2", "Story 1"],
        "topics/ai": ["Story 2", "Story 1"],
        "topics/ai-in-healthcare": ["Story 1"],
        "topics/robots": ["Story 3"],
        "providers/cnn.com": ["Story 3", "Story 2"],
        "providers/example.com": ["Story 1"],
    }


def test_quality_threshold_and_overrides():
    articles = [
        make(1, quality=10),
        make(2, quality=30, topics=["AI", "Robots"]),
        make(3, quality=60),
    ]
    got = feeds_by_path(
        articles, "quality: {min: 40, topics: {Robots: 20}, providers: {example.com: 5}}"
    )
    assert got["all"] == ["Story 3"]
    assert got["topics/ai"] == ["Story 3"]
    assert got["topics/robots"] == ["Story 2"]  # the topic's own, lower threshold
    assert got["providers/example.com"] == ["Story 3", "Story 2", "Story 1"]


def test_missing_quality_is_included_by_default_and_can_be_excluded():
    articles = [make(1, quality=None), make(2, quality=90)]
    assert feeds_by_path(articles, "quality: {min: 40}")["all"] == ["Story 2", "Story 1"]
    got = feeds_by_path(articles, "quality: {min: 40, missing: exclude}")
    assert got["all"] == ["Story 2"]


def test_the_same_story_is_published_once_the_better_copy():
    copies = [
        make(1, quality=20, url="https://x.example/s"),
        make(2, quality=80, url="https://x.example/s"),
        make(3, quality=None, url="https://x.example/s"),
    ]
    (feed, *_) = select(copies, config())
    assert [a.source for a in feed.items] == ["002.md"]


def test_dedupe_is_per_feed():
    # The better copy is only in topic A; topic B still gets its own copy of the story.
    copies = [
        make(1, quality=80, topics=["A"], url="https://x.example/s"),
        make(2, quality=20, topics=["B"], url="https://x.example/s"),
    ]
    feeds = {f.spec.path: f for f in select(copies, config())}
    assert [a.source for a in feeds["all"].items] == ["001.md"]
    assert [a.source for a in feeds["topics/b"].items] == ["002.md"]


def test_feed_switches_include_exclude_and_min_articles():
    articles = [
        make(1, topics=["AI", "Robots"]),
        make(2, topics=["Cars"], domain="cnn.com"),
        make(3, domain="cnn.com"),
        make(4, domain="bbc.com"),
    ]
    got = feeds_by_path(
        articles,
        """
feeds:
  all: false
  topics: {exclude: [robots]}
  providers: {include: [cnn.com, bbc.com], min_articles: 2}
""",
    )
    assert sorted(got) == ["providers/cnn.com", "topics/ai", "topics/cars"]
    got = feeds_by_path(articles, "feeds: {topics: {include: [Cars]}, providers: {enabled: false}}")
    assert sorted(got) == ["all", "topics/cars"]


def test_a_feed_holds_its_whole_history_newest_first():
    got = feeds_by_path([make(n) for n in range(1, 11)], "feeds: {items: 3}")
    assert got["all"] == [f"Story {n}" for n in range(10, 0, -1)]


def test_topic_spellings_share_one_feed_titled_by_the_most_used():
    got = select(
        [
            make(1, topics=["AI Ethics"]),
            make(2, topics=["ai ethics"]),
            make(3, topics=["AI Ethics"]),
        ],
        config(),
    )
    (topic,) = [f for f in got if f.spec.kind == "topic"]
    assert topic.spec.path == "topics/ai-ethics" and topic.spec.title == "T: AI Ethics"
    assert len(topic.items) == 3


def test_order_is_stable_whatever_the_input_order():
    articles = [make(n, day=1) for n in range(1, 6)]
    assert feeds_by_path(articles) == feeds_by_path(list(reversed(articles)))


# Small pools, so that copies of one story, ties in date and shared topics are common.
_stories = st.builds(
    lambda n, url, day, quality, topics, domain: make(
        n, quality=quality, topics=topics, domain=domain, url=f"https://x.example/{url}", day=day
    ),
    n=st.integers(0, 999),
    url=st.integers(0, 5),
    day=st.integers(1, 4),
    quality=st.sampled_from([None, 30.0, 50.0, 70.0]),
    topics=st.lists(st.sampled_from(["AI", "ai", "Robots", "Law"]), max_size=3),
    domain=st.sampled_from(["a.com", "b.com", "c.com"]),
)


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(_stories, max_size=12),
    steps=st.lists(
        st.tuples(st.lists(_stories, max_size=3), st.lists(st.integers(0, 99))), max_size=6
    ),
)
def test_a_selection_updated_step_by_step_makes_the_feeds_select_makes_from_scratch(first, steps):
    extra = (
        "quality: {min: 40, missing: exclude, topics: {law: 60}}\n"
        "feeds: {providers: {min_articles: 2}}"
    )
    live = Selection(config(extra))
    live.update(added=first)
    current = list(first)
    before = {f.spec.path: f for f in live.feeds()}
    for added, picks in steps:
        removed = [current[i % len(current)] for i in set(picks)] if current else []
        removed = list({id(a): a for a in removed}.values())
        current = [a for a in current if all(a is not r for r in removed)] + added
        live.update(added=added, removed=removed)
        got = live.feeds()
        assert got == select(current, config(extra))
        # Feeds nothing touched stay the same objects, so their rendering is reused.
        touched = {k for a in (*added, *removed) for k in _paths(a)}
        for feed in got:
            if feed.spec.path not in touched and feed.spec.path in before:
                assert feed is before[feed.spec.path]
        before = {f.spec.path: f for f in got}


def _paths(article: Article) -> set[str]:
    return {"all", f"providers/{article.provider.domain}"} | {
        f"topics/{t.lower()}" for t in article.topics
    }
