"""`feeds build` and `feeds serve` start from what the last run of either kept in the output
folder, and a build writes only what changed, as links to the stored bodies."""

from __future__ import annotations

import logging
import re
import shutil

import feedparser

from feeds import config as config_module
from feeds import store as store_module
from feeds.errors import OutputError
from feeds.store import STORE, Store
from feeds.web import create_app

from .conftest import Site, story


def exported(site: Site) -> dict[str, bytes]:
    """The files a reader can fetch from the export, by path."""
    return {
        p.relative_to(site.output).as_posix(): p.read_bytes()
        for p in site.output.rglob("*")
        if p.is_file() and not p.name.startswith(".") and STORE not in p.parts
    }


def rendered(caplog) -> tuple[int, int]:
    """(documents rendered, documents) of the last build logged."""
    counts = [r.args for r in caplog.records if r.msg.startswith("rendered %d of")]
    assert counts, caplog.text
    return counts[-1]


def test_a_build_after_one_edit_renders_and_writes_only_what_changed(news: Site, runner, caplog):
    assert runner("build").exit_code == 0
    before = exported(news)
    news.write("05.md", story(5, title="Edited since the last build"))

    with caplog.at_level(logging.INFO, logger="feeds"):
        result = runner("build")

    assert result.exit_code == 0, result.output
    done, total = rendered(caplog)
    assert 0 < done < total  # the feeds 05.md is not in were not rendered again
    after = exported(news)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed and len(changed) < len(after)
    assert f"{len(changed)} files written, {len(after) - len(changed)} unchanged" in result.stdout
    titles = [e.title for e in feedparser.parse(after["all.rss"]).entries]
    assert "Edited since the last build" in titles
    assert after == {path: file.body for path, file in news.build().files.items()}


def test_exported_files_are_links_to_the_stored_bodies(news: Site, runner, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    assert runner("build").exit_code == 0
    assert runner("build", "--output", str(elsewhere)).exit_code == 0

    kept = Store(news.output / STORE).load(config_module.load(news.config_path))
    assert kept is not None and kept.files
    for path, file in kept.files.items():
        body = file.source.stat()
        for folder in (news.output, elsewhere):  # the store stays in output.folder
            exported = (folder / path).stat()
            assert (exported.st_ino, exported.st_dev) == (body.st_ino, body.st_dev), path
            assert (folder / path).read_bytes() == file.body
    assert not (elsewhere / STORE).exists()


def test_a_server_started_after_a_build_serves_its_files_at_once(news: Site, runner):
    assert runner("build").exit_code == 0
    built = exported(news)
    shutil.rmtree(news.articles)  # the server cannot load: only the build's files serve

    client = create_app(news.config_path, background=True).test_client()

    for path in ("all.rss", "topics/topic-1.atom", "index.html"):
        answer = client.get("/" + path)
        assert answer.status_code == 200, path
        assert answer.data == built[path]


def test_a_build_after_a_server_renders_nothing_again(news: Site, runner, caplog):
    served = create_app(news.config_path).test_client().get("/all.rss").data

    with caplog.at_level(logging.INFO, logger="feeds.publisher"):
        result = runner("build")

    assert result.exit_code == 0, result.output
    assert rendered(caplog)[0] == 0
    assert exported(news)["all.rss"] == served


def test_a_store_kept_for_another_config_or_version_is_not_used(
    news: Site, runner, caplog, monkeypatch
):
    assert runner("build").exit_code == 0
    news.configure(feeds={"items": 3})
    with caplog.at_level(logging.INFO, logger="feeds.publisher"):
        assert runner("build").exit_code == 0
    done, total = rendered(caplog)
    assert done == total
    assert len(feedparser.parse(exported(news)["all.rss"]).entries) == 3

    monkeypatch.setattr(store_module, "_code", lambda: "another version of the code")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds.publisher"):
        result = runner("build")
    assert rendered(caplog)[0] == total
    assert re.search(r"0 files written, \d+ unchanged", result.stdout)


def test_a_build_whose_store_cannot_be_written_exports_all_the_same(
    news: Site, runner, tmp_path, monkeypatch
):
    def refused(self, file):
        raise OutputError(f"{self.folder}: cannot write the feeds: Read-only file system")

    monkeypatch.setattr(Store, "put", refused)
    elsewhere = tmp_path / "elsewhere"

    result = runner("build", "--output", str(elsewhere))

    assert result.exit_code == 0, result.output
    assert (elsewhere / "all.rss").read_bytes() == news.feed("all.rss")
