"""Rendering less: a rebuild reuses what the previous build rendered, and a one-off export
renders each file only when it is asked for.

Both wrap :class:`feeds.render.Renderer`, which knows nothing of them.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from feeds.config import Config
from feeds.html import Page
from feeds.model import Article, Document, Feed, File, Rendered
from feeds.parsecache import freeze
from feeds.render import Renderer
from feeds.store import Store

if TYPE_CHECKING:
    from feeds.parallel import Renderers

# Items of the documents to render for worker processes to render them (feeds.parallel):
# fewer take less time than the workers take to start. Cold builds, RSS only, side by side:
# 0.92 of the wall time at 10,000 generated articles (5,700 items), 1.05 at 6,000 (3,900),
# 1.17 at 3,000 (2,400); each time some 15-45% more CPU.
LEAST = 5_000


@dataclass(frozen=True)
class Done:
    """What one document (or page) rendered, and from what."""

    key: object
    items: tuple[Article, ...] | None  # None when known by fingerprint only (another process's)
    fingerprint: bytes  # of key and items
    files: list[File]


class PreviousBuild:
    """What the previous build rendered, by path. A rebuild reuses the files of a document
    whose key and items are equal to last time's, as its bytes would be. Start each build
    with :meth:`start`, which forgets everything when the config or the store changed.

    With a :class:`feeds.store.Store`, each file is kept there as soon as it is rendered,
    and only its name and ETag stay in memory; and what an earlier process kept there is
    reused too (:meth:`resume`), told by a fingerprint of each document's key and items."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._store: Store | None = None
        self._old: dict[str, Done] = {}
        self._new: dict[str, Done] = {}
        self._digests: dict[int, bytes] = {}  # id(article) → digest, for one build
        self.rendered = 0  # documents the current build rendered (the others were reused)
        # What a renderer of pages carries from one build to the next, by its own key
        # (forgotten with the rest when the config or the store changes).
        self.carried: dict[object, object] = {}

    def resume(self, config: Config, store: Store, done: dict[str, Done]) -> None:
        """Reuse, in the next build with ``config`` and ``store``, what ``done`` lists."""
        self._config, self._store, self._new = config, store, done

    def start(self, config: Config, store: Store | None = None) -> None:
        same = self._config is not None and self._config == config and self._store == store
        self._old = (self._new or self._old) if same else {}
        if not same:
            self.carried = {}
        self._new = {}
        self._digests = {}
        self.rendered = 0
        self._config = config
        self._store = store

    def done(self) -> Mapping[str, Done]:
        """What the last build rendered, by path."""
        return self._new

    def keep(self, file: File) -> File:
        """``file``, kept in the store if there is one."""
        return self._store.put(file) if self._store else file

    def render_feeds(
        self, renderer: Renderer, feeds: Iterable[Feed], many: Renderers | None = None
    ) -> Iterator[File]:
        """Every document of ``feeds`` in every format, the unchanged ones' files reused.
        In the order of their middle items, like :class:`LazyFiles` and for the same
        reason. The others are rendered by ``many`` where there are enough of them (with
        their pages)."""
        docs = sorted(renderer.documents(feeds), key=_middle)
        # Looked up once: a fingerprint and a look at the stored files each.
        found = [(doc, self._reusable(doc.path, doc_key(doc), doc.items)) for doc in docs]
        fresh = [doc for doc, done in found if done is None]
        rendered: Iterator[Sequence[File]]
        if many is not None and sum(len(doc.items) for doc in fresh) >= LEAST:
            rendered = many.documents(fresh)
        else:
            renderer.plan(fresh)
            rendered = map(renderer.render_list, fresh)
        for doc, done in found:
            files = next(rendered) if done is None else []
            yield from self._take(doc.path, doc_key(doc), doc.items, done, list, files)

    def get(
        self,
        path: str,
        key: object,
        items: tuple[Article, ...],
        render: Callable[..., Iterable[File]],
        *args: object,
    ) -> list[File]:
        """The files of ``path`` from the previous build if it had the same key and items,
        else ``render(*args)``."""
        return self._take(path, key, items, self._reusable(path, key, items), render, *args)

    def _take(
        self,
        path: str,
        key: object,
        items: tuple[Article, ...],
        done: Done | None,
        render: Callable[..., Iterable[File]],
        *args: object,
    ) -> list[File]:
        """The files of ``done`` (what :meth:`_reusable` found), else ``render(*args)``."""
        if done is None:
            files = [self.keep(r) for r in render(*args)]
            self.rendered += 1
            done = Done(key, items, self._fingerprint(key, items), files)
        elif done.items is None:
            done = Done(key, items, done.fingerprint, done.files)
        self._new[path] = done
        return done.files

    def _reusable(self, path: str, key: object, items: tuple[Article, ...]) -> Done | None:
        old = self._old.get(path)
        if old is None:
            return None
        if old.items is None:
            same = old.fingerprint == self._fingerprint(key, items)
        else:
            # Cheap in the usual case: tuples compare the same object without calling
            # __eq__, and the parse cache keeps an unchanged file's article object.
            same = old.key == key and old.items == items
        if same and (self._store is None or self._store.holds(old.files)):
            return old
        return None

    def _fingerprint(self, key: object, items: tuple[Article, ...]) -> bytes:
        return fingerprint(key, map(self.digest, items))

    def digest(self, article: Article) -> bytes:
        """:func:`digest` of ``article``, made once per build (by whichever thread asks
        first: made twice, it is the same)."""
        if (known := self._digests.get(id(article))) is None:
            known = self._digests[id(article)] = digest(article)
        return known


