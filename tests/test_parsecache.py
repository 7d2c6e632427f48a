"""The parse cache: a file is read again only when it changed, and `feeds build` keeps
what it parsed in the output folder, where a broken or foreign cache file is ignored."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from feeds import body, incremental, parsecache
from feeds.articles import read
from feeds.errors import Problem
from feeds.files import find
from feeds.model import Article
from feeds.parsecache import CACHE_FILE, ArticleCache
from feeds.publisher import Publisher
from feeds.reuse import digest
from feeds.store import STORE

from .conftest import CORPUS, ROOT, Site, article, story
from .test_publisher import fresh


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


@pytest.fixture(autouse=True)
def whole_builds(monkeypatch) -> None:
    """Every `feeds build` here a whole one, which reads the files through the parse cache
    (an incremental one reads only the changed files, without it: tests/test_incremental.py)."""
    monkeypatch.setattr(incremental, "build", lambda config, folder: None)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The article files parsed, in order."""
    done: list[str] = []
    read = parsecache.read

    def counting(path):
        done.append(Path(path).name)
        return read(path)

    monkeypatch.setattr(parsecache, "read", counting)
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
    parsed.save(tmp_path)
    restored = ArticleCache()
    assert restored.restore(tmp_path) == len(parsed.trusted()) > 0
    assert restored.trusted() == parsed.trusted()


def test_files_parsed_by_worker_processes_give_what_one_process_gives(tmp_path, monkeypatch):
    """Large folders are parsed on all the cores: the articles and problems come back
    in order, equal to reading each file here, broken files reported by name and line."""
    folders = [ROOT / "seeds", *[CORPUS] * CORPUS.is_dir()]
    paths = [p for folder in folders for p in find(folder, ["*.md", "*.txt"])[0]]
    broken = tmp_path / "broken.md"
    broken.write_text("---\ntitle: [unclosed\n---\n")
    paths.insert(1, str(broken))
    monkeypatch.setattr(parsecache, "PER_WORKER", 1)
    monkeypatch.setattr(parsecache, "FILES_PER_TASK", 2)
    in_workers = list(parsecache.read_all(paths))
    assert in_workers == [read(p) for p in paths]
    # And they are the same articles to the build's reuse of what it rendered.
    assert [digest(r) for r in in_workers if isinstance(r, Article)] == [
        digest(read(p)) for p in paths if p != str(broken)
    ]
    problem = in_workers[1]
    assert isinstance(problem, Problem) and problem.source == str(broken) and problem.line


def written(output: Path) -> dict[str, bytes]:
    return {
        p.relative_to(output).as_posix(): p.read_bytes()
        for p in output.rglob("*")
        if p.is_file() and not p.name.startswith(".") and STORE not in p.parts
    }


def test_a_body_is_rendered_once_and_kept_in_the_cache_file(site: Site, tmp_path, monkeypatch):
    """Bodies are rendered when a file is parsed: an unchanged file is not rendered again,
    in the same process or the next one, and its body and provider image come back whole."""
    path = site.write(
        "a.md",
        article(provider={"name": "P", "domain": "p.example", "images": [{"url": "https://p/i"}]}),
    )
    path.write_text(path.read_text() + "A *body* with [a link](../x/).\n")
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)  # trust the new file's stamp
    first_cache = ArticleCache()
    (first,) = first_cache.load([str(path)])
    first_cache.save(tmp_path)
    rendered: list[str] = []
    monkeypatch.setattr(body, "render", lambda *args: rendered.append(args[0]) or "")

    cache = ArticleCache()
    assert cache.restore(tmp_path) == 1
    (again,) = cache.load([str(path)])
    assert again == first and rendered == []
    assert (
        again.body
        == '<p>A <em>body</em> with <a href="https://news.example.com/x/">a link</a>.</p>'
    )
    assert again.provider.image == "https://p/i"


def test_an_articles_digest_is_the_same_in_another_process(tmp_path):
    """``feeds build`` and ``feeds serve`` reuse each other's rendered documents by the
    digests of their articles: another interpreter, hashing strings otherwise, agrees."""
    paths = find(ROOT / "seeds", ["*.md"])[0]
    script = (
        "import sys; from feeds.articles import read; from feeds.reuse import digest; "
        "print(' '.join(digest(read(p)).hex() for p in sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", script, *paths], env=env, capture_output=True, text=True, check=True
    )
    assert there.stdout.split() == [digest(read(p)).hex() for p in paths]


# Reading ahead: on disk, as the tests' own folders are in memory (/var/tmp is, as a rule).
on_linux = pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="Linux's RWF_NOWAIT")
PAGES = 4  # of each file written


def article_files(folder: Path, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = folder / f"{n}.md"
        path.write_bytes(b"x" * PAGES * 4096)
        paths.append(str(path))
    return paths


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only what is on disk can leave the page cache
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_from_disk() -> int:
    """Bytes this process had read from storage (the reading it started included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    pytest.skip("no read_bytes in /proc/self/io")


@on_linux
def test_article_files_not_in_the_page_cache_are_read_ahead_all_at_once():
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        probe, *paths = article_files(Path(folder), 21)
        for path in [probe, *paths]:
            evict(path)
        if parsecache._in_page_cache(probe):  # (asking starts reading it)
            pytest.skip("/var/tmp keeps its files in memory here")
        fifo = str(Path(folder) / "became-a-fifo.md")  # since the listing: not waited on
        os.mkfifo(fifo)

        before = read_from_disk()
        ahead = [*paths[:9], fifo, *paths[9:]]
        reading = threading.Thread(target=parsecache._read_ahead, args=(ahead,), daemon=True)
        reading.start()
        reading.join(timeout=10)
        assert not reading.is_alive()
        assert read_from_disk() - before >= 20 * PAGES * 4096  # asked for, not waited for


@on_linux
def test_article_files_in_the_page_cache_are_not_read_ahead(monkeypatch):
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        paths = article_files(Path(folder), 20)  # just written: in the cache
        assert parsecache._in_page_cache(paths[0]) and parsecache._in_page_cache(paths[-1])
        asked: list[int] = []
        monkeypatch.setattr(os, "posix_fadvise", lambda fd, *advice: asked.append(fd))
        parsecache._read_ahead(paths)
        assert asked == []
