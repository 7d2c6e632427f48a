"""The word index answers ``q`` exactly as the plain scan of a feed does."""

import dataclasses
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.filters import ItemFilter
from feeds.search import WordIndex
from feeds.select import select

from .test_select import config, make

# Letters that casefold to more than one (ß, ﬁ, İ), accents composed and not, final
# sigma, and whitespace that is not a space (no-break, em, ideographic, newline).
PIECES = ["chip", "Chips", "STARTUP", "straße", "STRASSE", "ﬁle", "İstanbul", "café"]
PIECES += ["cafe\u0301", "ΣΟΦΟΣ", "σοφος", "a", "e", "-", ".", "x1", "ai"]
SPACES = [" ", "  ", "\u00a0", "\u2003", "\u3000", "\n", ""]
text = st.lists(st.sampled_from(PIECES + SPACES), max_size=8).map("".join)
words = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), min_size=1, max_size=3)


CONFIG = config("quality: {missing: include, topics: {chips: 30}}")


@st.composite
def stories(draw):
    """Articles with texts built of PIECES, in a few topics and providers, some copies of
    one story (which the feeds dedupe) and equal dates."""
    count = draw(st.integers(1, 25))
    articles = []
    for n in range(1, count + 1):
        article = make(
            n,
            quality=draw(st.sampled_from([None, 10.0, 60.0])),
            topics=draw(st.lists(st.sampled_from(["AI", "Chips", "Robots"]), unique=True)),
            domain=draw(st.sampled_from(["a.com", "b.com"])),
            url=f"https://news.example.com/{draw(st.integers(1, count))}",
            day=draw(st.integers(1, 5)),
        )
        articles.append(dataclasses.replace(article, title=draw(text), excerpt=draw(text)))
    return articles


@settings(max_examples=50, deadline=None)
@given(stories(), words, st.sampled_from([None, "1", "3"]), st.sampled_from([None, "50"]))
def test_the_index_answers_as_the_scan_does(articles, query, limit, min_quality):
    args = {"q": " ".join(query)}
    if not args["q"].split():
        return  # refused with a 400 before any search
    args |= {"limit": limit, "min_quality": min_quality}
    feeds = select(articles, CONFIG)
    index = WordIndex(feeds)
    for feed in feeds:
        item_filter = ItemFilter.from_args({k: v for k, v in args.items() if v}, feed.spec.kind)
        assert item_filter is not None
        expected = item_filter.apply(feed.items, 4)
        assert index.apply(item_filter, feed, 4) == expected, feed.spec.path


def test_a_rare_word_is_found_among_many_articles_and_the_index_stays_small():
    articles = [
        dataclasses.replace(
            make(n % 28 + 1, topics=[f"T{n % 7}"], url=f"https://e.com/{n}"),
            source=f"{n}.md",
            title=f"Story {n} about chips and robots",
            excerpt=f"Words w{n % 1000} and v{n % 300} and startup{n}",
        )
        for n in range(5_000)
    ]
    feeds = select(articles, config())
    tracemalloc.start()
    try:
        index = WordIndex(feeds)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Per article: 8 tokens' numbers, its feed memberships, its rare word's text.
    assert size < 150 * len(articles)
    everything = next(feed for feed in feeds if feed.spec.kind == "all")
    item_filter = ItemFilter.from_args({"q": "STARTUP1234 chips"}, "all")
    assert item_filter is not None
    found = index.apply(item_filter, everything, 50)
    assert [a.title for a in found] == ["Story 1234 about chips and robots"]
    assert found == item_filter.apply(everything.items, 50)
