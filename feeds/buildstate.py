"""What ``feeds build`` keeps for the next one to build incrementally (see
:mod:`feeds.incremental`): a light record of every article file (:class:`Head`), the items
of every feed, the files the export holds, and the articles themselves by number.

Kept in the store's folder: ``build-state`` and the files beside it, plain values written
a record at a time with :mod:`marshal` (loading them can build no object but strings,
numbers and tuples; the heads and the scan's paths go :data:`PER_RECORD` to a record, as
they are made), and ``articles.sqlite``, the parsed articles as :func:`feeds.parsecache.freeze`
gives them, read by number only for the documents a build renders, and updated in place.
Either belongs to one config and one version of the code; anything else is not used.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import logging
import marshal
import math
import os
import secrets
import sqlite3
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NamedTuple

from feeds import parsecache, records
from feeds.config import Config
from feeds.errors import Problem
from feeds.export import write_atomically
from feeds.files import Scan
from feeds.model import Article
from feeds.select import Key, Rules
from feeds.store import STORE, index_key

log = logging.getLogger(__name__)

STATE = "build-state"
HEADS = "build-heads"  # every head, as the state's log of changes starts from
HEADS_LOG = "build-heads.log"
SCAN = "build-scan"  # the paths of the last scan, written when they change
MAX_LOG = 4 << 20  # bytes of log past which the heads are written whole again
PER_RECORD = 10_000  # heads, or paths of the scan, per record of their file
ARTICLES = "articles.sqlite"
_FORMAT = 6  # of the state file: another is not read
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Head(NamedTuple):
    """What a build needs of one article to select, dedupe, count and fingerprint it
    without the article itself (which lies in the article table, by ``num``)."""

    num: int
    source: str
    digest: bytes  # feeds.reuse.digest of the article
    id: str
    published: int  # microseconds since 1970: sorts as the date does (see feeds.select.rank)
    quality: float | None
    memberships: tuple[tuple[str, str, str], ...]  # (kind, key, name) of each feed taking it
    below: bool  # a feed it is a candidate for refuses its quality (feeds.stats.counts)
    image: str | None  # its provider's image

    @property
    def order(self) -> tuple:
        """Newest first, as :class:`feeds.select.Selection` orders a feed's members."""
        return (-self.published, self.id, self.source)

    def feed_keys(self) -> Iterator[Key]:
        for kind, key, _ in self.memberships:
            yield (kind, key)


def _order(head: Head) -> tuple:
    return head.order


def micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def moment(micros: int) -> datetime:
    """The date of :func:`micros` back, as the parse cache gives it (aware UTC)."""
    return _EPOCH + micros * _MICROSECOND


# One copy of each set of memberships in the heads held, and of each membership in them:
# most articles share theirs with many others (at 1,000,000 articles, copies took 350 MB).
# Not bounded: there are as many as the combinations of topics and providers in use.
_MEMBERSHIPS: dict[tuple, tuple] = {}


def _shared(memberships: tuple) -> tuple:
    if (known := _MEMBERSHIPS.get(memberships)) is None:
        known = tuple(_MEMBERSHIPS.setdefault(m, m) for m in memberships)
        _MEMBERSHIPS[known] = known
    return known


def head_of(num: int, article: Article, digest: bytes, rules: Rules) -> Head:
    memberships = []
    below = False
    for (kind, key), name, limit in rules.candidacies(article):
        if rules.passes(article.quality, limit):
            memberships.append((kind, key, name))
        else:
            below = True
    return Head(
        num,
        article.source,
        digest,
        article.id,
        micros(article.published),
        article.quality,
        tuple(memberships),
        below,
        article.provider.image,
    )


@dataclass
class FeedItems:
    """A published feed as the last build made it: what its spec needs, and its items."""

    name: str
    image: str | None
    items: Sequence[int]  # Head.num of each, newest first


