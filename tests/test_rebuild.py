"""Rebuilds reuse what did not change (parsed files, rendered documents) and are never
stale: every rebuild gives the bytes a fresh build of the same files gives."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest

from feeds import articles, cache
from feeds.articles import ArticleCache, find
from feeds.cache import CACHE_FILE
from feeds.publisher import Publisher, Snapshot

from .conftest import BASE_URL, CORPUS, ROOT, Site, article


def bodies(snapshot: Snapshot) -> dict[str, bytes]:
    return {path: r.body for path, r in snapshot.files.items()}


def fresh(site: Site) -> dict[str, bytes]:
    return bodies(Publisher(site.config_path).build())


@pytest.fixture
def news(site: Site, monkeypatch) -> Site:
    """Twelve articles over three topics and four providers, written "long ago": the parse
    cache trusts a file's stamp only once it is a few seconds old."""
    monkeypatch.setattr(articles, "SETTLED_NS", 0)
    for n in range(12):
        site.write(f"{n:02d}.md", story(n))
    return site


def story(n: int, **fields) -> dict:
    shape = {
        "topics": [f"Topic {n % 3}"],
        "provider": {"name": f"News {n % 4}", "domain": f"news{n % 4}.example.com"},
    }
    return article(n=n + 1, **{**shape, **fields})


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


def test_a_file_rewritten_within_the_same_clock_tick_is_read_again(site: Site):
    """File times tick coarsely: a rewrite of the same size right after a build can leave
    the stamp unchanged. Until a file is a few seconds old its stamp is not trusted."""
    site.write("a.md", article(title="First version"))
    publisher = Publisher(site.config_path)
    assert b"First version" in publisher.build().files["all.rss"].body
    path = site.articles / "a.md"
    stat = path.stat()
    path.write_text(path.read_text().replace("First", "Other"))
    assert path.stat().st_size == stat.st_size

    assert b"Other version" in publisher.build().files["all.rss"].body


# `feeds build` keeps the parse cache in the output folder ---------------------------------


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The article files parsed, in order."""
    done: list[str] = []
    read = articles.read

    def counting(path):
        done.append(Path(path).name)
        return read(path)

    monkeypatch.setattr(articles, "read", counting)
    return done


def test_a_second_build_parses_only_the_changed_files(news: Site, runner, reads):
    assert runner("build").exit_code == 0
    assert len(reads) == 12 and (news.output / CACHE_FILE).is_file()
    reads.clear()
    news.write("03.md", story(3, title="Edited in between"))
    (news.articles / "07.md").unlink()

    assert runner("build").exit_code == 0

    assert reads == ["03.md"]
    assert written(news.output) == fresh(news)
    assert b"Edited in between" in (news.output / "all.rss").read_bytes()


def test_the_cache_file_is_written_only_when_what_was_parsed_changed(news: Site, runner, reads):
    assert runner("build").exit_code == 0
    cache_file = news.output / CACHE_FILE
    first = os.stat(cache_file)

    assert runner("build").exit_code == 0  # nothing changed: the file is not even rewritten
    again = os.stat(cache_file)
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    cache_file.unlink()
    assert runner("build").exit_code == 0
    assert cache_file.is_file()
    first = os.stat(cache_file)

    (news.articles / "07.md").unlink()  # a file gone is a change too
    assert runner("build").exit_code == 0
    assert os.stat(cache_file).st_ino != first.st_ino
    reads.clear()
    news.write("03.md", story(3, title="Edited in between"))
    assert runner("build").exit_code == 0
    reads.clear()
    assert runner("build").exit_code == 0
    assert reads == []  # the edit went into the saved cache
    assert b"Edited in between" in (news.output / "all.rss").read_bytes()


def test_a_broken_or_foreign_cache_is_ignored(news: Site, runner, reads):
    assert runner("build").exit_code == 0
    cache_file = news.output / CACHE_FILE
    whole = cache_file.read_bytes()
    damages = (b"not marshal data", marshal.dumps(("another version", [])), b"", whole[:-9])
    for damage in damages:
        cache_file.write_bytes(damage)
        reads.clear()
        result = runner("build")
        assert result.exit_code == 0, result.output
        assert len(reads) == 12  # read again, with the same result
        assert written(news.output) == fresh(news)


def test_cached_articles_render_byte_for_byte_like_parsed_ones(tmp_path):
    """Every field survives the cache: the seeds and the real corpus, where it is here."""
    folders = [ROOT / "seeds", *[CORPUS] * CORPUS.is_dir()]
    parsed = ArticleCache()
    for folder in folders:
        parsed.load(find(folder, ["*.md", "*.txt"])[0])
    cache.save(parsed, tmp_path)
    restored = ArticleCache()
    assert cache.restore(restored, tmp_path) == len(parsed.settled()) > 0
    assert restored.settled() == parsed.settled()


def written(output: Path) -> dict[str, bytes]:
    return {
        p.relative_to(output).as_posix(): p.read_bytes()
        for p in output.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
