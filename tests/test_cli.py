import os
import signal
import subprocess
import sys
import time
import urllib.error
from email.message import Message
from pathlib import Path

import feedparser

from feeds.store import STORE

from .conftest import LOCAL, article, free_port


def test_build_writes_every_feed_and_reports(site, runner):
    site.write("1.md", article(n=1))
    site.write("2.md", article(n=2, topics=["AI", "Robots"]))
    result = runner("build")
    assert result.exit_code == 0, result.output
    counts = "0 broken, 0 below the quality threshold, 0 duplicates; 2 stories published in 4"
    assert f"Read 2 article files: {counts} feeds." in result.stdout
    files = site.build().files
    assert f"{len(files)} files written, 0 unchanged, 0 removed" in result.stdout
    written = {p.relative_to(site.output).as_posix() for p in site.output.rglob("*") if p.is_file()}
    stored = {p for p in written if p.startswith(f"{STORE}/")}
    assert written - stored == {*files, ".feeds-manifest", ".feeds-cache"}
    parsed = feedparser.parse((site.output / "topics" / "robots.atom").read_bytes())
    assert [e.title for e in parsed.entries] == ["Story number 2"]


def test_build_exports_the_pages_a_server_gives_older_stories_included(site, runner):
    site.configure(feeds={"items": 1})
    for n in range(1, 4):
        site.write(f"{n}.md", article(n=n))
    assert runner("build").exit_code == 0
    # `feeds build` renders each page as it writes it (LazyFiles), a server keeps them all:
    # the same bytes either way.
    files = site.build().files
    assert {"all/archive/1.html", "all/archive/2.html", "providers.tsv", "feeds.js"} <= set(files)
    for path, file in files.items():
        assert (site.output / path).read_bytes() == file.body, path


def test_second_build_rewrites_nothing(site, runner):
    site.write("1.md", article())
    runner("build")
    mtimes = _mtimes(site.output)
    result = runner("build")
    assert f"0 files written, {len(site.build().files)} unchanged, 0 removed" in result.stdout
    assert _mtimes(site.output) == mtimes


def _mtimes(folder: Path) -> dict[Path, int]:
    """The mtimes of the files under ``folder`` but the store (its index is saved anew)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*.*") if STORE not in p.parts}


def test_feeds_that_no_longer_exist_are_removed(site, runner):
    site.write("1.md", article(topics=["AI", "Robots"]))
    runner("build")
    site.write("1.md", article(topics=["AI"]))
    result = runner("build")
    gone = ["topics/robots.rss", "topics/robots.atom", "topics/robots.json", "topics/robots.html"]
    assert f"{len(gone)} removed" in result.stdout
    assert not any((site.output / p).exists() for p in gone)


def test_a_broken_article_is_reported_and_the_rest_published(site, runner):
    site.write("good.md", article())
    site.write("bad.md", raw="---\ntitle: [oops\n---\n")
    site.write("nodate.md", article(publishedDateTime=None))
    result = runner("build")
    assert result.exit_code == 0
    assert f"{site.articles / 'bad.md'}:3: invalid YAML" in result.stderr
    assert f"{site.articles / 'nodate.md'}: publishedDateTime: missing" in result.stderr
    counts = "2 broken, 0 below the quality threshold, 0 duplicates; 1 stories published"
    assert counts in result.stdout
    assert len(feedparser.parse((site.output / "all.rss").read_bytes()).entries) == 1
    assert runner("build", "--strict").exit_code == 1


def test_a_bad_config_changes_nothing(site, runner):
    site.write("1.md", article())
    runner("build")
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in site.output.rglob("*") if p.is_file()
    }
    site.configure(quality={"min": "high"}, feeds={"itemz": 3})
    result = runner("build")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{site.config_path}: quality.min: expected a number, got 'high'" in lines
    assert any("feeds.itemz: unknown setting" in line for line in lines)
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in site.output.rglob("*") if p.is_file()
    }
    assert after == before


def test_output_option(site, runner, tmp_path):
    site.write("1.md", article())
    assert runner("build", "--output", str(tmp_path / "elsewhere")).exit_code == 0
    assert (tmp_path / "elsewhere" / "all.atom").is_file()


def test_check_lists_problems_one_per_line(site, runner):
    site.write("good.md", article())
    assert runner("check").exit_code == 0
    site.write("bad.md", article(quality="high"))
    result = runner("check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{site.articles / 'bad.md'}:8: quality: expected a number, got 'high'"
    ]


def test_check_refuses_a_bad_config(site, runner):
    site.configure(site={"title": "T"})
    result = runner("check")
    assert result.exit_code == 1
    assert "site.base_url: required setting is missing" in result.stderr


def test_python_dash_m_works(site):
    import subprocess
    import sys

    site.write("1.md", article())
    out = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(site.config_path), "check"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "1 article files, 0 problems." in out.stderr


# --- feeds serve ---------------------------------------------------------------------------

# `feeds serve` whose builds first write their process id to a file, then wait until a gate
# file exists: the test sees the server while it loads, and which process built.
HELD_SERVE = """
import os, sys, time
from pathlib import Path
from feeds import publisher
from feeds.cli import main