@dataclass
class BuildState:
    """What the last build left: every article file's head (newest first) and problem,
    every published feed's items, and what the export folder holds."""

    folder: str  # the export folder, resolved
    heads: list[Head]
    problems: dict[str, Problem]  # files that could not be read, by path
    scan: Scan  # the files as they were read (a stamp not trusted is not kept)
    feeds: dict[Key, FeedItems]
    exported: dict[str, str]  # each exported file's ETag, by path
    inodes: dict[str, int]  # and its inode, and the manifest's (feeds.export.inodes)
    next_num: int = 0
    fates: bytes = b""  # what became of each head, in order (see feeds.incremental)
    # The file of the heads as a whole and how much of its log of changes is this state's.
    heads_file: tuple[str, int] | None = None
    scan_names: bytes | None = None  # those of the scan whose paths are in the scan file
    _by_source: dict[str, Head] = field(default_factory=dict, init=False, repr=False)
    # The heads taken out and put in since loaded: what save appends to the log.
    _changes: tuple[list[str], list[Head]] = field(
        default_factory=lambda: ([], []), init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._by_source = {head.source: head for head in self.heads}
        if not self.next_num:
            self.next_num = max((h.num for h in self.heads), default=-1) + 1

    def head(self, source: str) -> Head | None:
        return self._by_source.get(source)

    def add(self, head: Head) -> None:
        head = head._replace(memberships=_shared(head.memberships))
        bisect.insort(self.heads, head, key=_order)
        self._by_source[head.source] = head
        self._changes[1].append(head)

    def remove(self, source: str) -> Head | None:
        """Take the head of ``source`` out, if there is one; it."""
        head = self._by_source.pop(source, None)
        if head is not None:
            at = bisect.bisect_left(self.heads, head.order, key=_order)
            while self.heads[at] is not head:
                at += 1
            del self.heads[at]
            self._changes[0].append(source)
        return head


def state_of(config: Config) -> str:
    """What a state depends on besides the articles: the config, and the code that parses
    and renders."""
    return f"{index_key(config)} {parsecache.version()}"


def folder_of(config: Config) -> Path:
    return config.output_folder / STORE


def load(config: Config) -> BuildState | None:
    """The state the last build left for ``config`` and this code, or None."""
    folder = folder_of(config)
    try:
        data = tuple(records.read(folder / STATE))
        form, key, export_folder, next_num, heads_file, problems, scan, feeds, exported, inodes = (
            data[:10]
        )
        if form != _FORMAT or key != state_of(config):
            return None
        token, logged = heads_file
        kept = records.read(folder / HEADS)
        if next(kept, None) != token:
            return None
        heads: list[Head] = []
        for columns in kept:
            heads += _heads(*columns)
        state = BuildState(
            export_folder,
            heads,
            {p[0]: Problem(*p) for p in problems},
            Scan(partial(_scan_paths, folder, scan[0]), _numbers(scan[1]), scan[0]),
            {(f[0], f[1]): FeedItems(f[2], f[3], _numbers(f[4])) for f in feeds},
            exported,
            inodes,
            next_num,
            data[10],
            (token, logged),
        )
        with open(folder / HEADS_LOG, "rb") as log_file:
            changes = io.BytesIO(log_file.read(logged))
        while changes.tell() < logged:
            removed, added = marshal.load(changes)
            for source in removed:
                state.remove(source)
            for head in added:
                state.add(Head(*head))
        state._changes = ([], [])
        state.scan_names = scan[0]
        return state
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, TypeError, IndexError) as e:
        log.warning("%s: not used (%s): the build is a whole one", STATE, e)
        return None


def forget(config: Config) -> None:
    """Remove the state: until one is saved again, builds are whole ones."""
    with contextlib.suppress(OSError):
        os.unlink(folder_of(config) / STATE)


def save(config: Config, state: BuildState) -> None:
    """Write ``state``; a failure is only logged: the next build is whole. The heads are
    written whole the first time, and after that only their changes, appended to a log
    (until it grows past :data:`MAX_LOG`): writing 100,000 heads is most of the time of
    a build after one edit."""
    folder = folder_of(config)
    try:
        heads_file = state.heads_file
        scan = state.scan
        if scan.names != state.scan_names:  # files added, removed or renamed: their paths
            paths = records.chunks(scan.paths, PER_RECORD)
            write_atomically(folder / SCAN, records.dump(itertools.chain([scan.names], paths)))
        removed, added = state._changes
        change = marshal.dumps((removed, [tuple(head) for head in added]))
        if heads_file is None or heads_file[1] + len(change) > MAX_LOG:
            heads_file = write_heads(config, state.heads)
        else:
            with open(folder / HEADS_LOG, "r+b") as log_file:
                log_file.seek(heads_file[1])
                log_file.write(change)
                log_file.truncate()
            heads_file = (heads_file[0], heads_file[1] + len(change))
        data = (
            _FORMAT,
            state_of(config),
            state.folder,
            state.next_num,
            heads_file,
            [(p.source, p.message, p.line) for p in state.problems.values()],
            (state.scan.names, state.scan.stamps.tobytes()),
            [
                (k[0], k[1], f.name, f.image, _array(f.items).tobytes())
                for k, f in state.feeds.items()
            ],
            state.exported,
            state.inodes,
            state.fates,
        )
        # A record of each: marshalled whole, 1,000,000 stamps made a copy more of the file.
        write_atomically(folder / STATE, records.dump(data))
    except OSError as e:
        log.warning("%s: not kept (%s): the next build is a whole one", STATE, e)
        return
    state.heads_file = heads_file
    state.scan_names = state.scan.names
    state._changes = ([], [])


