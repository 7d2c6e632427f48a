import pytest

from feeds.filters import MAX_LIMIT, InvalidFilter, ItemFilter

from .test_select import make


def titles(args: dict, kind="all", items=None):
    items = items or [
        make(1, quality=10, topics=["AI", "Robots"]),
        make(2, quality=90, topics=["AI"], domain="cnn.com"),
        make(3, quality=None, topics=["AI in Healthcare"], domain="cnn.com"),
    ]
    f = ItemFilter.from_args(args, kind)
    return [a.title for a in f.apply(sorted(items, key=lambda a: -a.published.timestamp()), 50)]


def test_no_filter_parameters_mean_no_filter():
    assert ItemFilter.from_args({"utm_source": "x", "_": "123"}, "all") is None


def test_each_filter():
    assert titles({"limit": "1"}) == ["Story 3"]
    assert titles({"min_quality": "50"}) == ["Story 2"]  # no quality never passes
    assert titles({"topic": "robots"}, "provider") == ["Story 1"]
    assert titles({"topic": "AI in Healthcare"}) == ["Story 3"]
    assert titles({"provider": "WWW.CNN.COM"}, "topic") == ["Story 3", "Story 2"]
    assert titles({"q": "STORY 2"}) == ["Story 2"]  # every word, any case
    assert titles({"q": "story"}) == ["Story 3", "Story 2", "Story 1"]
    assert titles({"q": ".*"}) == []  # words, never patterns


@pytest.mark.parametrize(
    ("args", "kind", "message"),
    [
        ({"limit": "0"}, "all", "limit: expected a whole number"),
        ({"limit": str(MAX_LIMIT + 1)}, "all", "limit"),
        ({"limit": "ten"}, "all", "limit"),
        ({"min_quality": "high"}, "all", "min_quality: expected a number"),
        ({"min_quality": "nan"}, "all", "min_quality"),
        ({"topic": "ai"}, "topic", "topic: a topic feed is one topic already"),
        ({"provider": "cnn.com"}, "provider", "provider: a provider feed"),
        ({"provider": "../../etc"}, "all", "provider: expected a domain name"),
        ({"q": "   "}, "all", "q: expected one or more words"),
        ({"q": " ".join(f"w{i}" for i in range(11))}, "all", "q: at most 10 words"),
        ({"q": "x" * 201}, "all", "q: longer than 200 characters"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(args, kind, message):
    with pytest.raises(InvalidFilter, match=message):
        ItemFilter.from_args(args, kind)
