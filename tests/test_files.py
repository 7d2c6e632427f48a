"""feeds.files: the article files a folder's patterns match, and what is passed over."""

import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
