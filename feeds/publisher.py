"""The pipeline, end to end: config and article files → rendered feeds, with a parse cache.

Both the static export and the server publish a :class:`Snapshot`; the server keeps one
:class:`Publisher` alive so that a reload re-reads only the files that changed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from feeds import config as config_module
from feeds.articles import ArticleCache, Stamp, Track, find
from feeds.config import Config
from feeds.errors import FeedsError, Problem
from feeds.model import Article, Feed, Rendered
from feeds.pages import render_pages
from feeds.render import FORMATS, Memo, Renderer
from feeds.select import select

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything one build produced: the files by path, and what was skipped."""

    config: Config
    feeds: tuple[Feed, ...]
    files: Mapping[str, Rendered]
    articles: int  # files read that became articles
    problems: tuple[Problem, ...]


class Publisher:
    """Builds snapshots for one config file, re-reading only changed article files."""

    def __init__(self, config_path: Path | str):
        self.config_path = Path(config_path)
        self.cache = ArticleCache()  # parsed files; feeds.cache saves it between processes
        self._memo = Memo()

    def load_config(self) -> Config:
        return config_module.load(self.config_path)

    def build(self, config: Config | None = None, track: Track | None = None) -> Snapshot:
        """See :meth:`_build`. The cyclic garbage collector is paused meanwhile: a build
        makes millions of objects and almost no cycles, and with 100,000 articles alive each
        of its full passes took longer than the rest of a rebuild."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._build(config, track)
        finally:
            if collecting:
                gc.enable()

    def _build(self, config: Config | None, track: Track | None) -> Snapshot:
        """Read, select and render. Raises ConfigError (before any work) on a bad config.

        ``track`` wraps the results of the files read, e.g. in a progress bar."""
        config = config or self.load_config()
        paths, problems = find(config.articles_folder, config["articles.patterns"])
        articles: list[Article] = []
        for result in self.cache.load(paths, track):
            (problems if isinstance(result, Problem) else articles).append(result)
        feeds = tuple(select(articles, config))
        renderer = Renderer(config)
        self._memo.start(config)
        files = {r.path: r for r in renderer.render_all(feeds, self._memo)}
        files.update((r.path, r) for r in render_pages(feeds, renderer, self._memo))
        for problem in problems:
            log.warning("%s", problem)
        return Snapshot(config, feeds, MappingProxyType(files), len(articles), tuple(problems))

    def inputs(self) -> tuple:
        """A cheap fingerprint of the config and article files: it changes when they do."""
        stamps: list = [_stamp(self.config_path)]
        try:
            config = self.load_config()
            paths, _ = find(config.articles_folder, config["articles.patterns"])
        except FeedsError:  # a broken config or folder is picked up by the build that follows
            return tuple(stamps)
        return (*stamps, *((p, _stamp(p)) for p in paths))


def _stamp(path: str | Path) -> Stamp | None:
    try:
        return Stamp.of(path)
    except OSError:
        return None


_FEED_TYPES = {f.media_type for f in FORMATS.values()}


def feed_urls(snapshot: Snapshot, paths: Iterable[str]) -> list[str]:
    """The public URLs of the feeds (not pages) among ``paths`` of ``snapshot``."""
    base = snapshot.config["site.base_url"]
    return [base + p for p in paths if snapshot.files[p].media_type in _FEED_TYPES]
