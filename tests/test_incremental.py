"""An incremental `feeds build`: after an edit, an addition, a deletion or a rename, a new
build process reads only those files and renders only what they are in, and exports
exactly the files (and says what) a build from scratch of the same articles does."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import buildstate, parsecache
from feeds import config as config_module
from feeds.store import STORE

from .conftest import Site, story
from .test_handover import exported


def scratch_build(site: Site, runner, tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The files and the report lines of a build of ``site``'s articles from scratch,
    into a folder of its own."""
    other = Site(tmp_path / "scratch")
    other.root.mkdir()
    config = yaml.safe_load(site.config_path.read_text())
    config["articles"]["folder"] = str(site.articles)
    other.configure(**config)
    from click.testing import CliRunner

    from feeds.cli import main

    result = CliRunner().invoke(main, ["--config", str(other.config_path), "build"])
    assert result.exit_code == 0, result.output
    return exported(other), _lines(result.output, other.output)


def _lines(output: str, folder: Path) -> list[str]:
    """The report without what the export did (which depends on what it found there)."""
    return [
        line.replace(str(folder), "OUT").split(":")[0] if "files written" in line else line
        for line in output.splitlines()
    ]


def incremental_build(site: Site, runner, caplog) -> tuple[int, int, list[str]]:
    """Build; (documents rendered, documents) as the incremental build logs them, and the
    report lines. Fails if the build was a whole one."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        result = runner("build")
    assert result.exit_code == 0, result.output
    counts = [
        r.args
        for r in caplog.records
        if r.name == "feeds.incremental" and r.msg.startswith("rendered %d of")
    ]
    assert counts, caplog.text
    return (*counts[-1], _lines(result.output, site.output))


@pytest.fixture
def built(news: Site, runner) -> Site:
    news.configure(feeds={"items": 2})  # archive pages too
    assert runner("build").exit_code == 0
    assert (news.output / STORE / buildstate.STATE).is_file()
    return news


def test_an_edit_renders_only_the_documents_that_hold_the_article(built, runner, caplog, tmp_path):
    built.write("05.md", story(5, title="Edited since the last build"))

    done, total, lines = incremental_build(built, runner, caplog)

    assert 0 < done < total / 2
    assert (exported(built), lines) == scratch_build(built, runner, tmp_path)
    assert any(b"Edited since the last build" in body for body in exported(built).values())


@pytest.mark.parametrize("change", ["add", "delete", "rename", "redate", "duplicate"])
def test_adds_deletes_renames_and_moves_give_what_a_build_from_scratch_gives(
    built, runner, caplog, tmp_path, change
):
    articles = built.articles
    if change == "add":
        built.write("new.md", story(1, title="A new one", webUrl="https://x.example/new"))
    elif change == "delete":
        (articles / "03.md").unlink()
    elif change == "rename":
        (articles / "03.md").rename(articles / "renamed.md")
    elif change == "redate":  # moves it across archive pages
        built.write("03.md", story(3, publishedDateTime="2023-06-30T10:00:00Z"))
    else:  # a better copy of a story: the dedupe picks it instead
        built.write("copy.md", story(3, quality=90))

    done, total, lines = incremental_build(built, runner, caplog)

    assert 0 < done < total
    assert (exported(built), lines) == scratch_build(built, runner, tmp_path)


@pytest.mark.parametrize("change", ["add", "edit"])
def test_without_pages_an_incremental_build_gives_what_a_build_from_scratch_gives(
    built, runner, caplog, tmp_path, change
):
    built.configure(feeds={"items": 2, "pages": False})
    assert runner("build").exit_code == 0  # a whole build: the config changed
    if change == "add":
        built.write("new.md", story(1, title="A new one", webUrl="https://x.example/new"))
    else:
        built.write("05.md", story(5, title="Edited since the last build"))

    done, total, lines = incremental_build(built, runner, caplog)

    assert 0 < done < total
    assert (exported(built), lines) == scratch_build(built, runner, tmp_path)
    assert not [p for p in exported(built) if p.endswith((".html", ".css", ".js"))]


def test_a_new_build_process_after_changes_gives_what_a_build_from_scratch_gives(
    built, runner, tmp_path
):
    # A process of its own, as an operator runs it: the files are looked at in a forked
    # child there (a test process may have threads, and then looks at them itself).
    built.write("new.md", story(1, title="A new one", webUrl="https://x.example/new"))
    built.write("05.md", story(5, title="Edited since the last build"))
    (built.articles / "03.md").unlink()

    run = subprocess.run(
        [sys.executable, "-m", "feeds", "--verbose", "--config", str(built.config_path), "build"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert "rendered " in run.stderr and "a whole build" not in run.stderr
    assert exported(built) == scratch_build(built, runner, tmp_path)[0]


def test_a_state_that_cannot_be_kept_is_told_once_and_the_feeds_are_published(
    news, runner, caplog, tmp_path
):
    # Folders where the article table and the parse cache go: neither can be written.
    (news.output / STORE / buildstate.ARTICLES).mkdir(parents=True)
    (news.output / parsecache.CACHE_FILE).mkdir()

    with caplog.at_level(logging.WARNING, logger="feeds"):
        result = runner("build")

    assert result.exit_code == 0, result.output
    told = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    cache = str(news.output / parsecache.CACHE_FILE)
    saved = [m for m in told if m.startswith(cache)]  # told once, after the export
    assert len(saved) == 1 and saved[0].startswith(f"{cache}: not saved ("), told
    assert len([m for m in told if m.endswith("the next build is a whole one")]) == 1, told
    assert exported(news) == scratch_build(news, runner, tmp_path)[0]
    assert not (news.output / STORE / buildstate.STATE).exists()  # the next build: whole


def test_a_broken_article_is_named_and_skipped(built, runner, caplog, tmp_path):
    built.write("broken.md", raw="---\ntitle: [unclosed\n---\n")

    *_, lines = incremental_build(built, runner, caplog)

    assert any(line.startswith(str(built.articles / "broken.md")) for line in lines)
    assert (exported(built), lines) == scratch_build(built, runner, tmp_path)
    assert runner("build", "--strict").exit_code == 1
    (built.articles / "broken.md").unlink()
    *_, lines = incremental_build(built, runner, caplog)
    assert "0 broken" in "\n".join(lines)


def test_a_new_feed_makes_a_whole_build(built, runner, caplog, tmp_path):
    """A feed that appears changes where the pages of its articles lead, in every feed."""
    built.write("new.md", story(1, webUrl="https://x.example/new", topics=["Brand new"]))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        result = runner("build")
    assert "the set of feeds changed" in caplog.text
    assert (exported(built), _lines(result.output, built.output)) == scratch_build(
        built, runner, tmp_path
    )
    incremental_build(built, runner, caplog)  # the whole build kept a state again


def test_an_export_changed_by_another_writer_makes_a_whole_build(built, runner, caplog):
    """A file removed or replaced in the export folder (and not by a build) is seen by its
    folder's listing: the build is a whole one, which writes every file that differs."""
    before = exported(built)
    (built.output / "topics" / "topic-1.atom").unlink()
    shutil.rmtree(built.output / "all" / "archive")
    replaced = built.output / "topics" / "topic-2.rss"
    replaced.unlink()
    replaced.write_bytes(b"another writer")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        assert runner("build").exit_code == 0

    assert "the export folder changed since the last build" in caplog.text
    assert exported(built) == before
    incremental_build(built, runner, caplog)


