"""Rendering on every core: the documents a build renders (and their pages) handed to
worker processes, which keep each file in the store and send back only its name.

A worker is sent runs of neighbouring documents (oldest first, as one process renders
them: an article's documents lie near each other, and its entry is made once per run)
with just the articles they hold, frozen as the parse workers send theirs. Nothing is
shared by forking after the parse: at a million articles a copy of the pages each worker
touched would not fit. Used by :class:`feeds.reuse.PreviousBuild` and
:func:`feeds.pages.render_pages` through :class:`Renderers`; they render in this process
when it is not given, and so does it for a few documents.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from feeds.config import Config
from feeds.feed_pages import Leads, feed_page
from feeds.model import Article, Document, Feed, File
from feeds.pages import common_context
from feeds.parsecache import freeze, thaw
from feeds.processes import context, cores
from feeds.render import Renderer
from feeds.store import Store, Stored

ITEMS_PER_TASK = 4000  # items of the documents sent to a worker at once
TASKS_PER_WORKER = 2  # tasks sent ahead of the results taken: a bound on memory

# A document for a worker: feed spec, index of the feed's newest article, indices of its
# items, path, links, archive, the feed's number of items (for its page).
_Job = tuple


class Renderers:
    """Worker processes that render documents and their pages into ``store``: started at
    the first batch of documents given (see :data:`feeds.reuse.LEAST`), stopped by
    :meth:`close`."""

    def __init__(self, config: Config, store: Store, feeds: Iterable[str]):
        self._config = config
        self._store = store
        self._feeds = frozenset(feeds)  # every feed's path: where a page's links lead
        self._pool: ProcessPoolExecutor | None = None
        self._pages: dict[str, list[File]] = {}  # rendered pages not taken yet, by path

    def documents(self, docs: Sequence[Document]) -> Iterator[list[File]]:
        """The files of each of ``docs``, in order; their pages are kept for :meth:`page`."""
        pending: deque[tuple[list[Document], Future]] = deque()
        tasks = _tasks(docs)
        pool = self._start()
        while True:
            while len(pending) < TASKS_PER_WORKER * cores() and (task := next(tasks, None)):
                run, payload = task
                pending.append((run, pool.submit(_render, *payload)))
            if not pending:
                return
            run, future = pending.popleft()
            for doc, (files, page) in zip(run, future.result(), strict=True):
                self._pages[f"{doc.path}.html"] = [self._stored(*page)]
                yield [self._stored(*f) for f in files]

    def page(self, path: str) -> list[File] | None:
        """The files of the page at ``path`` if a worker rendered it (once)."""
        return self._pages.pop(path, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                cores(),
                mp_context=context(),
                initializer=_start_worker,
                initargs=(self._config, self._store.folder, self._feeds),
            )
        return self._pool

    def _stored(self, path: str, media_type: str, etag: str) -> Stored:
        return Stored(path, media_type, etag, self._store)


@contextmanager
def renderers(
    config: Config, store: Store | None, feeds: Iterable[Feed]
) -> Iterator[Renderers | None]:
    """:class:`Renderers` for a build that keeps its files in ``store``; None where there
    is no store or one core."""
    if store is None or cores() < 2:
        yield None
        return
    pool = Renderers(config, store, (feed.spec.path for feed in feeds))
    try:
        yield pool
    finally:
        pool.close()


def _tasks(docs: Sequence[Document]) -> Iterator[tuple[list[Document], tuple]]:
    """Runs of ``docs`` of about :data:`ITEMS_PER_TASK` items, each with what a worker
    needs to render it: the articles its documents hold, frozen, and a job per document."""
    run: list[Document] = []
    items = 0
    for doc in docs:
        run.append(doc)
        items += len(doc.items) + 1
        if items >= ITEMS_PER_TASK:
            yield run, _payload(run)
            run, items = [], 0
    if run:
        yield run, _payload(run)


def _payload(run: list[Document]) -> tuple[list[tuple], list[_Job]]:
    index: dict[int, int] = {}
    frozen: list[tuple] = []

    def number(article: Article) -> int:
        found = index.get(id(article))
        if found is None:
            found = index[id(article)] = len(frozen)
            frozen.append(freeze(article))
        return found

    jobs = [
        (
            doc.feed.spec,
            number(doc.feed.items[0]),
            tuple(map(number, doc.items)),
            doc.path,
            doc.links,
            doc.archive,
            len(doc.feed.items),
        )
        for doc in run
    ]
    return frozen, jobs


# In a worker process ---------------------------------------------------------------------

_worker: tuple[Renderer, Store, frozenset[str]] | None = None


def _start_worker(config: Config, store: Path, feeds: frozenset[str]) -> None:
    global _worker
    _worker = (Renderer(config), Store(store), feeds)


def _render(frozen: list[tuple], jobs: list[_Job]) -> list[tuple[list[tuple], tuple]]:
    """Each document's files and its page's, kept in the store: (path, media type, ETag)."""
    assert _worker is not None
    renderer, store, feeds = _worker
    articles = [thaw(f) for f in frozen]
    docs = []
    for spec, newest, items, path, links, archive, stories in jobs:
        # All a document needs of its feed: the spec, and for the newest page its date.
        feed = Feed(spec, (articles[newest],))
        docs.append(
            (Document(feed, tuple(articles[n] for n in items), path, links, archive), stories)
        )
    renderer.plan(doc for doc, _ in docs)
    leads = Leads(feeds)
    common = common_context(renderer)
    done = []
    for doc, stories in docs:
        files = [store.put(r) for r in renderer.render_list(doc)]
        page = store.put(feed_page(doc, stories, leads, common).make())
        done.append(([_name(f) for f in files], _name(page)))
    return done


def _name(file: Stored) -> tuple[str, str, str]:
    return (file.path, file.media_type, file.etag)
