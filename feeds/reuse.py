"""Rendering less: a rebuild reuses what the previous build rendered, and a one-off export
renders each file only when it is asked for.

Both wrap :class:`feeds.render.Renderer`, which knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime

from feeds.config import Config
from feeds.model import Article, Document, Feed, File, Rendered
from feeds.render import Renderer
from feeds.store import Store


class PreviousBuild:
    """What the previous build rendered, by path. A rebuild reuses the files of a document
    whose key and items are equal to last time's, as its bytes would be. Start each build
    with :meth:`start`, which forgets everything when the config or the store changed.

    With a :class:`feeds.store.Store`, each file is kept there as soon as it is rendered,
    and only its name and ETag stay in memory."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._store: Store | None = None
        self._old: dict[str, tuple[object, tuple[Article, ...], list[File]]] = {}
        self._new: dict[str, tuple[object, tuple[Article, ...], list[File]]] = {}

    def start(self, config: Config, store: Store | None = None) -> None:
        same = self._config is not None and self._config == config and self._store == store
        self._old = (self._new or self._old) if same else {}
        self._new = {}
        self._config = config
        self._store = store

    def keep(self, file: File) -> File:
        """``file``, kept in the store if there is one."""
        return self._store.put(file) if self._store else file

    def render_feeds(self, renderer: Renderer, feeds: Iterable[Feed]) -> Iterator[File]:
        """Every document of ``feeds`` in every format, the unchanged ones' files reused.
        Oldest first, like :class:`LazyFiles` and for the same reason."""
        docs = sorted(renderer.documents(feeds), key=_oldest)
        renderer.plan(doc for doc in docs if not self.has(doc.path, _doc_key(doc), doc.items))
        for doc in docs:
            yield from self.get(doc.path, _doc_key(doc), doc.items, renderer.render_list, doc)

    def has(self, path: str, key: object, items: tuple[Article, ...]) -> bool:
        old = self._old.get(path)
        # Cheap in the usual case: tuples compare the same object without calling __eq__,
        # and the parse cache keeps an unchanged file's article object.
        return (
            old is not None
            and old[0] == key
            and old[1] == items
            and (self._store is None or self._store.holds(old[2]))
        )

    def get(
        self,
        path: str,
        key: object,
        items: tuple[Article, ...],
        render: Callable[..., list[Rendered]],
        *args: object,
    ) -> list[File]:
        """The files of ``path`` from the previous build if it had the same key and items,
        else ``render(*args)``."""
        if self.has(path, key, items):
            files = self._old[path][2]
        else:
            files = [self.keep(r) for r in render(*args)]
        self._new[path] = (key, items, files)
        return files


def _doc_key(doc: Document) -> tuple:
    """What a document's bytes depend on, besides the config and its items."""
    return (doc.feed.spec, doc.links, doc.archive)


class LazyFiles(Mapping[str, File]):
    """The files of ``feeds`` (and ``extra`` ones), each document rendered when one of its
    files is asked for and kept only until another is: what a one-off export needs, in a
    fraction of the memory of all files at once.

    Iterated, documents come oldest first (by their oldest item), so that an article's
    pages in all its feeds (archive pages are slices of time) are rendered near each other
    and its entry is let go soon after it is made: in feed order, the all-articles feed's
    archive pages held every entry until the last provider feed."""

    def __init__(self, renderer: Renderer, feeds: Iterable[Feed], extra: Mapping[str, File]):
        self._renderer = renderer
        docs = sorted(renderer.documents(feeds), key=_oldest)
        renderer.plan(docs)
        names = [fmt.name for fmt in renderer.formats]
        self._docs = {f"{doc.path}.{name}": doc for doc in docs for name in names}
        self._extra = extra
        self._current: tuple[Document | None, dict[str, Rendered]] = (None, {})

    def __getitem__(self, path: str) -> File:
        if path in self._extra:
            return self._extra[path]
        doc = self._docs[path]
        if self._current[0] != doc:
            self._current = (doc, {r.path: r for r in self._renderer.render_list(doc)})
        return self._current[1][path]

    def __contains__(self, path: object) -> bool:  # without rendering, unlike Mapping's
        return path in self._docs or path in self._extra

    def __iter__(self) -> Iterator[str]:
        yield from self._docs
        yield from self._extra

    def __len__(self) -> int:
        return len(self._docs) + len(self._extra)


def _oldest(doc: Document) -> datetime:
    return doc.items[-1].published if doc.items else _BEGINNING


_BEGINNING = datetime.min.replace(tzinfo=UTC)
