"""The parse cache: parsed article files kept by path and stamp, so that a rebuild reads
again only the files that changed; many files are parsed on all the cores, each worker
having the kernel read its files ahead where they are not in the page cache.

``feeds build`` keeps it between processes in the output folder as ``.feeds-cache`` (a dot
file: the nginx config in ``deploy/`` refuses those, and ``feeds serve`` only serves
rendered files). The file holds plain values only, written with :mod:`marshal`: loading it
can build no object but strings, numbers and tuples, so a tampered file can at worst give
wrong articles until the files change, never run code. A file written by another version
of the parsing code, or one that does not load, is ignored: the build then reads every
article file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import yaml
import yaml_rs

from feeds import articles, body, front_matter, model, records, text
from feeds.articles import read
from feeds.errors import Problem
from feeds.files import Stamp
from feeds.model import Article, Image, Provider, Related
from feeds.processes import context, cores

log = logging.getLogger(__name__)

CACHE_FILE = ".feeds-cache"
# File times tick coarsely (a few ms): a file written again in the same tick with the same
# size keeps its stamp. A stamp is trusted once the file's ctime is this much in the past.
TRUST_AFTER_NS = 2_000_000_000
# Files each worker process must have to parse for its start-up to be worth it.
PER_WORKER = 1000
FILES_PER_TASK = 250  # files a worker process reads per task
ENTRIES_PER_RECORD = 5000  # entries per record of the cache file


Entry = tuple[Stamp, Article | Problem]
Track = Callable[[Iterator, int], Iterable]  # wraps results as they come, e.g. in a progress bar


def _untracked(results: Iterator, count: int) -> Iterator:
    return results


class ArticleCache:
    """Parsed articles keyed on file path and stamp: a rebuild re-reads only changed files."""

    def __init__(self) -> None:
        # The stamp is None while the file is too new for it to be trusted.
        self._entries: dict[str, tuple[Stamp | None, Article | Problem]] = {}
        # A cache file and the trusted entries it holds, once restored or saved: it is
        # written again only when they differ.
        self._saved: tuple[Path, dict[str, Entry]] | None = None

    def trusted(self) -> dict[str, Entry]:
        """The entries whose stamps can be trusted to identify the file's content: what a
        cache file keeps."""
        # The entry tuples themselves, not new ones: save compares them with the saved.
        trusted = {path: entry for path, entry in self._entries.items() if entry[0] is not None}
        return cast(dict[str, Entry], trusted)

    def parsed(self) -> Iterator[tuple[str, Stamp | None, Article | Problem]]:
        """Every file of the last :meth:`load` (and refreshes since): its path, its stamp
        (None while too new to be trusted) and what it held."""
        for path, (stamp, result) in self._entries.items():
            yield path, stamp, result

    def load(
        self,
        paths: Sequence[str],
        track: Track | None = None,
        stamps: Iterable[Stamp | None] | None = None,
    ) -> list[Article | Problem]:
        """The article or problem of each path, in order; forgets every other path.
        ``stamps`` are the paths' stamps where they were looked at already (a scan; None
        where not known): the others are looked at here."""
        self._entries, results = self._lookup(paths, track, stamps)
        return [results[p] for p in paths]

    def refresh(
        self, paths: Collection[str], gone: Iterable[str] = ()
    ) -> dict[str, Article | Problem]:
        """The article or problem of each of ``paths``, by path; forgets ``gone`` and keeps
        every other path as it was."""
        entries, results = self._lookup(paths, None)
        for path in gone:
            self._entries.pop(path, None)
        self._entries.update(entries)
        return results

    def _lookup(
        self,
        paths: Iterable[str],
        track: Track | None,
        stamps: Iterable[Stamp | None] | None = None,
    ) -> tuple[dict, dict]:
        """Entries and results for ``paths``: files whose stamps match are not read again."""
        entries: dict[str, tuple[Stamp | None, Article | Problem]] = {}
        results: dict[str, Article | Problem] = {}
        misses: dict[str, Stamp] = {}
        known = itertools.repeat(None) if stamps is None else stamps
        for path, given in zip(paths, known, strict=stamps is not None):
            try:
                stamp = given or Stamp.of(path)
            except OSError as e:
                results[path] = Problem(str(path), f"skipped: cannot read: {e.strerror}")
                continue
            hit = self._entries.get(path)
            if hit and hit[0] == stamp:
                entries[path] = hit  # kept as it is: also what a saved cache file holds
                results[path] = hit[1]
            else:
                misses[path] = stamp
        track = track or _untracked
        results.update(zip(misses, track(read_all([*misses]), len(misses)), strict=True))
        trust_before = time.time_ns() - TRUST_AFTER_NS
        for path, stamp in misses.items():
            entries[path] = (stamp if stamp.ctime_ns < trust_before else None, results[path])
        return entries, results

    def restore(self, folder: Path) -> int:
        """Take the entries of ``folder``'s cache file; the number taken. Each stamp is
        checked again before its entry is used."""
        entries = {}
        try:
            chunks = records.read(folder / CACHE_FILE)
            if next(chunks, None) != version():
                return 0
            for chunk in chunks:
                for path, stamp, value in chunk:
                    entries[path] = (Stamp(*stamp), thaw(value, path))
        except FileNotFoundError:
            return 0
        except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
            log.warning("%s: ignored, every article file is read again (%s)", CACHE_FILE, e)
            return 0
        self._entries.update(entries)
        self._saved = (folder / CACHE_FILE, entries)
        return len(entries)

    def save(self, folder: Path) -> None:
        """:meth:`write`, a failure only logged."""
        try:
            self.write(folder)
        except OSError as e:
            log.warning("%s", e)

    def write(self, folder: Path) -> None:
        """Write the trusted entries into ``folder``'s cache file atomically unless it holds
        them already (as restored or saved); OSError if it cannot. Written a record of
        entries at a time: made whole, the frozen entries and their bytes were the peak of a
        build's memory (+260 MiB at 100,000)."""
        target = folder / CACHE_FILE
        entries = self.trusted()
        if self._saved == (target, entries) and target.exists():
            return
        temp = folder / f"{CACHE_FILE}.{os.getpid()}.tmp"  # export removes any left by a kill
        chunks = records.chunks(entries.items(), ENTRIES_PER_RECORD)
        frozen = ([_entry(path, *entry) for path, entry in chunk] for chunk in chunks)
        try:
            with open(temp, "wb") as f:
                f.writelines(records.dump(itertools.chain([version()], frozen)))
            os.replace(temp, target)
            self._saved = (target, entries)
        except OSError as e:
            with contextlib.suppress(OSError):  # not there, or its folder is not one
                temp.unlink(missing_ok=True)
            raise OSError(f"{target}: not saved ({e.strerror})") from None