def test_no_state_or_a_state_of_another_config_makes_a_whole_build(built, runner, caplog):
    config = config_module.load(built.config_path)
    buildstate.forget(config)  # as a killed build leaves it
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        assert runner("build").exit_code == 0
    assert "rendered 0 of" in caplog.text and not any(
        r.name == "feeds.incremental" for r in caplog.records
    )
    built.configure(feeds={"items": 3})
    assert buildstate.load(config_module.load(built.config_path)) is None
    assert runner("build").exit_code == 0
    assert incremental_build(built, runner, caplog)[0] == 0


def test_heads_and_paths_kept_in_many_records_are_read_back_whole(
    news, runner, caplog, tmp_path, monkeypatch
):
    monkeypatch.setattr(buildstate, "PER_RECORD", 2)
    news.configure(feeds={"items": 2})
    assert runner("build").exit_code == 0
    (news.articles / "03.md").rename(news.articles / "renamed.md")
    news.write("05.md", story(5, title="Edited since the last build"))

    incremental_build(news, runner, caplog)
    news.write("06.md", story(6, title="Edited after the incremental build"))
    *_, lines = incremental_build(news, runner, caplog)  # from the state the last one kept

    assert (exported(news), lines) == scratch_build(news, runner, tmp_path)


@pytest.mark.parametrize("name", [buildstate.HEADS, buildstate.SCAN])
def test_a_state_file_cut_short_makes_a_whole_build(built, runner, caplog, tmp_path, name):
    kept = built.output / STORE / name
    kept.write_bytes(kept.read_bytes()[:-1])
    (built.articles / "03.md").rename(built.articles / "renamed.md")  # the scan's paths are read

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        result = runner("build")

    assert not any(
        r.msg.startswith("rendered %d of") for r in caplog.records if r.name == "feeds.incremental"
    )
    assert (exported(built), _lines(result.output, built.output)) == scratch_build(
        built, runner, tmp_path
    )
    incremental_build(built, runner, caplog)  # the whole build kept a state again


