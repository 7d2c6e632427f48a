"""Shared fixtures: a site built in tmp_path with a config and articles the test writes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
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

    def write(self, name: str, fields: dict | None = None, raw: str | bytes | None = None) -> Path:
        path = self.articles / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is None:
            raw = "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False) + "---\n"
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


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The real articles when ../shared is there, else a small folder made here."""
    if CORPUS.is_dir():
        return CORPUS
    folder = tmp_path / "corpus"
    folder.mkdir()
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
def serving(config_path: Path, port: int, log_path: Path, *options: str, timeout: float = 30):
    """`feeds serve` as a real process on 127.0.0.1:port; yields its base URL once its feeds
    are loaded (GET /healthz answers 200), and always stops it."""
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "feeds", "--config", str(config_path), *options, "serve"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
    try:
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
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


@pytest.fixture
def server(site, tmp_path: Path):
    """`feeds serve` on a free port of 127.0.0.1; yields its base URL once it answers."""
    site.write("first.md", article(n=1, title=FIRST))
    site.write("second.md", article(n=2, title=SECOND))
    with serving(site.config_path, free_port(), tmp_path / "serve.log") as url:
        yield url