def read_all(paths: Sequence[str]) -> Iterator[Article | Problem]:
    """:func:`feeds.articles.read` of each path, in order; many files are parsed on all
    the cores. Each result comes back frozen and is thawed here, where the values many
    articles repeat are shared (see :func:`thaw`)."""
    workers = min(cores(), len(paths) // PER_WORKER)
    if workers < 2:
        yield from map(thaw, map(_read_one, paths), paths)
        return
    chunks = [paths[k : k + FILES_PER_TASK] for k in range(0, len(paths), FILES_PER_TASK)]
    with ProcessPoolExecutor(workers, mp_context=context()) as pool:
        for chunk, results in zip(chunks, pool.map(_read_chunk, chunks), strict=True):
            yield from map(thaw, results, chunk)


def _read_chunk(paths: Sequence[str]) -> list[tuple]:
    _read_ahead(paths)
    return list(map(_read_one, paths))


def _read_ahead(paths: Sequence[str]) -> None:
    """Have the kernel read ``paths`` into its page cache all at once where the first or the
    last is not there: read one by one from disk, a parse worker waits for each (some
    kernels page out the files not read for a minute). Where they are in the cache, as a
    rule, this costs two reads of a byte."""
    if not paths or not hasattr(os, "RWF_NOWAIT"):
        return
    if _in_page_cache(paths[0]) and _in_page_cache(paths[-1]):
        return
    for path in paths:
        with contextlib.suppress(OSError):  # reading it will tell
            fd = os.open(path, _OPEN_NONBLOCKING)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)


