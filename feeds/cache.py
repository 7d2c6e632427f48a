"""The parse cache on disk, so that `feeds build` re-reads only the article files that
changed since the last build.

It lives in the output folder as ``.feeds-cache`` (a dot file: the nginx config in
``deploy/`` refuses those, and ``feeds serve`` only serves rendered files) and holds plain
values only, written with :mod:`marshal`: loading it can build no object but strings,
numbers and tuples, so a tampered file can at worst give wrong articles until the files
change, never run code. A file written by another version of the parsing code, or one
that does not load, is ignored: the build then reads every article file.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import marshal
import os
import struct
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import yaml
import yaml_rs

from feeds import articles, fastyaml, model, text
from feeds.articles import ArticleCache, Stamp
from feeds.errors import Problem
from feeds.model import Article, Image, Provider, Related

log = logging.getLogger(__name__)

CACHE_FILE = ".feeds-cache"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@functools.cache  # read when a build needs it, not when any command starts
def version() -> str:
    """The parsing code, the YAML parsers and the Python that wrote a cache: any change to
    them makes it stale."""
    sources = b"".join(
        Path(inspect.getfile(m)).read_bytes() for m in (articles, fastyaml, model, text)
    )
    parsers = f"{sys.version} {yaml.__version__} {yaml_rs.__version__}"
    return hashlib.blake2b(sources + parsers.encode()).hexdigest()


def restore(cache: ArticleCache, folder: Path) -> int:
    """Fill ``cache`` from ``folder``'s cache file; the number of entries taken."""
    entries = {}
    try:
        with open(folder / CACHE_FILE, "rb") as f:
            if _read_record(f) != version():
                return 0
            while (chunk := _read_record(f)) is not None:
                for path, stamp, value in chunk:
                    entries[path] = (Stamp(*stamp), _thaw(value))
    except FileNotFoundError:
        return 0
    except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
        log.warning("%s: ignored, every article file is read again (%s)", CACHE_FILE, e)
        return 0
    cache.update(entries)
    cache.saved = (folder / CACHE_FILE, entries)
    return len(entries)


def save(cache: ArticleCache, folder: Path) -> None:
    """Write ``cache`` into ``folder`` atomically unless the file holds the same entries
    already (as restored or saved); a failure is only logged. Written a chunk of entries at
    a time: made whole, the frozen entries and their bytes were the peak of a build's memory
    (+260 MiB at 100,000)."""
    target = folder / CACHE_FILE
    entries = cache.settled()
    if cache.saved == (target, entries) and target.exists():
        return
    temp = folder / f"{CACHE_FILE}.{os.getpid()}.tmp"  # export removes any left by a kill
    settled = list(entries.items())
    try:
        with open(temp, "wb") as f:
            _write_record(f, version())
            for k in range(0, len(settled), CHUNK):
                _write_record(f, [_entry(path, *entry) for path, entry in settled[k : k + CHUNK]])
            _write_record(f, None)  # the end: a file cut short is not taken for a whole one
        os.replace(temp, target)
        cache.saved = (target, entries)
    except OSError as e:
        temp.unlink(missing_ok=True)
        log.warning("%s: not saved (%s)", target, e.strerror)


CHUNK = 5000  # entries per record
_LENGTH = struct.Struct("<Q")


def _write_record(f: BinaryIO, value: Any) -> None:
    data = marshal.dumps(value)
    f.write(_LENGTH.pack(len(data)))
    f.write(data)


def _read_record(f: BinaryIO) -> Any:
    head = f.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the file ends before its last record")
    (length,) = _LENGTH.unpack(head)
    # Checked before reading: a damaged length would have read() allocate it whole.
    if f.tell() + length > os.fstat(f.fileno()).st_size:
        raise EOFError("the file ends inside a record")
    return marshal.loads(f.read(length))


def _entry(path: str, stamp: Stamp, value: Article | Problem) -> tuple:
    return (path, (stamp.mtime_ns, stamp.ctime_ns, stamp.size, stamp.inode), _freeze(value))


def _freeze(value: Article | Problem) -> tuple:
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
        (value.provider.name, value.provider.domain),
        value.topics,
        value.quality,
        image,
        tuple((r.title, r.url, r.provider) for r in value.related),
        value.category,
        value.type,
    )


def _thaw(frozen: tuple) -> Article | Problem:
    if frozen[0] == "problem":
        return Problem(*frozen[1:])
    _, source, id, title, excerpt, micros, provider, topics, quality, image, related, *rest = frozen
    return Article(
        source,
        id,
        title,
        excerpt,
        _EPOCH + micros * _MICROSECOND,
        Provider(*provider),
        topics,
        quality,
        image and Image(*image),
        tuple(Related(*r) for r in related),
        *rest,
    )
