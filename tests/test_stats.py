"""The counts `feeds build` prints and `feeds stats`, checked against counts made here
from the front matter alone."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .conftest import article


def front_matter(path: Path) -> dict | None:
    """The fields of an article file, or None if it is broken (as far as this test knows)."""
    return _front_matter(path, path.stat().st_mtime_ns)


@functools.cache  # the corpus is counted five times over: read once (PyYAML is slow)
def _front_matter(path: Path, mtime_ns: int) -> dict | None:
    text = path.read_text(encoding="utf-8-sig")
    try:
        fields = yaml.safe_load(text.split("---\n")[1])
    except (yaml.YAMLError, IndexError):
        return None
    return fields if isinstance(fields, dict) else None


def story(fields: dict) -> str:
    """Which story a file tells: its URL without query or fragment, host in lower case."""
    parts = urlsplit((fields.get("originalUrl") or fields["webUrl"]).strip())
    return f"{parts.hostname}{parts.path.rstrip('/')}"


def expected(folder: Path, minimum: float, topic: str | None = None) -> dict[str, int]:
    """Candidates, below, duplicates and kept of the all feed (or ``topic``'s feed), with
    the default quality.missing (include), counted from the front matter alone."""
    files = [front_matter(p) for p in sorted(folder.glob("*.md"))]
    candidates = [f for f in files if f and (topic is None or topic in f.get("topics", []))]
    passing = [f for f in candidates if f.get("quality") is None or f["quality"] >= minimum]
    stories = {story(f) for f in passing}
    return {
        "broken": sum(f is None for f in files),
        "candidates": len(candidates),
        "below": len(candidates) - len(passing),
        "duplicates": len(passing) - len(stories),
        "kept": len(stories),
    }


def summary_of(n: dict[str, int]) -> str:
    return (
        f"{n['broken']} broken, {n['below']} below the quality threshold, "
        f"{n['duplicates']} duplicates; {n['kept']} stories published"
    )


def write_mixed(site) -> None:
    """Qualities on both sides of 40, one without, two copies of a story, a broken file."""
    for n, quality in enumerate([10, 39, 40, 55, None, 90], start=1):
        site.write(f"{n}.md", article(n=n, quality=quality, topics=["AI", f"T{n % 2}"]))
    site.write("7.md", article(n=7, quality=70, webUrl="https://news.example.com/story-4"))
    site.write("8.md", article(n=8, quality=20, webUrl="https://news.example.com/story-6?a=1"))
    site.write("broken.md", raw="---\ntitle: [oops\n---\n")
    site.configure(quality={"min": 40})


def test_build_counts_every_file_once(site, runner):
    write_mixed(site)
    result = runner("build")
    assert result.exit_code == 0, result.output
    n = expected(site.articles, 40)
    assert n == {"broken": 1, "candidates": 8, "below": 3, "duplicates": 1, "kept": 4}
    assert f"Read 9 article files: {summary_of(n)} in " in result.stdout
    assert f"{site.articles / 'broken.md'}:3: invalid YAML" in result.stderr


def test_verbose_build_lists_the_files_of_each_count(site, runner):
    write_mixed(site)
    result = runner("-v", "build")
    listed = [line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith("  ")]
    got = defaultdict(set)
    for group, path in listed:
        got[group.strip()].add(Path(path).name)
    assert got == {
        "broken": {"broken.md"},
        "below the quality threshold": {"1.md", "2.md", "8.md"},
        "duplicate": {"4.md"},  # 7.md is the same story with a higher quality
    }


def corpus_site_folder(site) -> Path:
    return Path(yaml.safe_load(site.config_path.read_text())["articles"]["folder"])


def stats_json(runner, *args: str) -> dict:
    result = runner("stats", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_and_stats_count_the_corpus_as_its_front_matter_does(corpus_site, runner):
    folder = corpus_site_folder(corpus_site)
    corpus_site.configure(articles={"folder": str(folder)}, quality={"min": 40})
    result = runner("build")  # which leaves the parse cache the stats runs below start from
    assert result.exit_code == 0, result.output
    assert summary_of(expected(folder, 40)) in result.stdout

    for minimum in (40, 60):  # what a threshold would do, before it is set
        document = stats_json(runner, "--set", f"quality.min={minimum}")
        (everything,) = [f for f in document["feeds"] if f["path"] == "all"]
        n = expected(folder, minimum)
        assert document["files"]["below_threshold"] == n["below"]
        assert document["stories"] == n["kept"]
        assert [everything[k] for k in ("candidates", "below_threshold", "duplicates")] == [
            n["candidates"],
            n["below"],
            n["duplicates"],
        ]
        assert (everything["kept"], everything["threshold"]) == (n["kept"], minimum)
    assert "60" not in corpus_site.config_path.read_text()  # nothing was written

    # One topic's feed, with a threshold of its own.
    document = stats_json(runner, "--set", "quality.topics.AI=70", "--feed", "topics/ai.atom")
    (feed,) = document["feeds"]
    n = expected(folder, 70, topic="AI")
    assert (feed["path"], feed["threshold"]) == ("topics/ai", 70)
    assert [feed[k] for k in ("candidates", "below_threshold", "duplicates", "kept")] == [
        n["candidates"],
        n["below"],
        n["duplicates"],
        n["kept"],
    ]
    quality = feed["quality"]
    qualities = sorted(
        f["quality"] for p in folder.glob("*.md") if (f := front_matter(p)) and "quality" in f
    )
    assert quality["none"] == n["candidates"] - len(qualities)
    assert (quality["min"], quality["max"]) == (qualities[0], qualities[-1])
    assert sum(quality["histogram"]) == len(qualities)


def test_stats_table(site, runner):
    write_mixed(site)
    result = runner("stats")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert summary_of(expected(site.articles, 40)) in lines[0]
    row = next(line.split() for line in lines if line.startswith("topics/t1 "))
    # 1.md, 3.md and 5.md: qualities 10 (below the limit of 40), 40 and none.
    assert row[1:8] == ["3", "2", "1", "0", "40", "1", "10"]
    assert row[11] == "40"


def test_a_bad_override_is_refused_naming_its_key(site, runner):
    site.write("1.md", article())
    result = runner("stats", "--set", "quality.min=high")
    assert result.exit_code == 1
    assert "quality.min: expected a number, got 'high'" in result.stderr
    result = runner("stats", "--set", "site.tittle=News")
    assert "site.tittle: unknown setting (did you mean site.title?)" in result.stderr
    assert runner("stats", "--set", "quality.min").exit_code == 2  # not KEY=VALUE
    result = runner("stats", "--feed", "topics/a")
    assert result.exit_code == 1
    assert "did you mean topics/ai?" in result.stderr