# Never waiting, should a file have become a FIFO since the files were listed.
_OPEN_NONBLOCKING = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def _in_page_cache(path: str) -> bool:
    """Whether the start of the file at ``path`` is in the page cache (True where that
    cannot be told). Where it is not, asking starts reading it."""
    try:
        fd = os.open(path, _OPEN_NONBLOCKING)
    except OSError:
        return True
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
    except BlockingIOError:
        return False
    except OSError:  # a file system without RWF_NOWAIT
        return True
    finally:
        os.close(fd)
    return True


def _read_one(path: str) -> tuple:
    return freeze(read(path))


# The cache file ---------------------------------------------------------------------------


@functools.cache  # read when a build needs it, not when any command starts
def version() -> str:
    """The parsing code (this module's frozen form included), the YAML, Markdown and HTML
    parsers and the Python that wrote a cache: any change to them makes it stale."""
    modules = (articles, body, front_matter, model, records, text, sys.modules[__name__])
    sources = b"".join(Path(inspect.getfile(m)).read_bytes() for m in modules)
    parsers = f"{sys.version} {yaml.__version__} {yaml_rs.__version__} " + " ".join(
        metadata.version(name) for name in ("cmarkgfm", "nh3", "lxml")
    )
    return hashlib.blake2b(sources + parsers.encode()).hexdigest()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _entry(path: str, stamp: Stamp, value: Article | Problem) -> tuple:
    return (path, stamp.fields(), freeze(value))


def freeze(value: Article | Problem) -> tuple:
    """``value`` as plain values (for :mod:`marshal`); :func:`thaw` gives it back."""
    if isinstance(value, Problem):
        return ("problem", value.source, value.message, value.line)
    image = value.image and (value.image.url, value.image.width, value.image.height)
    return (
        "article",
        value.source,
        value.id,
        value.title,
        value.excerpt,
        (value.published - _EPOCH) // _MICROSECOND,
        (value.provider.name, value.provider.domain, value.provider.image),
        value.topics,
        value.topic_slugs,
        value.quality,
        image,
        tuple((r.title, r.url, r.provider) for r in value.related),
        value.category,
        value.type,
        value.body,
    )


class _Shared(dict):
    """One copy of each value that many articles repeat: a tuple of topics, a type. With
    the providers shared too, and the model's slots, an article takes some 1,600 bytes
    instead of 2,500, most of a build's memory at 1,000,000 articles. Not bounded: there
    are as many values as combinations of topics, types and categories in use."""

    def __missing__(self, key: Any) -> Any:
        self[key] = key
        return key


class _Providers(dict):
    """One :class:`Provider` for each (name, domain, image) in use."""

    def __missing__(self, key: tuple) -> Provider:
        provider = self[key] = Provider(*key)
        return provider


_SHARED = _Shared()
_PROVIDERS = _Providers()


def thaw(frozen: tuple, path: str | None = None) -> Article | Problem:
    """The article or problem of ``frozen`` (read from the file at ``path``, when known):
    its values shared with the articles thawed before it where they are equal."""
    if frozen[0] == "problem":
        return Problem(*frozen[1:])
    (
        _,
        source,
        id,
        title,
        excerpt,
        micros,
        provider,
        topics,
        slugs,
        quality,
        image,
        related,
        category,
        type,
        body,
    ) = frozen
    # The path's own string for the source, not an equal copy: the cache keys on it too.
    source = path if path is not None and path == source else source
    return Article(
        source,
        id,
        title,
        excerpt,
        _EPOCH + micros * _MICROSECOND,
        _PROVIDERS[provider],
        _SHARED[topics],
        _SHARED[slugs],
        quality,
        image and Image(*image),
        tuple(Related(*r) for r in related),
        _SHARED[category],
        _SHARED[type],
        body,
    )
