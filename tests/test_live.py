"""Live reload: the feeds served follow the files, and a bad change keeps the last good ones."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime, timedelta

from feeds import live, parsecache
from feeds.articles import read as real_read
from feeds.web import create_app

from .conftest import FIRST, SECOND, THIRD, article, story, titles

# --- live reload -------------------------------------------------------------------------


def test_an_added_article_is_served_after_a_refresh(site, app, client):
    old = client.get("/all.rss")
    site.write("third.md", article(n=3, title=THIRD))

    assert app.extensions["feeds"].refresh() is True

    new = client.get("/all.rss")
    assert titles(new.data) == [THIRD, SECOND, FIRST]
    assert new.headers["ETag"] != old.headers["ETag"]
    assert new.data == site.feed("all.rss")
    # A reader holding the old ETag gets the new feed, not a 304.
    again = client.get("/all.rss", headers={"If-None-Match": old.headers["ETag"]})
    assert again.status_code == 200
    assert titles(again.data) == [THIRD, SECOND, FIRST]


def test_a_removed_article_leaves_the_feeds_after_a_refresh(site, app, client):
    old = client.get("/all.atom")
    (site.articles / "first.md").unlink()

    assert app.extensions["feeds"].refresh() is True

    new = client.get("/all.atom")
    assert titles(new.data) == [SECOND]
    assert new.headers["ETag"] != old.headers["ETag"]


def test_an_unchanged_tree_is_not_rebuilt(app, client):
    before = client.get("/all.rss")

    assert app.extensions["feeds"].refresh() is False

    after = client.get("/all.rss")
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]
    assert after.data == before.data


def test_a_feed_that_did_not_change_keeps_its_validators(site, app, client):
    site.write("third.md", article(n=3, title=THIRD, topics=["Chips"]))
    before = client.get("/topics/ai.rss")

    assert app.extensions["feeds"].refresh() is True

    after = client.get("/topics/ai.rss", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 304
    assert client.get("/topics/chips.rss").status_code == 200


def test_a_reader_using_only_if_modified_since_sees_a_rebuilt_feed(site, app, client):
    last_modified = client.get("/all.rss").headers["Last-Modified"]
    site.write("third.md", article(n=3, title=THIRD))
    assert app.extensions["feeds"].refresh() is True

    response = client.get("/all.rss", headers={"If-Modified-Since": last_modified})

    assert response.status_code == 200
    assert titles(response.data) == [THIRD, SECOND, FIRST]


def test_the_server_picks_up_changes_by_itself(site):
    site.configure(serve={"reload_interval": 0})
    site.write("first.md", article(n=1, title=FIRST))
    client = create_app(site.config_path).test_client()
    assert titles(client.get("/all.rss").data) == [FIRST]

    site.write("second.md", article(n=2, title=SECOND))

    deadline = time.monotonic() + 5
    while True:
        found = titles(client.get("/all.rss").data)
        if found == [SECOND, FIRST] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found == [SECOND, FIRST]


# --- config errors while serving ----------------------------------------------------------


def test_a_config_broken_while_serving_keeps_the_last_good_feeds(site, app, client, caplog):
    before = client.get("/all.rss")
    site.configure(quality={"min": "high"})

    assert app.extensions["feeds"].refresh() is False

    after = client.get("/all.rss")
    assert after.status_code == 200
    assert after.data == before.data
    assert after.headers["ETag"] == before.headers["ETag"]
    assert "quality.min" in caplog.text


def test_a_config_fixed_while_serving_is_picked_up(site, app, client):
    site.write("third.md", article(n=3, title=THIRD, quality=70))
    site.configure(quality={"min": "high"})
    app.extensions["feeds"].refresh()

    site.configure(quality={"min": 60})

    assert app.extensions["feeds"].refresh() is True
    assert titles(client.get("/all.rss").data) == [THIRD]


# --- validators ----------------------------------------------------------------------------


def test_two_servers_started_apart_give_the_same_validators(site, monkeypatch):
    """Replicas, or one server before and after a restart, agree: a reader's conditional
    request made with one's validators gets a 304 from the other."""
    site.configure(feeds={"items": 2})  # and archive pages
    for n in range(1, 6):
        site.write(f"{n}.md", article(n=n))
    app = create_app(site.config_path)
    client = app.test_client()
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    monkeypatch.setattr(live, "_now", lambda: later)
    other = create_app(site.config_path).test_client()
    paths = list(app.extensions["feeds"].current().snapshot.files)
    assert {"index.html", "feeds.opml", "all.rss", "all/archive/1.atom", "topics/ai.html"} <= {
        *paths
    }
    for path in paths:
        mine, theirs = client.get(f"/{path}"), other.get(f"/{path}")
        for name in ("ETag", "Last-Modified"):
            assert mine.headers[name] == theirs.headers[name], (path, name)
        for condition in ("If-None-Match", "ETag"), ("If-Modified-Since", "Last-Modified"):
            response = other.get(f"/{path}", headers={condition[0]: mine.headers[condition[1]]})
            assert response.status_code == 304, (path, condition)


def test_last_modified_is_the_date_of_the_newest_item(site, client):
    newest = "Fri, 02 Jun 2023 10:00:00 GMT"  # SECOND's publishedDateTime
    for path in ("/all.atom", "/topics/ai.rss", "/topics/ai.html", "/", "/feeds.opml"):
        assert client.get(path).headers["Last-Modified"] == newest, path


def test_an_item_dated_ahead_is_served_as_modified_now_at_the_latest(site):
    site.write("ahead.md", article(n=3, publishedDateTime="2090-01-01T00:00:00Z"))
    response = create_app(site.config_path).test_client().get("/all.rss")
    modified = email.utils.parsedate_to_datetime(response.headers["Last-Modified"])
    assert modified <= datetime.now(UTC)


# --- restart -----------------------------------------------------------------------------


def test_a_restarted_server_reads_only_the_article_files_that_changed(news, monkeypatch):
    """The parse cache is kept in the output folder, where `feeds build` keeps it too."""
    first = create_app(news.config_path)
    assert (news.output / ".feeds-cache").is_file()
    news.write("05.md", story(5, title="Edited while it was down"))
    del first

    read = []
    monkeypatch.setattr(parsecache, "read", lambda path: read.append(path) or real_read(path))
    restarted = create_app(news.config_path).test_client()

    assert read == [str(news.articles / "05.md")]
    assert b"Edited while it was down" in restarted.get("/all.rss").data
    assert restarted.get("/all.rss").data == news.feed("all.rss")
