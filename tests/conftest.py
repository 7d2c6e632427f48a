"""Shared fixtures: a site built in tmp_path with a config and articles the test writes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
import yaml

from feeds import parsecache
from feeds.cli import main
from feeds.publisher import Publisher

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "everyday-ai" / "articles"
BASE_URL = "https://feeds.example.org/"
# PyYAML's C emitter (libyaml), where it has one: ten times faster than its Python one, and
# byte for byte the same text for plain ASCII articles such as the bulk ones some tests write.
# Not for any text: it escapes emoji, breaks long lines elsewhere and writes some keys another
# way, and tests/test_hostile.py writes such text on purpose, so Site.write keeps PyYAML's.
FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SCRATCH = Path("/dev/shm")  # memory: tmpfs on Linux
SCRATCH_ROOM = 2 << 30  # bytes it must have free to hold the tests' folders


def _scratch_in_memory() -> None:
    """tmp_path and every temporary folder on SCRATCH when it has room, unless TMPDIR names a
    place: the tests make and delete tens of thousands of small files and folders (one site
    per hypothesis example), and on a disk mounted with ``discard`` each deletion waits for
    the device, a millisecond or more: tens of seconds of the run. The files are the same."""
    if os.environ.get("TMPDIR") or not os.access(SCRATCH, os.W_OK | os.X_OK):
        return
    stats = os.statvfs(SCRATCH)
    if stats.f_bavail * stats.f_frsize >= SCRATCH_ROOM:
        tempfile.tempdir = str(SCRATCH)  # read by pytest for tmp_path, when first asked


_scratch_in_memory()


def no_bytecode_writes() -> dict[str, str]:
    """The environment for a process whose writes fail on purpose: it would leave truncated
    files in the bytecode cache (see _bytecode_for_children) that later processes fail on."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="session", autouse=True)
