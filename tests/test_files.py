"""feeds.files: the article files a folder's patterns match, and what is passed over."""

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import files
from feeds.errors import ArticleError
from feeds.files import FEW_LOOKED_UP, Finder, find, matches

from .conftest import article
from .test_articles import dump


def test_find_skips_directories_and_links_outside(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "ok.md").write_bytes(dump(article()))
    (folder / "dir.md").mkdir()
    outside = tmp_path / "outside.md"
    outside.write_bytes(dump(article()))
    (folder / "link.md").symlink_to(outside)
    paths, problems = find(folder, ["*.md"])
    assert paths == [str(folder / "ok.md")]
    assert sorted(p.source.rsplit("/", 1)[1] for p in problems) == ["dir.md", "link.md"]


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ArticleError, match="articles.folder: no such folder"):
        find(tmp_path / "nope", ["*.md"])


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(
        st.sampled_from(
            [
                "a.md",
                "b.txt",
                ".h.md",
                "x/a.md",
                "x/y/b.md",
                ".d/c.md",
                "x/.e.md",
                "^.md",
                "a\\b.md",
            ]
        ),
        max_size=7,
    ),
    patterns=st.lists(
        st.sampled_from(
            ["*.md", "**/*.md", "*/*.md", "x/**", "**", ".*", "x/**/*.md", "?.txt"]
            + ["[^a].md", "a\\b.md", "[[:alpha:]].md"]  # glob reads these literally
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_the_patterns_match_a_changed_file_as_glob_lists_it(names, patterns):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("x")
        listed, _ = find(folder, patterns)
        for name in names:
            assert matches(name, patterns) == (os.path.join(folder, name) in listed), name


@pytest.mark.parametrize("count", [1, FEW_LOOKED_UP + 1])  # looked up one by one, or by dict
def test_files_written_in_the_last_tick_are_found_changed_by_the_next_scan(tmp_path, count):
    """A file may change again within the clock tick of its stamp: not to be trusted."""
    for n in range(40):
        (tmp_path / f"{n:02d}.md").write_text("x")
    finder = Finder(tmp_path, ["*.md"])
    scan, _ = finder.scan()
    time.sleep(0.05)  # past the file system's clock tick
    since = time.time_ns()
    time.sleep(0.05)
    recent = [str(tmp_path / f"{n:02d}.md") for n in range(count)]
    for path in recent:
        Path(path).write_text("y")
    scan, _ = finder.scan()

    newer = scan.newer(sorted(scan.paths), since)
    assert newer == recent
    scan.distrust(newer)

    again, _ = finder.scan()
    changed, gone = again.changes(scan)
    assert sorted(changed) == recent and gone == []


def test_a_scan_tells_the_files_added_changed_renamed_and_removed_since_an_earlier_one(tmp_path):
    for n in range(30):
        (tmp_path / f"{n:02d}.md").write_text("x")
    finder = Finder(tmp_path, ["*.md"])
    earlier, _ = finder.scan()
    time.sleep(0.05)  # past the file system's clock tick
    (tmp_path / "05.md").write_text("changed")
    (tmp_path / "10.md").rename(tmp_path / "10-renamed.md")
    (tmp_path / "20.md").unlink()
    (tmp_path / "new.md").write_text("x")

    found, _ = finder.scan()
    changed, gone = found.changes(earlier)

    names = sorted(Path(p).name for p in changed), sorted(Path(p).name for p in gone)
    assert names == (["05.md", "10-renamed.md", "new.md"], ["10.md", "20.md"])
    assert found.changes(found) == ([], [])


def written(folder: Path, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = folder / f"{n}.md"
        path.write_bytes(b"x" * 10_000)
        paths.append(str(path))
    return paths


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only what is on disk can leave the page cache
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_files_not_in_the_page_cache_are_read_ahead_all_at_once():
    # On disk (the tests' temporary folders are in memory): /var/tmp is, as a rule.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        probe, *paths = written(Path(folder), 21)
        for path in [probe, *paths]:
            evict(path)
        if files._cached(probe):  # (a look that starts reading it)
            pytest.skip("/var/tmp keeps its files in memory here")
        fifo = str(Path(folder) / "became-a-fifo.md")  # since the scan: not waited on
        os.mkfifo(fifo)

        before = read_from_disk()
        ahead = [*paths[:9], fifo, *paths[9:]]
        reading = threading.Thread(target=files.read_ahead, args=(ahead,), daemon=True)
        reading.start()
        reading.join(timeout=10)
        assert not reading.is_alive()
        assert read_from_disk() - before >= 20 * 10_000  # asked for, not waited for


def read_from_disk() -> int:
    """Bytes this process had read from storage (the reading it started included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no read_bytes in /proc/self/io")


def test_files_in_the_page_cache_are_not_looked_at_again(tmp_path, monkeypatch):
    paths = written(tmp_path, 20)
    asked: list[int] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, *advice: asked.append(fd))
    files.read_ahead(paths)
    assert asked == []
