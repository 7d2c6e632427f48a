"""Faults: a build killed half-way, a full disk, a read-only output folder, and a config
broken while `feeds serve` runs. Readers must only ever see whole feeds, old or new."""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path

import feedparser
import pytest
import yaml
from click.testing import CliRunner

from feeds.cli import main
from feeds.export import MANIFEST, export
from feeds.model import Rendered
from feeds.pages import ASSETS
from feeds.parsecache import CACHE_FILE
from feeds.publisher import Publisher
from feeds.store import STORE

from .conftest import (
    FAST_DUMPER,
    LOCAL,
    Site,
    article,
    free_port,
    no_bytecode_writes,
    serving,
    started,
)

# Articles, and items a feed page holds: with one tenth of ARTICLES a page, each version has
# the same 164 files (feeds of one to ten pages) whatever ARTICLES is. It was 400 articles on
# 40-item pages: the same files, four times as long, four times as long to build and to check
# (mostly feedparser), for the kills to land among as many writes.
ARTICLES = 100
ITEMS = ARTICLES // 10
# SIGKILLed builds (it was 16): each is a start-up and most of a build. Two land anywhere in
# the run, six while the files are replaced, and most of those mid-write (at least one must).
KILLS = 8
KILL_BUDGET = 90  # seconds for all of them; the loop stops early past it
TEMP = ".feeds-*.tmp"


def version_files(version: str) -> dict[str, bytes]:
    """ARTICLES files over 9 topics and 7 providers; every title differs between versions,
    so every feed changes, and one topic exists only in each version (a feed to remove)."""
    files = {}
    for n in range(ARTICLES):
        topics = [f"Topic {n % 9}", f"Topic {n % 5}"] + ([f"Only {version}"] * (n % 40 == 0))
        fields = article(
            n=1,
            title=f"Story {n} ({version})",
            excerpt=f"Version {version} of story {n}. " * 4,
            webUrl=f"https://news{n % 7}.example.com/story/{n}",
            publishedDateTime=f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}Z",
            provider={"name": f"News {n % 7}", "domain": f"news{n % 7}.example.com"},
            topics=topics,
        )
        files[f"{n:04d}.md"] = (
            "---\n" + yaml.dump(fields, Dumper=FAST_DUMPER, sort_keys=False) + "---\n"
        ).encode()
    return files


def build_command(site: Site, *args: str) -> list[str]:
    return [sys.executable, "-m", "feeds", "--config", str(site.config_path), "build", *args]


def on_disk(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, temp files and manifest included; not
    the rendered files kept for the next run (.feeds-store), which no reader fetches."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and STORE not in p.relative_to(folder).parts
    }


def feed_files(folder: Path) -> dict[str, bytes]:
    """What a reader can fetch: every file but the manifest and temp files."""
    return {
        path: body
        for path, body in on_disk(folder).items()
        if path not in (MANIFEST, CACHE_FILE) and not Path(path).match(TEMP)
    }


_valid: set[tuple[str, bytes]] = set()


def assert_complete(path: str, body: bytes) -> None:
    """A whole file a reader can use: parses, and ends where its format ends."""
    if (path, body) in _valid:  # checked before: the builds repeat the same bytes
        return
    if path.endswith((".rss", ".atom")):
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert body.rstrip().endswith(b"</rss>" if path.endswith(".rss") else b"</feed>"), path
    elif path.endswith(".json"):
        assert json.loads(body)["version"] == "https://jsonfeed.org/version/1.1", path
    elif path.endswith(".html"):
        assert body.rstrip().endswith(b"</html>"), path
    elif path.endswith(".opml"):
        assert body.rstrip().endswith(b"</opml>"), path
    elif path.endswith(".tsv"):
        assert body.endswith(b"\n") and all(line.count(b"\t") == 3 for line in body.splitlines())
    elif path in ASSETS:  # the style sheet and script: the package's bytes
        assert body == (files("feeds") / "static" / path).read_bytes(), path
    else:
        pytest.fail(f"unexpected file in the output folder: {path}")
    _valid.add((path, body))


def assert_exactly(folder: Path, files: Mapping[str, Rendered]) -> None:
    """``folder`` holds ``files``, the manifest naming them and perhaps the parse cache,
    and nothing else."""
    found = on_disk(folder)
    found.pop(CACHE_FILE, None)  # the parse cache of `feeds build`
    assert found.pop(MANIFEST).decode().split() == sorted(files)
    assert found.keys() == files.keys()
    for path, rendered in files.items():
        assert found[path] == rendered.body, path