gate, builders = Path(sys.argv[1]), Path(sys.argv[2])
build = publisher.Publisher.build

def held(self, *args, **kwargs):
    with builders.open("a") as f:
        f.write(f"{os.getpid()}\\n")
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return build(self, *args, **kwargs)

publisher.Publisher.build = held
main(sys.argv[3:], prog_name="feeds")
"""


def _get(url: str) -> tuple[int, Message, bytes]:
    try:
        with LOCAL.open(url, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def _until(url: str, wanted: set[int], timeout: float = 30) -> int:
    """GET ``url`` until it answers with a status in ``wanted``; that status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = _get(url)[0]
            if status in wanted:
                return status
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {wanted} in {timeout} s")


def _children(pid: int) -> list[int]:
    return [
        int(n) for f in Path(f"/proc/{pid}/task").glob("*/children") for n in f.read_text().split()
    ]


def test_serve_builds_in_its_worker_and_answers_503_until_loaded(site, tmp_path):
    site.write("first.md", article(n=1, title="Robots learn to fold laundry"))
    gate, builders = tmp_path / "gate", tmp_path / "builders"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-c", HELD_SERVE, str(gate), str(builders)]
    options = ["--config", str(site.config_path), "serve", "--port", str(port)]
    with (tmp_path / "stderr").open("wb") as stderr:
        # Its own process group: the worker is ended with it (SIGKILL to the main process
        # alone would leave the forked worker serving).
        process = subprocess.Popen(
            [*command, *options], stderr=stderr, cwd=tmp_path, start_new_session=True
        )
    try:
        # Listening before the feeds are built: every URL says to come back, none is partial.
        assert _until(url + "healthz", {200, 503}) == 503
        for path in ("all.rss", "", "index.html", "topics/ai.atom", "no-such.rss"):
            status, headers, _ = _get(url + path)
            assert status == 503, path
            assert int(headers["Retry-After"]) > 0

        gate.touch()
        assert _until(url + "healthz", {200}) == 200
        status, _, body = _get(url + "all.rss")
        assert status == 200
        assert [e.title for e in feedparser.parse(body).entries] == ["Robots learn to fold laundry"]
        [worker] = _children(process.pid)
        assert builders.read_text().split() == [str(worker)]  # the main process built nothing

        # A worker respawned after a crash serves the files the first one kept at once,
        # and builds the feeds again.
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while [worker] == _children(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _until(url + "all.rss", {200}) == 200
        [respawned] = _children(process.pid)
        while len(builders.read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert builders.read_text().split() == [str(worker), str(respawned)]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # At the default settings, a start says nothing but where it serves.
    lines = (tmp_path / "stderr").read_text().splitlines()
    assert not [line for line in lines if "WARNING" in line], lines


def test_serve_refuses_a_bad_config_before_listening(site, runner):
    site.configure(feeds={"items": "many"})
    result = runner("serve", "--port", str(free_port()))
    assert result.exit_code == 1
    assert "feeds.items" in result.stderr
    assert "Serving" not in result.stderr


def test_dash_h_is_help_for_every_command(runner):
    for command in ([], ["build"], ["serve"], ["check"]):
        result = runner(*command, "-h")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage: ")
    assert "--host" in runner("serve", "-h").stdout


def test_a_missing_articles_folder_names_its_setting(site, runner):
    site.configure(articles={"folder": "nothere"})
    result = runner("build")
    assert result.exit_code == 1
    assert "articles.folder" in result.stderr
    assert "nothere" in result.stderr
