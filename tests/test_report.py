"""What `feeds build --watch` and `feeds serve` tell their operator as files change, at the
default verbosity: each broken article once, when it is fixed, and the counts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from .conftest import article, free_port, serving, started

BROKEN = "---\ntitle: [oops\n---\n"


def wait_for(log: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while text not in (got := log.read_text(encoding="utf-8")):
        assert time.monotonic() < deadline, f"no {text!r} in:\n{got}"
        time.sleep(0.02)
    return got


def test_build_watch_tells_each_broken_article_once_and_when_it_is_fixed(site):
    site.write("good.md", article(n=1))
    bad = site.write("bad.md", raw=BROKEN)
    log = site.root / "watch.log"
    command = [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build", "--watch"]
    with log.open("wb") as out, started(command, grace=10, stdout=out, stderr=subprocess.STDOUT):
        wait_for(log, "Read 2 article files: 1 broken")
        site.write("more.md", article(n=2))
        wait_for(log, "Read 3 article files: 1 broken")
        worse = site.write("worse.md", raw=BROKEN)
        wait_for(log, "Read 4 article files: 2 broken")
        site.write("bad.md", article(n=3))
        got = wait_for(log, f"{bad}: fixed")
    assert got.count(f"{bad}:3: invalid YAML") == 1  # at start, not at each rebuild after
    assert got.count(f"{worse}:3: invalid YAML") == 1


def test_serve_tells_broken_articles_at_start_and_after_a_reload(site):
    site.write("good.md", article(n=1))
    bad = site.write("bad.md", raw=BROKEN)
    log = site.root / "serve.log"
    with serving(site.config_path, free_port(), log):
        wait_for(log, f"{bad}:3: invalid YAML")
        wait_for(log, "Read 2 article files: 1 broken, 0 below the quality threshold")
        worse = site.write("worse.md", raw=BROKEN)
        wait_for(log, f"{worse}:3: invalid YAML")
        wait_for(log, "Read 3 article files: 2 broken")