def write_heads(config: Config, heads: Iterable[Head]) -> tuple[str, int]:
    """Write ``heads`` (newest first) whole, as they come, and empty the log of changes;
    the heads file as a state names it (:attr:`BuildState.heads_file`). Raises OSError if
    they cannot be written."""
    folder = folder_of(config)
    token = secrets.token_hex(8)
    columns = map(_columns, records.chunks(heads, PER_RECORD))
    write_atomically(folder / HEADS, records.dump(itertools.chain([token], columns)))
    (folder / HEADS_LOG).write_bytes(b"")
    return (token, 0)


def _scan_paths(folder: Path, names: bytes) -> list[str]:
    """The paths of the scan kept with :attr:`feeds.files.Scan.names` ``names``."""
    paths: list[str] = []
    try:
        kept = records.read(folder / SCAN)
        if next(kept, None) != names:
            raise OSError(f"{SCAN}: of another scan")  # then every file counts as changed
        for chunk in kept:
            paths += chunk
    except (EOFError, ValueError, TypeError) as e:
        raise OSError(f"{SCAN}: {e}") from None
    return paths


# Heads are kept a field at a time, numbers as arrays and each distinct membership once:
# 100,000 tuples of tuples took ten times as long to write and read.


def _columns(heads: Sequence[Head]) -> tuple:
    if not heads:
        return ((),) * 9
    nums, sources, digests, ids, published, quality, memberships, below, images = zip(
        *heads, strict=True
    )
    groups: dict[tuple, int] = {}
    for kept in set(memberships):
        groups.setdefault(kept, len(groups))
    return (
        _array(nums).tobytes(),
        sources,
        b"".join(digests),
        ids,
        _array(published).tobytes(),
        array("d", (math.nan if q is None else q for q in quality)).tobytes(),
        (tuple(groups), _array(groups[m] for m in memberships).tobytes()),
        bytes(below),
        images,
    )


def _heads(
    nums: bytes,
    sources: Sequence[str],
    digests: bytes,
    ids: Sequence[str],
    published: bytes,
    quality: bytes,
    memberships: tuple,
    below: bytes,
    images: Sequence[str | None],
) -> list[Head]:
    count = len(sources)
    qualities = array("d")
    qualities.frombytes(quality)
    groups = tuple(map(_shared, memberships[0]))
    which = memberships[1]
    return list(
        map(
            Head._make,
            zip(
                _numbers(nums),
                sources,
                [digests[16 * k : 16 * k + 16] for k in range(count)],
                ids,
                _numbers(published),
                [None if math.isnan(q) else q for q in qualities],
                [groups[k] for k in _numbers(which)],
                [bool(b) for b in below],
                images,
                strict=True,
            ),
        )
    )


def _array(numbers: Iterable[int]) -> array:
    return array("q", numbers)


def _numbers(data: bytes) -> array:
    numbers = array("q")
    numbers.frombytes(data)
    return numbers


def read_articles(config: Config, nums: Iterable[int]) -> dict[int, Article]:
    """The articles of ``nums`` from the article table; raises OSError if it cannot be read
    or lacks one."""
    wanted = sorted(set(nums))
    found: dict[int, Article] = {}
    with _table(config) as db:
        for k in range(0, len(wanted), 500):  # within SQLite's limit of parameters
            chunk = wanted[k : k + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT num, value FROM articles WHERE num IN ({marks})"
            for num, value in db.execute(query, chunk):
                article = parsecache.thaw(marshal.loads(value))
                if isinstance(article, Article):
                    found[num] = article
    if len(found) != len(wanted):
        raise OSError(f"{ARTICLES}: {len(wanted) - len(found)} articles missing")
    return found


def write_articles(
    config: Config,
    removed: Iterable[int],
    added: Iterable[tuple[int, Article]],
    fresh: bool = False,
) -> None:
    """Take ``removed`` out of the article table and put the (number, article) pairs of
    ``added`` in (into an empty table when ``fresh``); raises OSError if it cannot be
    written."""
    if fresh:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder_of(config) / ARTICLES)
    with _table(config) as db:
        db.execute("BEGIN")
        db.executemany("DELETE FROM articles WHERE num = ?", ((n,) for n in removed))
        db.executemany(
            "INSERT OR REPLACE INTO articles VALUES (?, ?)",
            ((n, marshal.dumps(parsecache.freeze(a))) for n, a in added),
        )
        db.execute("COMMIT")


@contextlib.contextmanager
def _table(config: Config) -> Iterator[sqlite3.Connection]:
    """The article table, open; SQLite's errors as OSError."""
    try:
        db = sqlite3.connect(folder_of(config) / ARTICLES, isolation_level=None)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS articles (num INTEGER PRIMARY KEY, value BLOB)")
            yield db
        finally:
            db.close()
    except sqlite3.Error as e:
        raise OSError(f"{ARTICLES}: {e}") from None
