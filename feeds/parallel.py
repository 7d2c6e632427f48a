"""Rendering on every core: the documents a build renders (and their pages) handed to
worker processes, which keep each file in the store and send back only its name.

The documents, in the order one process renders them (by their middle items' dates), are
cut in one lane of neighbours per core, so that an article's documents mostly lie in one
lane. Each lane has a worker process of its own, sent its documents a run at a time with
the articles they hold that it was not sent yet (frozen, as the parse workers send
theirs); it keeps an article, and its entry, until its last document in the lane.
Nothing is shared by forking after the parse: at a million articles a copy of the pages
each worker touched would not fit. The workers are forked before it
(:meth:`Renderers.fork`) where the files are many, else spawned. Used by
:class:`feeds.reuse.PreviousBuild` and :func:`feeds.pages.render_pages` through
:class:`Renderers`; they render in this process when it is not given, and so do they for
a few documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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

# Article files for which a build forks its workers before the parse: from some 2,000
# articles they render (feeds.reuse.LEAST items); past 200,000 their imports are under 1%
# of the build, and forked after the listing of the files each would count it as its own
# (at 1,000,000, 3.7 GiB summed over the processes instead of 3.3).
FORK_FOR = range(2000, 200_000)
ITEMS_PER_TASK = 4000  # items of the documents sent to a worker at once
TASKS_AHEAD = 2  # tasks a worker is sent ahead of its results: a bound on memory

# A document for a worker: feed spec, number of the feed's newest article, numbers of its
# items, path, links, archive, the feed's count of items (for its page).
_Job = tuple
# A task: the articles new to the worker (number, frozen, documents of the lane that hold
# it), the jobs, and the numbers of the articles the lane no longer needs after them.
_Task = tuple[list[tuple[int, tuple, int]], list[_Job], list[int]]


class Renderers:
    """Worker processes that render documents and their pages into ``store``, one per
    lane of each batch of documents (of :data:`feeds.reuse.LEAST` items or more)."""

    def __init__(self, config: Config, store: Store):
        self._config = config
        self._store = store
        self.feeds: frozenset[str] = frozenset()  # every feed's path: where pages link
        self._workers: list[ProcessPoolExecutor] = []
        self._forked: list[ProcessPoolExecutor] = []  # started early, not used yet
        self._pages: dict[str, list[File]] = {}  # rendered pages not taken yet, by path

    def fork(self) -> None:
        """Start a worker per core now, before this process grows (before the parse): forked
        then, they start at once with every module imported and share none of what it comes
        to hold. Spawned when the render starts, each would first import what it runs,
        while the render waits."""
        self._forked = [ProcessPoolExecutor(1, mp_context=context()) for _ in range(cores())]
        for worker in self._forked:
            worker.submit(os.getpid)  # a forked pool's process starts with its first task

    def documents(self, docs: Sequence[Document]) -> Iterator[list[File]]:
        """The files of each of ``docs``, in order; their pages are kept for :meth:`page`."""
        lanes = _lanes(docs, cores())
        workers = self._start(len(lanes))
        tasks = [_tasks(lane) for lane in lanes]
        sent: list[list[tuple[list[Document], Future]]] = [[] for _ in lanes]
        waiting: dict[Future, int] = {}

        def send(k: int) -> None:
            while list(waiting.values()).count(k) < TASKS_AHEAD:
                task = next(tasks[k], None)
                if task is None:
                    return
                run, payload = task
                future = workers[k].submit(_render, *payload)
                sent[k].append((run, future))
                waiting[future] = k

        for k in range(len(lanes)):
            send(k)
        while waiting:
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # a worker's error, at once
                send(waiting.pop(future))
        for lane in sent:
            for run, future in lane:
                for doc, (files, page) in zip(run, future.result(), strict=True):
                    if page is not None:
                        self._pages[f"{doc.path}.html"] = [self._stored(*page)]
                    yield [self._stored(*f) for f in files]

    def page(self, path: str) -> list[File] | None:
        """The files of the page at ``path`` if a worker rendered it (once)."""
        return self._pages.pop(path, None)

    def close(self) -> None:
        _shut([*self._forked, *self._workers])
        self._forked, self._workers = [], []

    def _start(self, count: int) -> list[ProcessPoolExecutor]:
        """``count`` worker processes, each for one lane (of this batch only: a worker
        keeps a lane's articles): those forked early, else new ones."""
        _shut(self._workers)
        taken, self._forked = self._forked[:count], self._forked[count:]
        spawned = count - len(taken)
        self._workers = [
            *taken,
            *(ProcessPoolExecutor(1, mp_context=context(grown=True)) for _ in range(spawned)),
        ]
        started = [
            worker.submit(_start_worker, self._config, self._store.folder, self.feeds)
            for worker in self._workers
        ]
        for future in started:
            future.result()  # its error, at once
        return self._workers

    def _stored(self, path: str, media_type: str, etag: str) -> Stored:
        return Stored(path, media_type, etag, self._store)


@contextmanager
def renderers(config: Config, store: Store | None) -> Iterator[Renderers | None]:
    """:class:`Renderers` for a build that keeps its files in ``store``; None where there
    is no store or one core."""
    if store is None or cores() < 2:
        yield None
        return
    pool = Renderers(config, store)
    try:
        yield pool
    finally:
        pool.close()


def _shut(workers: list[ProcessPoolExecutor]) -> None:
    for worker in workers:
        worker.shutdown(cancel_futures=True)


def _lanes(docs: Sequence[Document], count: int) -> list[list[Document]]:
    """``docs`` cut in at most ``count`` runs of neighbours with about as much work each
    (:func:`_work`): in two, where each side's work is in proportion to its share of the
    lanes, and each side cut again."""
    if count < 2 or len(docs) < 2:
        return [list(docs)] if docs else []
    first = count // 2
    before = _work(docs)  # of docs[:k]
    after = _work(docs[::-1])[::-1]  # of docs[k:]
    cut = min(range(1, len(docs)), key=lambda k: max(before[k] / first, after[k] / (count - first)))
    return _lanes(docs[:cut], first) + _lanes(docs[cut:], count - first)


def _work(docs: Sequence[Document]) -> list[int]:
    """The work of rendering the first k of ``docs`` in one lane, for each k: an entry per
    article they hold, made once in the lane, and each document's own, counted as two
    entries' worth. An item costs next to nothing, however few the document holds. A
    document with its page costs more than two entries, but on the documents of
    ``bench/run.py``'s corpora the lanes came within a few percent of even either way."""
    held: set[int] = set()
    work = [0]
    for k, doc in enumerate(docs, 1):
        held.update(map(id, doc.items))
        work.append(len(held) + 2 * k)
    return work


def _tasks(lane: list[Document]) -> Iterator[tuple[list[Document], _Task]]:
    """The lane in runs of about :data:`ITEMS_PER_TASK` items, each with its task."""
    runs = list(_runs(lane, ITEMS_PER_TASK))
    sender = _Sender(runs)
    for r, run in enumerate(runs):
        yield run, sender.task(r, run)


class _Sender:
    """What a lane's worker was sent: each article's number in the lane, the documents
    that hold it as an item (its entry's uses) and the run after which it is not needed
    (its feed's newest article is needed too, for the feed's date)."""

    def __init__(self, runs: list[list[Document]]):
        self._numbers: dict[int, int] = {}
        self._count = 0  # articles numbered
        self._uses: dict[int, int] = {}
        self._last: dict[int, int] = {}
        for r, run in enumerate(runs):
            for doc in run:
                self._last[id(doc.feed.items[0])] = r
                for article in doc.items:
                    self._uses[id(article)] = self._uses.get(id(article), 0) + 1
                    self._last[id(article)] = r

    def task(self, r: int, run: list[Document]) -> _Task:
        new: list[tuple[int, tuple, int]] = []
        gone: dict[int, int] = {}  # the number of each article not needed after this run

        def number(article: Article) -> int:
            key = id(article)
            found = self._numbers.get(key)
            if found is None:
                found = self._numbers[key] = self._count
                self._count += 1
                new.append((found, freeze(article), self._uses.pop(key, 0)))
            if self._last[key] == r:
                gone[key] = found
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
        for key in gone:  # not needed again: forgotten here too
            del self._last[key], self._numbers[key]
        return new, jobs, sorted(gone.values())


def _runs(docs: Sequence[Document], size: int) -> Iterator[list[Document]]:
    """``docs`` cut in runs of neighbours, each closed once it holds ``size`` items (each
    document counted as its items and one)."""
    run: list[Document] = []
    items = 0
    for doc in docs:
        run.append(doc)
        items += len(doc.items) + 1
        if items >= size:
            yield run
            run, items = [], 0
    if run:
        yield run


# In a worker process ---------------------------------------------------------------------

_worker: tuple[Renderer, Store, frozenset[str], dict[int, Article]] | None = None


def _start_worker(config: Config, store: Path, feeds: frozenset[str]) -> None:
    global _worker
    _worker = (Renderer(config), Store(store), feeds, {})


def _render(
    new: list[tuple[int, tuple, int]], jobs: list[_Job], gone: list[int]
) -> list[tuple[list[tuple], tuple | None]]:
    """Each document's files and its page's (None without pages), kept in the store:
    (path, media type, ETag)."""
    assert _worker is not None
    renderer, store, feeds, articles = _worker
    for number, frozen, uses in new:
        article = thaw(frozen)
        assert isinstance(article, Article)
        articles[number] = article
        renderer.expect(article, uses)
    leads = Leads(feeds)
    common = common_context(renderer) if renderer.config.feeds.pages else None
    done = []
    for spec, newest, items, path, links, archive, stories in jobs:
        # All a document needs of its feed: the spec, and for the newest page its date.
        feed = Feed(spec, (articles[newest],))
        doc = Document(feed, tuple(articles[n] for n in items), path, links, archive)
        files = [_name(store.put(r)) for r in renderer.render_list(doc)]
        page = None
        if common is not None:
            page = _name(store.put(feed_page(doc, stories, leads, common).make()))
        done.append((files, page))
    for number in gone:
        del articles[number]
    return done


def _name(file: Stored) -> tuple[str, str, str]:
    return (file.path, file.media_type, file.etag)
