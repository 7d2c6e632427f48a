"""The rendered files `feeds serve` keeps on disk, and the start they make fast."""

from __future__ import annotations

import logging
import os
import shutil
import time

import pytest

from feeds import config as config_module
from feeds.model import Rendered
from feeds.publisher import Publisher
from feeds.render import etag
from feeds.store import STALE_TEMP, STORE, Missing, Store
from feeds.web import create_app

from .conftest import FIRST, SECOND, Site, article

LOAD_TIMEOUT = 20.0  # seconds a test waits for a server to load or heal


def rendered(path: str, body: bytes) -> Rendered:
    return Rendered(path, "application/rss+xml", body, etag(body))


def until(condition, timeout: float = LOAD_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return result


@pytest.fixture
def two(site: Site) -> Site:
    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    return site


# --- the store ---------------------------------------------------------------------------


def test_a_body_is_kept_once_by_its_etag_and_read_back(tmp_path):
    store = Store(tmp_path / STORE)
    a = store.put(rendered("a.rss", b"<rss/>"))
    b = store.put(rendered("b.rss", b"<rss/>"))  # the same bytes at another path

    assert (a.path, b.path) == ("a.rss", "b.rss")
    assert a.body == b.body == b"<rss/>"
    assert len([p for p in (tmp_path / STORE).rglob("*") if p.is_file()]) == 1
    assert store.put(a) is a


def test_collect_removes_only_the_bodies_no_snapshot_uses(tmp_path):
    store = Store(tmp_path / STORE)
    old = store.put(rendered("a.rss", b"old"))
    new = store.put(rendered("a.rss", b"new"))
    gone = store.put(rendered("b.rss", b"gone"))

    assert store.collect({"a.rss": new}, {"a.rss": old}) == 1

    assert (new.body, old.body) == (b"new", b"old")
    with pytest.raises(Missing):
        gone.body  # noqa: B018  # reading it is the point


def test_collect_removes_the_temp_files_of_a_killed_writer_only_once_stale(tmp_path):
    store = Store(tmp_path / STORE)
    kept = store.put(rendered("a.rss", b"kept"))
    shard = kept.source.parent
    left, writing = shard / ".tmp-left.tmp", shard / ".tmp-writing.tmp"
    left.write_bytes(b"half a bo")
    writing.write_bytes(b"being writ")
    past = time.time() - STALE_TEMP - 60
    os.utime(left, (past, past))

    assert store.collect({"a.rss": kept}) == 0

    assert not left.exists() and writing.exists() and kept.body == b"kept"


def test_an_index_is_loaded_only_for_the_config_it_was_saved_with(two: Site):
    config = config_module.load(two.config_path)
    store = Store(two.root / STORE)
    files = {"all.rss": store.put(rendered("all.rss", b"<rss/>"))}
    store.save(config, files, {}, {"all": (b"\x01" * 16, ["all.rss"])})

    kept = store.load(config)
    assert kept is not None
    assert kept.files["all.rss"].body == b"<rss/>"
    assert kept.docs == {"all": (b"\x01" * 16, [kept.files["all.rss"]])}

    two.configure(feeds={"items": 7})
    assert store.load(config_module.load(two.config_path)) is None


def test_saving_removes_the_index_an_earlier_version_left(two: Site):
    """Versions before the incremental build kept a JSON index (megabytes at 100,000
    articles) that nothing reads any more."""
    config = config_module.load(two.config_path)
    store = Store(two.root / STORE)
    files = {"all.rss": store.put(rendered("all.rss", b"<rss/>"))}
    (store.folder / "index.json").write_text("{}")
    store.save(config, files, {}, {})
    assert sorted(p.name for p in store.folder.iterdir() if p.is_file()) == ["index"]


# --- a server that starts again ------------------------------------------------------------


def test_a_restart_serves_the_last_runs_feeds_while_the_articles_cannot_be_read(two: Site):
    first = create_app(two.config_path).test_client()
    before = {path: first.get(path) for path in ("/all.rss", "/all.atom", "/index.html")}
    shutil.rmtree(two.articles)  # say, a volume not mounted yet: the load fails and retries

    client = create_app(two.config_path, background=True).test_client()

    for path, response in before.items():
        again = client.get(path)
        assert again.status_code == 200
        assert again.data == response.data
        assert again.headers["ETag"] == response.headers["ETag"]
        assert again.headers["Last-Modified"] == response.headers["Last-Modified"]
    assert client.get("/healthz").status_code == 200
    # No articles to filter until the feeds are loaded: never the unfiltered feed instead.
    refused = client.get("/all.rss?q=first")
    assert refused.status_code == 503 and "Retry-After" in refused.headers


def test_a_restart_with_another_config_serves_nothing_until_it_has_loaded(two: Site):
    create_app(two.config_path).test_client().get("/all.rss")
    shutil.rmtree(two.articles)
    two.configure(feeds={"items": 7})

    client = create_app(two.config_path, background=True).test_client()

    assert client.get("/all.rss").status_code == 503
    assert client.get("/healthz").status_code == 503


def test_a_restart_renders_only_the_documents_that_changed_meanwhile(two: Site, caplog):
    create_app(two.config_path).test_client().get("/all.rss")
    other = {"name": "Other News", "domain": "other.example"}
    two.write("third.md", article(n=3, title="Third story", topics=["Robots"], provider=other))

    with caplog.at_level(logging.INFO, logger="feeds.publisher"):
        client = create_app(two.config_path).test_client()

    rendered_counts = [r.args for r in caplog.records if r.msg.startswith("rendered %d of")]
    assert rendered_counts, caplog.text
    done, total = rendered_counts[-1]
    assert 0 < done < total  # the AI topic and example.com are as they were
    assert b"Third story" in client.get("/all.rss").data
    assert b"Third story" in client.get("/topics/robots.rss").data
    # The same bytes as a server that rendered everything afresh.
    fresh = Publisher(two.config_path).build()
    for path, file in fresh.files.items():
        assert client.get(f"/{path}" if path != "index.html" else "/").data == file.body


def test_stored_files_removed_under_the_server_are_rendered_again(two: Site):
    client = create_app(two.config_path).test_client()
    expected = client.get("/all.atom").data
    shutil.rmtree(two.output / STORE)

    refused = client.get("/all.json")  # not asked for before: its body was on disk only
    assert refused.status_code == 503 and "Retry-After" in refused.headers
    assert client.get("/all.atom").data == expected  # answered from memory meanwhile

    until(lambda: client.get("/all.json").status_code == 200)
    until(lambda: client.get("/all.json?_=1").status_code == 200)