# --- SIGKILL mid-build ---------------------------------------------------------------------


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_ino


def wait_for_first_write(process: subprocess.Popen, site: Site, timeout: float = 60) -> bool:
    """Wait until a running build writes its first file (the manifest, which it rewrites first
    when the set of feeds changes); False if it exits first."""
    manifest = site.output / MANIFEST
    before = _stamp(manifest)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if _stamp(manifest) != before:
            return True
        time.sleep(0.001)
    return False


def timed_build(site: Site) -> tuple[float, float, float]:
    """Run `feeds build` to the end; seconds from its start to its first write, to its last
    (the manifest, written again once every file is in place) and to its exit. After the
    last write a build still saves its parse cache and the store's index: kills aimed at
    the files must land before that."""
    start = time.monotonic()
    with started(build_command(site), stdout=subprocess.DEVNULL) as process:
        assert wait_for_first_write(process, site)
        first_write = time.monotonic() - start
        assert wait_for_first_write(process, site)
        last_write = time.monotonic() - start
        assert process.wait(timeout=60) == 0
    return first_write, last_write, time.monotonic() - start


def test_a_build_killed_at_any_moment_leaves_only_whole_feeds(site: Site):
    """Kill `feeds build` over and over while it replaces one version of every feed by
    another: each feed file is always whole, the old or the new bytes, never a mix of both
    sets with a feed missing; the next build cleans up and writes the full set."""
    site.configure(feeds={"items": ITEMS})
    articles: dict[str, dict[str, bytes]] = {}
    versions: dict[str, Mapping[str, Rendered]] = {}
    for version in ("A", "B"):
        articles[version] = version_files(version)
        for name, raw in articles[version].items():
            site.write(name, raw=raw)
        versions[version] = Publisher(site.config_path).build().files
        for path, rendered in versions[version].items():
            assert_complete(path, rendered.body)
    assert len(versions["A"]) > 100 and versions["A"].keys() != versions["B"].keys()
    common = versions["A"].keys() & versions["B"].keys()
    changed = {p for p in common if versions["A"][p].body != versions["B"][p].body}
    # Every feed and its pages (the A-Z list of providers and the script may stay the same).
    assert {p for p in common if p.startswith(("all", "topics/", "providers/"))} <= changed

    # One whole build from A to B through the CLI, timed: when it starts writing, when it ends.
    export(versions["A"], site.output)
    first_write, last_write, duration = timed_build(site)
    assert_exactly(site.output, versions["B"])

    # A quarter of the kills land anywhere in the run; the rest while files are replaced,
    # a short stretch after start-up, reading and rendering: from the first write on.
    writing = last_write - first_write
    rng = random.Random(20231123)
    outcomes = {"before any write": 0, "mid-write": 0, "after the last write": 0}
    temp_files_seen = 0
    current = "B"
    deadline = time.monotonic() + KILL_BUDGET
    for attempt in range(KILLS):
        if time.monotonic() > deadline:
            break
        target = "A" if current == "B" else "B"
        old, new = versions[current], versions[target]
        for name, raw in articles[target].items():
            site.write(name, raw=raw)
        with started(build_command(site), stdout=subprocess.DEVNULL) as process:
            if attempt % 4 == 0:
                delay = rng.uniform(0, duration)
            else:
                wait_for_first_write(process, site)
                delay = rng.uniform(0, writing)
            waited_from = time.monotonic()
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
            else:
                if attempt % 4 != 0:
                    # Aimed, but it finished first: its writes took less time than the timed
                    # build's (the machine is less busy now). They are what the next aim at.
                    writing = min(writing, time.monotonic() - waited_from)
            process.wait(timeout=30)

        state = on_disk(site.output)
        visible = feed_files(site.output)
        temp_files_seen += any(Path(p).match(TEMP) for p in state)
        for path, body in visible.items():
            assert path in old or path in new, f"kill {attempt}: stray file {path}"
            versions_of_path = [v[path].body for v in (old, new) if path in v]
            assert body in versions_of_path, f"kill {attempt}: {path} is neither old nor new"
            assert_complete(path, body)
        # Old feeds go only after every new one is written: one whole set is always there.
        assert old.keys() <= visible.keys() or all(visible.get(p) == new[p].body for p in new), (
            f"kill {attempt}: feeds missing"
        )
        # Every feed on disk is in the manifest, so a later build can remove it.
        assert visible.keys() <= set(state[MANIFEST].decode().split()), f"kill {attempt}"

        written = sum(visible.get(p) == new[p].body for p in changed)
        if written == 0:
            outcomes["before any write"] += 1
        elif written == len(changed):
            outcomes["after the last write"] += 1
        else:
            outcomes["mid-write"] += 1

        # The next build, of the same articles, removes the temp files and finishes the job
        # (the same export in-process, but the last time through the CLI).
        if attempt == KILLS - 1 or time.monotonic() > deadline:
            subprocess.run(build_command(site), check=True, capture_output=True, timeout=60)
        else:
            export(new, site.output)
        assert_exactly(site.output, new)
        current = target

    done = sum(outcomes.values())
    print(
        f"{done} kills in a {duration:.2f} s build writing from {first_write:.2f} s: "
        f"{outcomes}, temp files left by {temp_files_seen}"
    )
    assert done >= KILLS // 2, outcomes
    assert outcomes["mid-write"] >= 1, outcomes  # else the kills never tested the writes


