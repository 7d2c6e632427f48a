"""feeds.publisher: config and article files become a snapshot of rendered files. Rebuilds
reuse what did not change (parsed files, rendered documents) and are never stale: every
rebuild gives the bytes a fresh build of the same files gives."""

from __future__ import annotations

import pytest

from feeds.errors import ConfigError
from feeds.publisher import Publisher, Snapshot, public_urls

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
    # Article 5: topic 2, provider news1; its feeds in three formats and their pages. The
    # lists of feeds (index, OPML) show the same counts and dates: not rendered again.
    feeds = ["all", "topics/topic-2", "providers/news1.example.com"]
    expected = {f"{f}.{ext}" for f in feeds for ext in ("rss", "atom", "json", "html")}
    assert changed == expected
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


def test_a_snapshot_holds_every_feed_in_every_format_its_pages_and_what_was_skipped(news: Site):
    news.write("broken.md", raw="---\ntitle: [unclosed\n---\n")
    snapshot = Publisher(news.config_path).build()

    assert snapshot.articles == 12
    assert [p.source for p in snapshot.problems] == [str(news.articles / "broken.md")]
    feeds = ["all", *(f"topics/topic-{n}" for n in range(3))]
    feeds += [f"providers/news{n}.example.com" for n in range(4)]
    expected = {f"{f}.{ext}" for f in feeds for ext in ("rss", "atom", "json", "html")}
    lists = {"index.html", "providers.html", "providers.tsv", "feeds.opml", "topics.opml"}
    lists.add("providers.opml")
    assert set(snapshot.files) == expected | lists | {"feeds.css", "feeds.js"}


def test_a_one_off_build_that_keeps_nothing_gives_the_same_files(news: Site):
    kept = Publisher(news.config_path).build()
    lazy = Publisher(news.config_path).build(keep=False)
    assert set(lazy.files) == set(kept.files)
    assert {p: lazy.files[p].body for p in lazy.files} == bodies(kept)


def test_a_bad_config_is_refused_before_any_file_is_read(news: Site):
    news.config_path.write_text("site: {title: T}\nfeeds: {items: many}\n", encoding="utf-8")
    publisher = Publisher(news.config_path)
    with pytest.raises(ConfigError) as refused:
        publisher.build()
    assert {p.message.split(":")[0] for p in refused.value.problems} >= {"feeds.items"}
    assert publisher.cache.trusted() == {}


def test_the_inputs_fingerprint_changes_with_the_files_and_only_then(news: Site):
    publisher = Publisher(news.config_path)
    before = publisher.inputs()
    assert publisher.inputs() == before
    news.write("05.md", story(5, title="Edited"))
    edited = publisher.inputs()
    assert edited != before
    news.configure(site={"title": "Renamed", "base_url": BASE_URL})
    assert publisher.inputs() != edited


def test_a_build_told_what_changed_reads_only_that(news: Site):
    publisher = Publisher(news.config_path)
    publisher.build()
    news.write("05.md", story(5, title="Edited"))
    news.write("06.md", story(6, title="Not looked at"))
    rebuilt = publisher.build(changed={str(news.articles / "05.md")})
    assert b"Edited" in rebuilt.files["all.rss"].body
    assert b"Not looked at" not in rebuilt.files["all.rss"].body


def test_feed_urls_are_the_public_urls_of_feeds_not_pages(news: Site):
    snapshot = Publisher(news.config_path).build()
    urls = public_urls(
        snapshot.config, ["all.rss", "all.html", "index.html", "topics/topic-1.json"]
    )
    assert urls == [BASE_URL + "all.rss", BASE_URL + "topics/topic-1.json"]
