"""Rebuilds that look only at the files the kernel says changed: they must publish exactly
what a build that looks at every file publishes, whatever happens to the files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feeds import parsecache, watch
from feeds.parsecache import ArticleCache
from feeds.publisher import Publisher
from feeds.rebuild import Rebuilder
from feeds.watch import Watcher
from feeds.web import create_app

from .conftest import Site, article, started, titles

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs Linux")
STOPS = [signal.SIGINT, signal.SIGTERM]  # how `feeds build --watch` is stopped


@pytest.fixture(scope="module", autouse=True)
def aged_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Site]:
    """A site with two articles for each of STOPS, written as this module starts: the parse
    cache keeps a file once it is TRUST_AFTER_NS old by its ctime, which nothing can set
    back, so the module's other tests run while they age instead of a sleep."""
    sites = {}
    for stop in STOPS:
        site = sites[stop] = Site(tmp_path_factory.mktemp("aged"))
        site.configure()
        for n in (1, 2):
            site.write(f"{n}.md", article(n=n, title=f"Story {n}"))
    return sites


def test_the_watcher_names_each_file_written_renamed_or_removed(tmp_path):
    (tmp_path / "kept.md").write_text("a")
    (tmp_path / "gone.md").write_text("b")
    watcher = Watcher(tmp_path)

    (tmp_path / "new.md").write_text("c")
    (tmp_path / "kept.md").write_text("changed")
    (tmp_path / "gone.md").unlink()
    os.replace(tmp_path / "new.md", tmp_path / "moved.md")

    assert watcher.changes() == {
        str(tmp_path / n) for n in ("kept.md", "gone.md", "new.md", "moved.md")
    }
    assert watcher.changes() == set()  # each change is told once


def test_a_new_folder_asks_for_a_full_look_and_is_watched_from_then_on(tmp_path):
    watcher = Watcher(tmp_path)
    (tmp_path / "2024").mkdir()
    (tmp_path / "2024" / "a.md").write_text("a")

    assert watcher.changes() is None  # its first files may be written before it is watched

    (tmp_path / "2024" / "b.md").write_text("b")
    assert watcher.changes() == {str(tmp_path / "2024" / "b.md")}


# Things that happen to article files, each as (what, name, text).
_FILES = ["a.md", "b.md", "c.md", "sub/d.md", "notes.txt", ".hidden.md"]
_steps = st.lists(
    st.tuples(
        st.sampled_from(["write", "write bad", "remove", "rename", "link", "retitle", "folder"]),
        st.sampled_from(_FILES),
        st.sampled_from(_FILES),
        st.integers(1, 9),
    ),
    min_size=1,
    max_size=12,
)


# 30 examples a run (it was 60) of up to 12 steps, each step built twice, watched and from
# scratch. A failing example is saved in .hypothesis/ and tried first on the next run, as the
# @example below always is; each run draws new ones.
@settings(max_examples=30, deadline=None)
@given(steps=_steps)
# A link's text changes when its target is written, which the watcher names by the target.
@example(
    steps=[("write", "notes.txt", "", 2), ("link", "c.md", "notes.txt", 0)]
    + [("write", "notes.txt", "", 3)]
)
def test_a_watched_rebuild_publishes_what_a_full_build_publishes(steps):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        # Each step's changes are made before the watcher is asked, so their events are all
        # queued: waiting for a quiet spell after them (20 ms a step) would find none.
        patch.setattr(watch, "QUIET", 0)
        site = Site(Path(tmp))
        site.configure(articles={"folder": "articles", "patterns": ["**/*.md"]})
        site.write("a.md", article(n=1))
        watched = Publisher(site.config_path)
        watcher = Watcher(site.articles)
        watched.build()
        for what, name, other, n in steps:
            _apply(site, what, name, other, n)
            got = watched.build(changed=watcher.changes())
            want = Publisher(site.config_path).build()
            assert {p: r.body for p, r in got.files.items()} == {
                p: r.body for p, r in want.files.items()
            }
            assert got.problems == want.problems
            assert got.articles == want.articles


def test_a_watched_rebuild_after_a_config_change_looks_at_every_file(site):
    site.write("a.md", article(n=1, quality=50))
    publisher = Publisher(site.config_path)
    watcher = Watcher(site.articles)
    publisher.build()
    site.write("b.md", article(n=2, quality=50))
    site.configure(quality={"min": 45})

    got = publisher.build(changed=watcher.changes())

    assert got.articles == 2
    assert got.files == Publisher(site.config_path).build().files


def test_a_removed_articles_folder_is_scanned_for_then_watched_again(site, caplog, monkeypatch):
    site.write("first.md", article(n=1, title="First"))
    rebuilder = Rebuilder(Publisher(site.config_path))
    shutil.rmtree(site.articles)

    assert rebuilder.rebuild() is None  # logged; the caller keeps the last good feeds
    assert "articles.folder: no such folder" in caplog.text
    assert rebuilder.watcher is None

    site.write("second.md", article(n=2, title="Second"))
    snapshot = rebuilder.rebuild()
    assert snapshot is not None and snapshot.articles == 1
    assert titles(snapshot.files["all.rss"].body) == ["Second"]

    # Watched again: a change is built from the file the watcher names, no scan needed.
    assert rebuilder.watcher is not None
    site.write("third.md", article(n=3, title="Third"))

    def scan():
        raise AssertionError("scanned instead of watching")

    monkeypatch.setattr(rebuilder.publisher, "inputs", scan)
    rebuilder.wait(5)
    snapshot = rebuilder.rebuild()
    assert snapshot is not None and titles(snapshot.files["all.rss"].body) == ["Third", "Second"]