# --- full disk and read-only output --------------------------------------------------------


def small_site(site: Site) -> dict[str, bytes]:
    """A site with a good build on disk; then every article changes. Returns the old files."""
    for n in range(1, 13):
        site.write(f"{n}.md", article(n=n, topics=["AI", f"Topic {n % 3}"]))
    # `feeds build` in this process: the build that fails is the one run as a process.
    result = CliRunner().invoke(main, ["--config", str(site.config_path), "build"])
    assert result.exit_code == 0, result.output
    before = on_disk(site.output)
    for n in range(1, 13):
        site.write(
            f"{n}.md", article(n=n, title=f"Changed story {n}", topics=["AI", f"Topic {n % 3}"])
        )
    return before


def limit_file_size(size: int):
    def limit() -> None:
        # What a full disk does to a writer: write() fails with EFBIG (not a signal).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def assert_one_line_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode != 0
    message = result.stderr.decode()
    assert message.count("\n") == 1, message
    assert "Traceback" not in message
    for word in words:
        assert word in message, message
    return message


def test_a_full_disk_fails_in_one_line_and_changes_nothing(site: Site):
    before = small_site(site)
    smallest = min(len(body) for body in before.values())

    result = subprocess.run(
        build_command(site),
        preexec_fn=limit_file_size(smallest // 2),
        env=no_bytecode_writes(),
        capture_output=True,
        timeout=60,
    )

    message = assert_one_line_failure(result, "cannot write the feeds", "File too large")
    assert str(site.output) in message  # the file it could not write
    assert on_disk(site.output) == before  # byte for byte, and no temp file left


def test_a_disk_that_fills_mid_build_leaves_whole_feeds_old_or_new(site: Site):
    before = small_site(site)
    after = Publisher(site.config_path).build().files
    # Files are written in path order: room for the first few, then one too big for it.
    order = [len(after[path].body) for path in sorted(after)]
    fits = next(k for k in range(1, len(order)) if order[k] > max(order[:k]))
    limit = max(order[:fits])

    result = subprocess.run(
        build_command(site),
        preexec_fn=limit_file_size(limit),
        env=no_bytecode_writes(),
        capture_output=True,
        timeout=60,
    )

    assert_one_line_failure(result, "cannot write the feeds", "File too large")
    found = on_disk(site.output)
    assert found.keys() == before.keys()  # no temp file left, no feed gone
    replaced = 0
    for path, body in feed_files(site.output).items():
        assert body in (before[path], after[path].body), path
        assert_complete(path, body)
        replaced += body != before[path]
    assert replaced  # the limit let some writes through
    # Room again: the next build writes everything.
    subprocess.run(build_command(site), check=True, capture_output=True, timeout=60)
    assert_exactly(site.output, after)


def _without_dac_override() -> None:
    """As root, drop the capability that lets root write where permissions say no."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_dac_override() -> bool:
    try:
        subprocess.run(["true"], preexec_fn=_without_dac_override, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def test_a_read_only_output_folder_fails_in_one_line_and_changes_nothing(site: Site):
    before = small_site(site)
    if os.geteuid() == 0 and not _can_drop_dac_override():
        pytest.skip("running as root without CAP_SETPCAP: permissions cannot stop root")
    folders = [site.output, *(p for p in site.output.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        result = subprocess.run(
            build_command(site),
            preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
            capture_output=True,
            timeout=60,
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)

    message = assert_one_line_failure(result, "cannot write the feeds", "Permission denied")
    assert str(site.output) in message and ".tmp" not in message  # a feed, not a temp file
    assert on_disk(site.output) == before


def test_an_output_folder_under_a_file_fails_in_one_line(site: Site):
    before = small_site(site)
    (site.root / "blocker").write_text("a file where a folder should be")

    result = subprocess.run(
        build_command(site, "--output", str(site.root / "blocker" / "public")),
        capture_output=True,
        timeout=60,
    )

    assert_one_line_failure(result, "blocker", "cannot write the feeds", "Not a directory")
    assert on_disk(site.output) == before


# --- a config broken while serving ---------------------------------------------------------


def _fetch(url: str) -> tuple[int, bytes, str]:
    with LOCAL.open(url, timeout=5) as response:
        return response.status, response.read(), response.headers["ETag"]


# how the config breaks: (a section replaced, or the whole text, or None: deleted; logged)
BREAKAGES = {
    "wrong type": ({"quality": {"min": "high"}}, "quality.min: expected a number"),
    "unknown key": ({"feeds": {"itmes": 5}}, "feeds.itmes"),
    "missing articles folder": (
        {"articles": {"folder": "nowhere"}},
        "articles.folder: no such folder",
    ),
    "bad YAML": ("site: [unclosed\n", "invalid YAML"),
    "config deleted": (None, "config.yaml: cannot read"),
}


RELOAD_INTERVAL = 0.05  # seconds between the server's looks at the config


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, dict, str, Path]]:
    """One `feeds serve` for every breakage (it takes longer to start than a test takes):
    its site, good config, base URL and log. Each test starts from the good config and
    leaves a valid one."""
    site = Site(tmp_path_factory.mktemp("live"))
    site.configure()
    for n in range(1, 6):
        site.write(f"{n}.md", article(n=n, quality=n * 20))
    good = yaml.safe_load(site.config_path.read_text())
    good["serve"] = {"reload_interval": RELOAD_INTERVAL}
    site.config_path.write_text(yaml.safe_dump(good))
    log = site.root / "serve.log"
    with serving(site.config_path, free_port(), log) as url:
        yield site, good, url, log


def _served_once(url: str, expected: bytes) -> bytes:
    """The feed at ``url`` once it is ``expected``, or what it still is after 10 s."""
    deadline = time.monotonic() + 10
    while (found := _fetch(url)[1]) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_config_broken_while_serving_keeps_the_last_good_feeds_until_fixed(
    live: tuple[Site, dict, str, Path], breakage: str
):
    site, good, url, log = live
    # The good config again, in place of the valid one the test before may have left.
    site.config_path.write_text(yaml.safe_dump(good))
    expected = Publisher(site.config_path).build().files["all.atom"].body
    assert _served_once(url + "all.atom", expected) == expected
    status, body, etag = _fetch(url + "all.atom")
    assert status == 200
    seen = log.stat().st_size  # what the server logs from here on is about this breakage

    def logged() -> str:
        return log.read_bytes()[seen:].decode()

    change, reason = BREAKAGES[breakage]
    if change is None:
        site.config_path.unlink()
    elif isinstance(change, str):
        site.config_path.write_text(change)
    else:
        site.config_path.write_text(yaml.safe_dump(dict(good, **change)))

    # Keeps answering with the last good bytes until the server has logged why.
    deadline = time.monotonic() + 10
    while "keeping the last good feeds" not in logged() and time.monotonic() < deadline:
        assert _fetch(url + "all.atom") == (200, body, etag)
        time.sleep(0.02)
    assert "ERROR" in logged() and "keeping the last good feeds" in logged(), logged()
    assert reason in logged(), logged()
    assert "Traceback" not in log.read_text()  # nor since the server started
    for _ in range(5):  # and after it, over as many looks at the config
        assert _fetch(url + "all.atom") == (200, body, etag)
        time.sleep(RELOAD_INTERVAL)

    # A valid edit is picked up: only the articles of quality 60 and more are left.
    site.config_path.write_text(yaml.safe_dump(dict(good, quality={"min": 60})))
    expected = Publisher(site.config_path).build().files["all.atom"].body
    found = _served_once(url + "all.atom", expected)
    assert found == expected
    assert len(feedparser.parse(found).entries) == 3