def test_a_build_elsewhere_is_a_whole_one_and_keeps_the_state_for_there(
    built, runner, caplog, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds"):
        assert runner("build", "--output", str(elsewhere)).exit_code == 0
    assert not any(r.name == "feeds.incremental" for r in caplog.records)
    built.write("05.md", story(5, title="Edited"))
    assert runner("build", "--output", str(elsewhere)).exit_code == 0
    assert any(b"Edited" in p.read_bytes() for p in elsewhere.rglob("*.rss"))


def test_a_file_changed_just_before_a_build_is_read_again_by_the_next(
    built, runner, caplog, monkeypatch
):
    """A stamp is trusted only once the file is a few seconds old (see feeds.parsecache):
    a file rewritten in the same tick with the same size would keep it."""
    from feeds import parsecache

    read: list[list[str]] = []
    read_all = parsecache.read_all
    monkeypatch.setattr(parsecache, "read_all", lambda paths: read.append(paths) or read_all(paths))
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 60_000_000_000)
    built.write("05.md", story(5, title="Edited just now"))

    incremental_build(built, runner, caplog)
    incremental_build(built, runner, caplog)
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)
    incremental_build(built, runner, caplog)
    incremental_build(built, runner, caplog)

    assert [[Path(p).name for p in paths] for paths in read] == [["05.md"]] * 3 + [[]]


def test_a_server_started_after_an_incremental_build_serves_its_files_and_renders_nothing(
    built, runner, caplog
):
    from feeds.web import create_app

    built.write("05.md", story(5, title="Edited before the server starts"))
    incremental_build(built, runner, caplog)
    files = exported(built)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feeds.publisher"):
        client = create_app(built.config_path).test_client()

    rendered = [r.args for r in caplog.records if r.msg.startswith("rendered %d of")]
    assert rendered and rendered[-1][0] == 0, caplog.text
    for path, body in files.items():
        assert client.get(f"/{path}").data == body, path


# One change to the articles folder: (what, which story).
_CHANGES = st.tuples(
    st.sampled_from(["edit", "redate", "hide", "break", "delete", "add", "rename", "copy"]),
    st.integers(0, 11),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.lists(_CHANGES, min_size=1, max_size=3), min_size=1, max_size=3))
def test_any_run_of_changes_and_builds_gives_what_a_build_from_scratch_gives(
    tmp_path_factory, monkeypatch, builds
):
    """Whatever the changes between builds, and whether each build was an incremental one
    or fell back to a whole one, the export ends as a build from scratch makes it."""
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)
    site = Site(tmp_path_factory.mktemp("site"))
    site.articles.mkdir()
    site.configure(feeds={"items": 2})
    for n in range(12):
        site.write(f"{n:02d}.md", story(n))
    run = _runner(site)
    assert run("build").exit_code == 0
    for k, changes in enumerate(builds):
        for what, n in changes:
            _change(site, what, n, f"{k}")
        result = run("build")
        assert result.exit_code == 0, result.output
    assert exported(site) == scratch_build(site, run, tmp_path_factory.mktemp("scratch"))[0]


def _change(site: Site, what: str, n: int, tag: str) -> None:
    path = site.articles / f"{n:02d}.md"
    if what == "edit":
        site.write(path.name, story(n, title=f"Story {n}, edited ({tag})"))
    elif what == "redate":  # across archive pages
        site.write(path.name, story(n, publishedDateTime=f"2023-07-{n + 1:02d}T10:00:00Z"))
    elif what == "hide":  # below the quality threshold
        site.write(path.name, story(n, quality=1))
    elif what == "break":
        site.write(path.name, raw="---\ntitle: [unclosed\n---\n")
    elif what == "delete":
        path.unlink(missing_ok=True)
    elif what == "add":
        site.write(f"new-{tag}-{n}.md", story(n, webUrl=f"https://x.example/{tag}/{n}"))
    elif what == "rename" and path.exists():
        path.rename(site.articles / f"renamed-{tag}-{n}.md")
    elif what == "copy":  # a better copy: the dedupe picks it instead
        site.write(f"copy-{tag}-{n}.md", story(n, quality=90))


def _runner(site: Site):
    from click.testing import CliRunner

    from feeds.cli import main

    def invoke(*args: str):
        return CliRunner().invoke(main, ["--config", str(site.config_path), *args])

    return invoke
