"""The pipeline, end to end: config and article files → rendered feeds, with a parse cache.

Both the static export and the server publish a :class:`Snapshot`; the server keeps one
:class:`Publisher` alive so that a reload re-reads only the files that changed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType

from feeds import config as config_module
from feeds import memory, parallel
from feeds.config import Config
from feeds.errors import FeedsError, Problem
from feeds.files import Finder, file_stamp, find, path_order
from feeds.model import FORMAT_NAMES, Article, Feed, File
from feeds.pages import plan_pages, render_pages
from feeds.parallel import Renderers, renderers
from feeds.parsecache import ArticleCache, Track
from feeds.processes import alongside
from feeds.render import Renderer
from feeds.reuse import Done, LazyFiles, PreviousBuild
from feeds.select import Selection
from feeds.store import Kept, Store
from feeds.watch import Watcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything one build produced: the files by path, and what was skipped."""

    config: Config
    feeds: tuple[Feed, ...]
    files: Mapping[str, File]
    articles: int  # files read that became articles
    problems: tuple[Problem, ...]
    read: tuple[Article, ...] = ()  # those articles, for counts (feeds.stats)


class Publisher:
    """Builds snapshots for one config file, re-reading only changed article files."""

    def __init__(self, config_path: Path | str, stored: bool = False):
        self.config_path = Path(config_path)
        # Whether the rendered files are kept on disk (in output.folder) instead of memory.
        self.stored = stored
        self.cache = ArticleCache()  # parsed files; saved between processes by `feeds build`
        self._previous = PreviousBuild()  # what the last build rendered, for the next
        self._last: _Sources | None = None

    def load_config(self) -> Config:
        return config_module.load(self.config_path)

    def build(
        self,
        config: Config | None = None,
        track: Track | None = None,
        changed: Collection[str] | None = None,
        keep: bool = True,
        meanwhile: Callable[[tuple[Feed, ...]], object] | None = None,
    ) -> Snapshot:
        """See :meth:`_build`, run with the garbage collector paused; the memory it freed
        is given back to the system after it."""
        with paused_gc():
            snapshot = self._build(config, track, changed, keep, meanwhile)
        memory.release()
        return snapshot

    def _build(
        self,
        config: Config | None,
        track: Track | None,
        changed: Collection[str] | None,
        keep: bool,
        meanwhile: Callable[[tuple[Feed, ...]], object] | None,
    ) -> Snapshot:
        """Read, select and render. Raises ConfigError (before any work) on a bad config.

        ``track`` wraps the results of the files read, e.g. in a progress bar. ``changed``,
        from a :class:`feeds.watch.Watcher`, names the only article files that may have
        changed since the last build: no other file is looked at. It is not used after a
        change of config. Without ``keep``, the files are rendered as they are read from
        the snapshot and not kept (:class:`feeds.reuse.LazyFiles`): for one export, by a
        publisher that builds no more. A ``stored`` publisher keeps them on disk.
        ``meanwhile(feeds)`` is done while the feeds are rendered, once they are known
        (see :func:`feeds.processes.alongside`), and before this returns."""
        config = config or self.load_config()
        store = Store.of(config) if keep and self.stored else None
        with renderers(config, store) as many:
            sources = self._read(config, track, changed, many)
            feeds = tuple(sources.selection.feeds())
            renderer = Renderer(config)
            files: Mapping[str, File]
            if keep:
                previous = self._previous
                previous.start(config, store)
                if many is not None:
                    many.feeds = frozenset(feed.spec.path for feed in feeds)
                with alongside(partial(meanwhile, feeds) if meanwhile else None):
                    rendered = [*previous.render_feeds(renderer, feeds, many)]
                    rendered += render_pages(feeds, renderer, previous, many)
                files = MappingProxyType(
                    {r.path: previous.keep(r) for r in sorted(rendered, key=_path)}
                )
                log.info(
                    "rendered %d of %d documents (the others are unchanged)",
                    previous.rendered,
                    len(previous.done()),
                )
            else:
                files = LazyFiles(renderer, feeds, plan_pages(feeds, renderer))
        problems = sources.problems()
        for problem in problems:
            log.warning("%s", problem)
        articles = len(sources.results) + len(sources.skipped) - len(problems)
        read = tuple(_articles(sources.results.values()))
        return Snapshot(config, feeds, files, articles, problems, read)

    def _read(
        self,
        config: Config,
        track: Track | None,
        changed: Collection[str] | None,
        many: Renderers | None,
    ) -> _Sources:
        """The article files read (those ``changed`` only, where given and the config is the
        same); ``many`` forks its workers first where they are many."""
        sources = self._last if self._last and self._last.config == config else None
        self._last = None  # until this build is done: a failed one leaves its sources half-changed
        if sources is None or changed is None:
            sources = sources or _Sources(config)
            sources.read_all(self.cache, track, many)
        else:
            sources.read_changed(self.cache, changed)
        self._last = sources
        return sources

    def resume(self, config: Config, kept: Kept) -> None:
        """Reuse in the next build with ``config`` the files of the documents ``kept`` by
        an earlier process, where they are unchanged (a stored publisher only)."""
        store = Store.of(config)
        done = {p: Done(None, None, fp, list(files)) for p, (fp, files) in kept.docs.items()}
        self._previous.resume(config, store, done)

    def documents(self) -> dict[str, tuple[bytes, list[str]]]:
        """Each document of the last build, by path: its fingerprint and its files' paths
        (what :meth:`resume` needs)."""
        done = self._previous.done().items()
        return {path: (d.fingerprint, [f.path for f in d.files]) for path, d in done}

    def digest(self, article: Article) -> bytes:
        """:func:`feeds.reuse.digest` of ``article``, made once per build."""
        return self._previous.digest(article)

    def watchable(self, watcher: Watcher) -> bool:
        """Whether ``watcher`` sees every change to the files of the last build: not when
        they lie in folders reached through symbolic links, or the patterns use ``.``."""
        last = self._last
        return (
            last is not None
            and watcher.folder == last.config.articles_folder
            and last.finder.folders.keys() <= watcher.folders()
            and all(_plain(pattern) for pattern in last.finder.patterns)
        )

    def inputs(self) -> tuple:
        """A cheap fingerprint of the config and article files: it changes when they do."""
        stamps: list = [file_stamp(self.config_path)]
        try:
            config = self.load_config()
            paths, _ = find(config.articles_folder, config.articles.patterns)
        except FeedsError:  # a broken config or folder is picked up by the build that follows
            return tuple(stamps)
        return (*stamps, *((p, file_stamp(p)) for p in paths))


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a build makes millions of objects and almost no
    cycles, and with 100,000 articles alive each of its full passes took longer than the
    rest of a rebuild (or than writing the feeds and the parse cache after it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _articles(results: Iterable[Article | Problem]) -> list[Article]:
    return [r for r in results if isinstance(r, Article)]


def _plain(pattern: str) -> bool:
    return all(part not in ("", ".") for part in pattern.split("/"))


class _Sources:
    """The article files of the last build, what they held and the feeds they made."""

    def __init__(self, config: Config):
        self.config = config
        self.finder = Finder(config.articles_folder, config.articles.patterns)
        self.skipped: dict[str, Problem] = {}  # files passed over, by path
        self.results: dict[str, Article | Problem] = {}  # article files, by path
        self.selection = Selection(config)

    def read_all(
        self, cache: ArticleCache, track: Track | None, many: Renderers | None = None
    ) -> None:
        """Look at every file (reading those that changed). Where they are many, ``many``
        forks its workers first, while this process is small."""
        scan, skipped = self.finder.scan()
        if many is not None and len(scan.paths) in parallel.FORK_FOR:
            many.fork()
        self.skipped = {p.source: p for p in skipped}
        paths, stamps = scan.in_order()
        results = dict(zip(paths, cache.load(paths, track, stamps), strict=True))
        before, self.results = self.results, results
        self.selection.update(
            added=_articles(r for p, r in results.items() if before.get(p) is not r),
            removed=_articles(r for p, r in before.items() if results.get(p) is not r),
        )

    def read_changed(self, cache: ArticleCache, changed: Collection[str]) -> None:
        """Look at the files in ``changed`` only, and at the symbolic links, whose targets'
        changes a watcher names by the target's path."""
        members: list[str] = []
        gone: list[str] = []
        for path in {*changed, *self.finder.links}:
            found = self.finder.check(path)
            self.skipped.pop(path, None)
            if isinstance(found, Problem):
                self.skipped[path] = found
            if found == path:
                members.append(path)
            elif path in self.results:
                gone.append(path)
        fresh = cache.refresh(members, gone)
        new = {p: r for p, r in fresh.items() if self.results.get(p) is not r}
        old = [self.results.pop(p) for p in (*gone, *new) if p in self.results]
        self.results.update(new)
        self.selection.update(added=_articles(new.values()), removed=_articles(old))

    def problems(self) -> tuple[Problem, ...]:
        """What was passed over or could not be read, in path order."""
        unread = (r for r in self.results.values() if isinstance(r, Problem))
        return tuple(sorted([*self.skipped.values(), *unread], key=_problem_order))


def _problem_order(problem: Problem) -> str:
    return path_order(problem.source)


def public_urls(config: Config, paths: Iterable[str]) -> list[str]:
    """The public URLs of the feeds (not pages) among ``paths`` published with ``config``."""
    base = config.site.base_url
    return [base + p for p in paths if p.rpartition(".")[2] in FORMAT_NAMES]


def _path(rendered: File) -> str:
    return rendered.path
