"""Rebuilds reuse what did not change (parsed files, rendered documents) and are never
stale: every rebuild gives the bytes a fresh build of the same files gives."""

from __future__ import annotations

from feeds.publisher import Publisher, Snapshot

from .conftest import BASE_URL, Site, story


def bodies(snapshot: Snapshot) -> dict[str, bytes]:
    return {path: r.body for path, r in snapshot.files.items()}


def fresh(site: Site) -> dict[str, bytes]:
    return bodies(Publisher(site.config_path).build())


def test_an_edit_rerenders_only_the_feeds_that_hold_the_article(news: Site):
    publisher = Publisher(news.config_path)
    before = publisher.build()
    news.write("05.md", story(5, title="Edited title"))

    after = publisher.build()

    assert bodies(after) == fresh(news)
    changed = {p for p in after.files if after.files[p] is not before.files[p]}
    # Article 5: topic 2, provider news1; its feeds in three formats and their pages,
    # and the index and OPML, which are always rendered.
    feeds = ["all", "topics/topic-2", "providers/news1.example.com"]
    expected = {f"{f}.{ext}" for f in feeds for ext in ("rss", "atom", "json", "html")}
    assert changed == expected | {"index.html", "feeds.opml"}
    assert b"Edited title" in after.files["topics/topic-2.rss"].body


def test_added_and_deleted_articles_and_a_config_edit_are_never_stale(news: Site):
    publisher = Publisher(news.config_path)
    publisher.build()
    news.write("new.md", story(20, topics=["Brand new"]))
    (news.articles / "00.md").unlink()
    assert bodies(publisher.build()) == fresh(news)

    news.configure(site={"title": "Renamed", "base_url": BASE_URL})
    rebuilt = publisher.build()
    assert bodies(rebuilt) == fresh(news)
    assert all(b"Renamed" in r.body for p, r in rebuilt.files.items() if p.endswith(".rss"))
