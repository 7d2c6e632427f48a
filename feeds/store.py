"""Rendered files kept on disk by their content, and an index of the files served: what
lets ``feeds serve`` hold its files' names and validators in memory instead of their bytes,
and start again from its last run's files in seconds.

A body is written once, under a name made from its ETag, and never changed: a reader finds
the bytes it was promised or none (see :class:`Missing`). Several servers may share one
store; each removes only what neither its current files nor its previous ones use.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path

import feeds
from feeds.config import Config
from feeds.errors import OutputError
from feeds.export import write_atomically
from feeds.model import File

log = logging.getLogger(__name__)

STORE = ".feeds-store"  # in output.folder, beside the parse cache
INDEX = "index"  # plain values, written with marshal
_OLD_INDEX = "index.json"  # what versions before the incremental build wrote instead
_TEMP_PREFIX = ".tmp-"
# A temp file this old was left by a process killed while writing it (writes take ms).
STALE_TEMP = 3600  # seconds
# The libraries whose output is in the bodies: another version may render other bytes.
_RENDERING = ("feedgen", "lxml", "jinja2")


class Missing(OSError):
    """A stored body is gone: the store was removed or cleared under the server."""


class Stored:
    """A rendered file whose body lies in a :class:`Store`, read when it is asked for."""

    __slots__ = ("path", "media_type", "etag", "_store")

    def __init__(self, path: str, media_type: str, etag: str, store: Store):
        self.path = path
        self.media_type = media_type
        self.etag = etag
        self._store = store

    @property
    def body(self) -> bytes:
        return self._store.read(self.etag)

    @property
    def source(self) -> Path:
        """The file that holds the body (see :class:`feeds.model.OnDisk`)."""
        return self._store._file(self.etag)

    def __repr__(self) -> str:
        return f"Stored({self.path!r}, {self.etag})"


@dataclass(frozen=True)
class Kept:
    """What a server kept for the next one (see :meth:`Store.save`)."""

    files: dict[str, Stored]
    dates: dict[str, datetime]
    docs: dict[str, tuple[bytes, list[Stored]]]


@dataclass(frozen=True)
class Store:
    """The bodies under ``folder``, each in a file named by its ETag; and the index."""

    folder: Path

    @classmethod
    def of(cls, config: Config) -> Store:
        """The store in ``config``'s output folder."""
        return cls(config.output_folder / STORE)

    def put(self, file: File) -> Stored:
        """Keep ``file``'s body (unless it is kept already); the file that reads it."""
        if isinstance(file, Stored) and file._store == self:
            return file
        target = self._file(file.etag)
        if not target.exists():
            try:
                _write(target, file.body)
            except OSError as e:
                where = e.filename or self.folder
                raise OutputError(f"{where}: cannot write the feeds: {e.strerror}") from None
        return Stored(file.path, file.media_type, file.etag, self)

    def holds(self, files: Iterable[File]) -> bool:
        """Whether the bodies of ``files`` are all here (as they would be unless removed)."""
        return all(isinstance(f, Stored) and os.path.exists(self._name(f.etag)) for f in files)

    def read(self, etag: str) -> bytes:
        try:
            return self._file(etag).read_bytes()
        except FileNotFoundError:
            raise Missing(f"{self.folder}: {etag} is gone") from None

    def save(
        self,
        config: Config,
        files: Mapping[str, File],
        dates: Mapping[str, datetime],
        docs: Mapping[str, tuple[bytes, list[str]]],
    ) -> None:
        """Write the index: ``files`` with their Last-Modified ``dates``, and ``docs``, the
        fingerprint of each document and the paths of its files (see
        :class:`feeds.reuse.PreviousBuild`), for a server that starts with ``config``
        (see :meth:`load`). Not kept if it cannot be written."""
        shown = {date: date.isoformat() for date in set(dates.values())}  # a few per feed
        index = {
            "key": index_key(config),
            "files": {
                path: (f.media_type, f.etag, shown[dates[path]] if path in dates else None)
                for path, f in files.items()
            },
            "docs": {path: (fp, tuple(paths)) for path, (fp, paths) in docs.items()},
        }
        try:
            _write(self.folder / INDEX, marshal.dumps(index))
            (self.folder / _OLD_INDEX).unlink(missing_ok=True)
        except OSError as e:
            log.warning("%s: the feeds are not kept for the next start (%s)", self.folder, e)

    def load(self, config: Config, check: bool = True) -> Kept | None:
        """What was last saved for ``config`` by this version of the code, if every body
        is still there (not looked at without ``check``); else None (and why is logged)."""
        try:
            index = marshal.loads((self.folder / INDEX).read_bytes())
            if index.get("key") != index_key(config):
                log.info("%s: kept for another config or version: not used", self.folder)
                return None
            kept = Kept({}, {}, {})
            parsed: dict[str, datetime] = {}
            for path, (media_type, etag, date) in index["files"].items():
                kept.files[path] = Stored(path, media_type, etag, self)
                if date is not None:
                    if date not in parsed:
                        parsed[date] = datetime.fromisoformat(date)
                    kept.dates[path] = parsed[date]
            for path, (fingerprint, paths) in index["docs"].items():
                kept.docs[path] = (bytes(fingerprint), [kept.files[p] for p in paths])
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as e:
            log.warning(
                "%s: cannot read %s (%s): the feeds are built afresh", self.folder, INDEX, e
            )
            return None
        if check and not self.holds(kept.files.values()):
            log.warning("%s: some files kept are gone: the feeds are built afresh", self.folder)
            return None
        return kept

    def collect(self, *used: Mapping[str, File]) -> int:
        """Remove the bodies none of ``used`` holds, and temp files left by a process that
        was killed (see :data:`STALE_TEMP`); how many bodies were removed."""
        keep = {f.etag.strip('"') for files in used for f in files.values()}
        stale = time.time() - STALE_TEMP
        removed = 0
        for entry in _entries(self.folder):
            if entry.name.startswith(_TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < stale:
                        entry.unlink(missing_ok=True)
            elif entry.parent.name + entry.name not in keep:
                entry.unlink(missing_ok=True)
                removed += 1
        return removed

    def remove(self, etags: Iterable[str]) -> None:
        """Remove the bodies of ``etags`` (those a build knows it no longer uses: unlike
        :meth:`collect`, without a look at every body)."""
        for etag in etags:
            with contextlib.suppress(OSError):
                os.unlink(self._name(etag))

    def _file(self, etag: str) -> Path:
        return Path(self._name(etag))

    def _name(self, etag: str) -> str:
        """The body's file name as a string: made for every file of every build, where
        joining Paths cost more than the look at the file."""
        name = etag.strip('"')
        return f"{self._root}/{name[:2]}/{name[2:]}"

    @functools.cached_property
    def _root(self) -> str:
        return str(self.folder)


def _entries(folder: Path) -> Iterable[Path]:
    """The bodies and temp files in the store's folders."""
    try:
        shards = [d for d in folder.iterdir() if d.is_dir()]
    except FileNotFoundError:
        return
    for shard in shards:
        yield from shard.iterdir()


def _write(target: Path, body: bytes) -> None:
    # Temporary files of its own kind: `feeds build` removes the export's leftovers from
    # the whole output folder, where a server may be writing these.
    try:
        write_atomically(target, body, temp_prefix=_TEMP_PREFIX)
    except FileNotFoundError:  # the first body of its folder (or the store was removed)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, body, temp_prefix=_TEMP_PREFIX)


def index_key(config: Config) -> str:
    """What the stored files of ``config`` depend on besides the articles: every setting,
    and the code and libraries that render them."""
    settings = repr(replace(config, path=Path()))
    return hashlib.blake2b(f"{settings}\n{_code()}".encode()).hexdigest()


@functools.cache
def _code() -> str:
    package = Path(feeds.__file__).parent
    sources = sorted(p for p in package.rglob("*") if p.suffix in (".py", ".html", ".opml"))
    digest = hashlib.blake2b(sys.version.encode())
    for path in sources:
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for name in _RENDERING:
        digest.update(f"{name} {metadata.version(name)}".encode())
    return digest.hexdigest()
