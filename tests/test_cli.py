import os

import feedparser

from .conftest import article


def test_build_writes_every_feed_and_reports(site, runner):
    site.write("1.md", article(n=1))
    site.write("2.md", article(n=2, topics=["AI", "Robots"]))
    result = runner("build")
    assert result.exit_code == 0, result.output
    assert "Read 2 article files: 2 published, 0 skipped." in result.stdout
    files = site.build().files
    assert f"{len(files)} files written, 0 unchanged, 0 removed" in result.stdout
    written = {str(p.relative_to(site.output)) for p in site.output.rglob("*") if p.is_file()}
    assert written == {*files, ".feeds-manifest", ".feeds-cache"}
    parsed = feedparser.parse((site.output / "topics" / "robots.atom").read_bytes())
    assert [e.title for e in parsed.entries] == ["Story number 2"]


def test_second_build_rewrites_nothing(site, runner):
    site.write("1.md", article())
    runner("build")
    mtimes = {p: p.stat().st_mtime_ns for p in site.output.rglob("*.*")}
    result = runner("build")
    assert f"0 files written, {len(site.build().files)} unchanged, 0 removed" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in site.output.rglob("*.*")} == mtimes


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
    assert "1 published, 2 skipped" in result.stdout
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
    )
    assert out.returncode == 0, out.stderr
    assert "1 article files, 0 problems." in out.stderr
