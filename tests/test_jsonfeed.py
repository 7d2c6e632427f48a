"""JSON Feed: the same items as RSS and Atom, as JSON."""

import json

import feedparser

from .conftest import BASE_URL, article


def test_json_feed_has_the_same_items(site):
    site.write("1.md", article(n=1, topics=["AI", "Robots"]))
    site.write("2.md", article(n=2, quality=None))
    files = site.build().files
    feed = json.loads(files["all.json"].body)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == BASE_URL + "all.json"
    assert files["all.json"].media_type == "application/feed+json"
    rss = feedparser.parse(files["all.rss"].body)
    assert [i["id"] for i in feed["items"]] == [e.id for e in rss.entries]
    older = feed["items"][1]
    assert older["date_published"] == "2023-06-01T10:00:00Z"
    assert older["authors"] == [{"name": "Example News", "url": "https://example.com/"}]
    assert older["tags"] == ["AI", "Robots"]
    assert older["image"] == "https://img.example.com/1.jpg"
    assert older["summary"] == "What happened in story 1."