def digest(article: Article) -> bytes:
    """What identifies an article's content: equal articles have equal digests, in every
    process. Made from its plain values in marshal's first format, which (unlike later ones)
    writes a value the same way whatever its object's sharing and interning: in half the
    time of the article's repr."""
    return hashlib.blake2b(marshal.dumps(freeze(article), 0), digest_size=16).digest()


def fingerprint(key: object, digests: Iterable[bytes]) -> bytes:
    """A document's fingerprint: of its key (whose repr is the same in every process) and
    the :func:`digest` of each of its items."""
    found = hashlib.blake2b(repr(key).encode(), digest_size=16)
    for known in digests:
        found.update(known)
    return found.digest()


def doc_key(doc: Document) -> tuple:
    """What a document's bytes depend on, besides the config and its items."""
    return (doc.feed.spec, doc.links, doc.archive)


class LazyFiles(Mapping[str, File]):
    """The files of ``feeds`` and ``pages``, each document or page rendered when one of its
    files is asked for and kept only until another is: what a one-off export needs, in a
    fraction of the memory of all files at once.

    Iterated, documents come in the order of their middle items' dates, so that an
    article's pages in all its feeds (archive pages are slices of time) are rendered near
    each other and its entry is let go soon after it is made: in feed order, the
    all-articles feed's archive pages held every entry until the last provider feed. By
    the middle item, not the oldest: a slow feed's newest page reaches years back, and
    placed by its oldest item it would keep the entries it shares with other feeds alive
    from then until now."""

    def __init__(self, renderer: Renderer, feeds: Iterable[Feed], pages: Iterable[Page]):
        self._renderer = renderer
        docs = sorted(renderer.documents(feeds), key=_middle)
        renderer.plan(docs)
        names = [fmt.name for fmt in renderer.formats]
        self._docs = {f"{doc.path}.{name}": doc for doc in docs for name in names}
        self._pages = {page.path: page for page in pages}
        self._current: tuple[Document | None, dict[str, Rendered]] = (None, {})

    def __getitem__(self, path: str) -> File:
        if path in self._pages:
            return self._pages[path].make()
        doc = self._docs[path]
        if self._current[0] != doc:
            self._current = (doc, {r.path: r for r in self._renderer.render_list(doc)})
        return self._current[1][path]

    def __contains__(self, path: object) -> bool:  # without rendering, unlike Mapping's
        return path in self._docs or path in self._pages

    def __iter__(self) -> Iterator[str]:
        yield from self._docs
        yield from self._pages

    def __len__(self) -> int:
        return len(self._docs) + len(self._pages)


def _middle(doc: Document) -> datetime:
    return doc.items[len(doc.items) // 2].published if doc.items else _BEGINNING


_BEGINNING = datetime.min.replace(tzinfo=UTC)