def _apply(site: Site, what: str, name: str, other: str, n: int) -> None:
    path, target = site.articles / name, site.articles / other
    path.parent.mkdir(parents=True, exist_ok=True)
    if what.startswith("write") and path.is_symlink():
        path.unlink()  # written through, a link might loop
    if what == "write":
        site.write(name, article(n=n, topics=[f"T{n % 3}"], quality=n * 10))
    elif what == "retitle" and path.is_file():
        text = path.read_text().replace("title:", "title: Retitled", 1)
        path.write_text(text)
    elif what == "write bad":
        site.write(name, raw="---\ntitle: [unclosed\n---\n")
    elif what == "remove" and (path.is_file() or path.is_symlink()):
        path.unlink()
    elif what == "rename" and path.is_file() and not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    elif what == "link" and not path.exists() and not path.is_symlink():
        path.symlink_to(target)  # a link inside the folder, maybe to nothing
    elif what == "folder":
        shutil.rmtree(site.articles / "sub", ignore_errors=True)


def test_a_server_rebuilds_as_a_file_changes_without_waiting_for_reload_interval(site):
    site.configure(serve={"reload_interval": 3600})
    site.write("first.md", article(n=1, title="First"))
    client = create_app(site.config_path).test_client()
    assert titles(client.get("/all.rss").data) == ["First"]

    site.write("second.md", article(n=2, title="Second"))

    deadline = time.monotonic() + 10
    while titles(found := client.get("/all.rss").data) != ["Second", "First"]:
        assert time.monotonic() < deadline, titles(found)
        time.sleep(0.02)


def test_a_server_watches_again_when_a_removed_articles_folder_is_back(site):
    site.configure(serve={"reload_interval": 3600})  # changes seen only by watching
    site.write("first.md", article(n=1, title="First"))
    app = create_app(site.config_path)
    client, live = app.test_client(), app.extensions["feeds"]
    assert titles(client.get("/all.rss").data) == ["First"]

    shutil.rmtree(site.articles)
    _wait_for(lambda: live.reloader.rebuilder.watcher is None)  # the watching thread saw it go
    site.write("second.md", article(n=2, title="Second"))
    assert live.refresh() is True  # a scan, as every reload_interval
    assert titles(live.state.snapshot.files["all.rss"].body) == ["Second"]

    # Followed at once, without waiting for a request (one would start it too late for
    # the WebSub hub, which is told as the feeds change).
    site.write("third.md", article(n=3, title="Third"))
    _wait_for(lambda: titles(live.state.snapshot.files["all.rss"].body) == ["Third", "Second"])
    assert titles(client.get("/all.rss").data) == ["Third", "Second"]


def test_articles_in_a_linked_folder_are_scanned_instead_of_watched(site):
    # The watcher sees changes under the real folder's name, which no pattern takes.
    (site.articles / "store").mkdir()
    (site.articles / "store" / "first.md").write_text(_front(article(n=1, title="First")))
    (site.articles / "linked").symlink_to("store", target_is_directory=True)
    site.configure(articles={"folder": "articles", "patterns": ["linked/*.md"]})
    app = create_app(site.config_path)
    client = app.test_client()
    assert titles(client.get("/all.rss").data) == ["First"]

    (site.articles / "store" / "first.md").write_text(_front(article(n=1, title="Edited")))

    assert app.extensions["feeds"].refresh() is True
    assert titles(client.get("/all.rss").data) == ["Edited"]


def test_build_watch_writes_what_changes(site):
    site.write("first.md", article(n=1, title="First"))
    command = [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build", "--watch"]
    with started(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        # Files are exported in path order: once a provider's feed is there, so is all.rss.
        _wait_for(lambda: b"First" in _read(site.output / "providers" / "example.com.rss"))
        kept = (site.output / "providers" / "example.com.rss").stat().st_mtime_ns
        site.write(
            "second.md", article(n=2, title="Second", provider={"name": "B", "domain": "b.org"})
        )

        _wait_for(lambda: b"Second" in _read(site.output / "providers" / "b.org.rss"))
        assert titles(_read(site.output / "all.rss")) == ["Second", "First"]
        assert titles(_read(site.output / "providers" / "b.org.rss")) == ["Second"]
        # A feed the new article is not in is not written again.
        assert (site.output / "providers" / "example.com.rss").stat().st_mtime_ns == kept

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)  # on a timeout, killed on the way out
    assert process.returncode == 0, output
    assert b"2 stories published" in output


@pytest.mark.parametrize("stop", STOPS)
def test_build_watch_saves_the_files_it_read_when_stopped(aged_sites, stop):
    site = aged_sites[stop]
    # Old enough for the parse cache to keep them (the rest of the wait, if any).
    written = max(p.stat().st_ctime_ns for p in site.articles.iterdir())
    time.sleep(max(0, written + parsecache.TRUST_AFTER_NS - time.time_ns()) / 1e9)
    command = [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build", "--watch"]
    with started(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        _wait_for(lambda: b"Story 2" in _read(site.output / "all.rss"))
        (site.articles / "2.md").unlink()
        _wait_for(lambda: b"Story 2" not in _read(site.output / "all.rss"))
        process.send_signal(stop)
        output, _ = process.communicate(timeout=30)  # on a timeout, killed on the way out
    assert process.returncode == 0, output
    restored = ArticleCache()
    restored.restore(site.output)
    assert [Path(p).name for p in restored.trusted()] == ["1.md"]


def test_build_strict_is_refused_with_watch(site):
    command = [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build"]
    # A process with a time limit: accepted, the options would watch until stopped.
    result = subprocess.run([*command, "--watch", "--strict"], capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"--strict" in result.stderr and b"--watch" in result.stderr
    assert not site.output.exists()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _wait_for(done, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.02)


def _front(fields: dict) -> str:
    return "---\n" + yaml.safe_dump(fields) + "---\n"