def _bytecode_for_children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where PYTHONDONTWRITEBYTECODE is set, the Python processes the tests start (`python -m
    feeds`, bench/load.py: dozens) share a bytecode cache in this run's temporary folder
    instead of each compiling feeds and its dependencies again, 0.3 s apiece. The code run
    is the same; nothing is written in the work tree. A process run where writes fail (a
    file size limit) must not write to the cache: pass it no_bytecode_writes()."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield
        return
    patch = pytest.MonkeyPatch()
    patch.delenv("PYTHONDONTWRITEBYTECODE")
    patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.getbasetemp() / "pycache"))
    # Compiled from the start, beside the first tests, so that every process starts alike:
    # a build timed to aim kills at its writes (test_faults) must not be the one compiling.
    warm_up = [sys.executable, "-m", "feeds", "--help"]
    try:
        with started(warm_up, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            yield
    finally:
        patch.undo()


def article(**fields) -> dict:
    """Front matter of a valid article; keyword arguments override or (with None) remove."""
    n = fields.pop("n", 1)
    data = {
        "category": "news",
        "title": f"Story number {n}",
        "excerpt": f"What happened in story {n}.",
        "publishedDateTime": f"2023-06-{n:02d}T10:00:00Z",
        "webUrl": f"https://news.example.com/story-{n}",
        "type": "article",
        "quality": 50,
        "published": False,
        "provider": {"name": "Example News", "domain": "example.com"},
        "topics": ["AI"],
        "images": [{"url": f"https://img.example.com/{n}.jpg", "width": 800, "height": 450}],
        "secured": "SECRET-BLOB-" + "x" * 40,
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


@dataclass
class Site:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def articles(self) -> Path:
        return self.root / "articles"

    @property
    def output(self) -> Path:
        return self.root / "public"

    def configure(self, text: str = "", **sections) -> None:
        """Write config.yaml: the site basics, then ``text`` (YAML) or ``sections``."""
        data = {
            "site": {"title": "Test News", "base_url": BASE_URL},
            "articles": {"folder": "articles"},
            "output": {"folder": "public"},
        }
        data.update(sections)
        body = yaml.safe_dump(data, sort_keys=False)
        self.config_path.write_text(body + textwrap.dedent(text), encoding="utf-8")

    def write(
        self,
        name: str,
        fields: dict | None = None,
        raw: str | bytes | None = None,
        dumper: type = yaml.SafeDumper,
    ) -> Path:
        path = self.articles / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is None:
            text = yaml.dump(fields, Dumper=dumper, allow_unicode=True, sort_keys=False)
            raw = "---\n" + text + "---\n"
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        path.write_bytes(raw)
        return path

    def build(self):
        return Publisher(self.config_path).build()

    def feed(self, path: str) -> bytes:
        return self.build().files[path].body


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    s.articles.mkdir()
    s.configure()
    return s


@pytest.fixture
def news(site: Site, monkeypatch) -> Site:
    """Twelve articles over three topics and four providers, written "long ago": the parse
    cache trusts a file's stamp only once it is a few seconds old."""
    monkeypatch.setattr(parsecache, "TRUST_AFTER_NS", 0)
    for n in range(12):
        site.write(f"{n:02d}.md", story(n))
    return site


def story(n: int, **fields) -> dict:
    shape = {
        "topics": [f"Topic {n % 3}"],
        "provider": {"name": f"News {n % 4}", "domain": f"news{n % 4}.example.com"},
    }
    return article(n=n + 1, **{**shape, **fields})


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real articles when ../shared is there, else a small folder made here (once: the
    tests only read it)."""
    if CORPUS.is_dir():
        return CORPUS
    folder = tmp_path_factory.mktemp("corpus")
    for n in range(1, 29):
        fields = article(n=n, topics=["AI", f"Topic {n % 4}"], quality=n * 5 if n % 3 else None)
        text = "---\n" + yaml.safe_dump(fields, sort_keys=False) + "---\n"
        (folder / f"{n:03d}.md").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus_site(site, corpus):
    site.configure(articles={"folder": str(corpus)})
    return site


@pytest.fixture
def runner(site: Site):
    from click.testing import CliRunner

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["--config", str(site.config_path), *args])

    return invoke


# Straight to 127.0.0.1, whatever proxy the environment names.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started(command: Sequence, *, grace: float = 0, **options) -> Iterator[subprocess.Popen]:
    """``command`` as a process for the block (``options`` as for Popen). However the block
    ends, a failed assert or a timeout included, the process is stopped and waited for and
    its pipes are closed: first with SIGTERM and ``grace`` seconds to exit, then SIGKILL.
    (A process left running fails a later test with a ResourceWarning.)"""
    with subprocess.Popen(command, **options) as process:  # on exit: pipes closed, waited for
        try:
            yield process
        finally:
            if grace and process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(grace)
            if process.poll() is None:
                process.kill()
                process.wait()  # here too, as Popen's exit skips it on a KeyboardInterrupt


@contextlib.contextmanager
def serving(config_path: Path, port: int, log_path: Path, *options: str, timeout: float = 30):
    """`feeds serve` as a real process on 127.0.0.1:port; yields its base URL once its feeds
    are loaded (GET /healthz answers 200), and always stops it."""
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "feeds", "--config", str(config_path), *options, "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with (
        log_path.open("wb") as log,
        started(
            command, grace=10, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent
        ) as process,
    ):
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"feeds serve exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                with LOCAL.open(url + "healthz", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if isinstance(e, urllib.error.HTTPError):
                    e.close()  # 503: still loading
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"feeds serve did not answer in {timeout} s:\n{log_path.read_text()}"
                    )
                time.sleep(0.05)
        yield url


# The app under test: two articles, served by create_app.

FIRST = "Robots learn to fold laundry"
SECOND = "A chatbot passes the bar exam"
THIRD = "Chips get smaller again"


def titles(body: bytes) -> list[str]:
    """Entry titles of a feed, newest first; fails if a feed reader would balk at it."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [entry.title for entry in parsed.entries]


@pytest.fixture
def app(site):
    from feeds.web import create_app  # here: importing this module stays free of Flask

    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    return create_app(site.config_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, str]]:
    """`feeds serve` on a free port of 127.0.0.1, one per test module, for the tests that
    only send it requests (starting one takes longer than they do): its site, and its base
    URL once it answers."""
    site = Site(tmp_path_factory.mktemp("served"))
    site.articles.mkdir()
    site.configure()
    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    with serving(site.config_path, free_port(), site.root / "serve.log") as url:
        yield site, url


@pytest.fixture
def server(served: tuple[Site, str]) -> str:
    return served[1]
