"""An incremental ``feeds build``: after a few article files changed, only they are read,
only the feeds that hold them are grouped again and only their documents that changed are
rendered and exported, from what the last build kept (:mod:`feeds.buildstate`) and the
store's index (:mod:`feeds.store`). The other articles are known by their
:class:`feeds.buildstate.Head` alone: at 100,000 articles, reading them back, grouping them
and fingerprinting every document took ten times longer than the rest of a build.

Its files are those a whole build (:class:`feeds.publisher.Publisher`) writes, to the byte;
it declines (:func:`build` gives None, and the caller builds whole) whenever it could not
tell that: no state, or one of another config, code or export folder; more changes than
:data:`MOST_CHANGED` of the files (and more than :data:`FEW_CHANGED`); a change to the
set of feeds (which changes where every page's topics and providers lead); a document of
an untouched feed missing from the store's index; a stored body it needs gone.

What it trusts: that the export folder holds what the last build left there, but for
files removed (a listing of each folder finds those, and they are written again). A file
edited in place there is not seen; a whole build (after ``rm -r output.folder/.feeds-store``
or any change of config) writes every file again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path

from feeds import buildstate, parsecache, processes
from feeds.buildstate import BuildState, FeedItems, Head, head_of, moment
from feeds.config import Config
from feeds.errors import OutputError, Problem
from feeds.export import MANIFEST, Report, export_changed, inodes
from feeds.feed_pages import Leads, feed_page
from feeds.files import Finder, Scan, path_order
from feeds.handover import last_modified
from feeds.html import Page
from feeds.listings import Row
from feeds.model import Article, Document, Feed, FeedSpec, File
from feeds.pages import common_context, site_pages
from feeds.publisher import Publisher, Snapshot
from feeds.render import Part, Renderer, pages_of
from feeds.reuse import digest, fingerprint
from feeds.select import Key, Rules, feed_order, feed_spec, grouped, rank
from feeds.stats import Counts
from feeds.store import Kept, Store

log = logging.getLogger(__name__)

MOST_CHANGED = 0.1  # of the article files: past this share, a whole build is as quick...
FEW_CHANGED = 100  # ...unless they are only this many


@dataclass(frozen=True)
class Outcome:
    """What a build tells: the files skipped, the counts and what the export did."""

    config: Config
    problems: tuple[Problem, ...]
    counts: Counts
    feeds: int
    report: Report


def build(config: Config, folder: Path) -> Outcome | None:
    """Build incrementally and export into ``folder``, or None where it cannot (see the
    module's docstring) and nothing was written. Raises FeedsError like a whole build."""
    finder = Finder(config.articles_folder, config.articles.patterns)
    # The files are looked at (100,000 stats) on another core while the state is read.
    with processes.aside(finder.scan) as scanning:
        state = buildstate.load(config)
        if state is None or state.folder != str(folder.resolve()):
            return None
        if inodes(folder, state.exported) != state.inodes:
            log.info("the export folder changed since the last build: a whole build")
            return None
        store = Store.of(config)
        kept = store.load(config, check=False)
        if kept is None:
            return None
        found, skipped = scanning.result()
    try:
        changed, gone = found.changes(state.scan)
    except OSError as e:
        log.info("%s: a whole build", e)
        return None
    if len(changed) + len(gone) > max(MOST_CHANGED * len(found.paths), FEW_CHANGED):
        log.info("%d article files changed: a whole build", len(changed) + len(gone))
        return None
    try:
        return _Increment(config, state, kept, store).run(found, changed, gone, skipped, folder)
    except _Declined as e:
        log.info("%s: a whole build", e)
        return None


class _Increment:
    """One incremental build: the state taken forward by the files that changed."""

    def __init__(self, config: Config, state: BuildState, kept: Kept, store: Store):
        self.config = config
        self.state = state
        self.kept = kept
        self.store = store
        self.rules = Rules(config)
        self.docs: dict[str, tuple[bytes, list[str]]] = {}
        self.files: dict[str, File] = {}
        self.rendered = 0
        self.added: dict[int, Article] = {}  # the articles read, not yet in the table

    def run(
        self,
        found: Scan,
        changed: list[str],
        gone: list[str],
        skipped: list[Problem],
        folder: Path,
    ) -> Outcome | None:
        config, state = self.config, self.state
        removed, added, regroup, dirty = self._take_in(found, changed, gone)
        self.added = added
        regrouped = self._regroup(regroup)
        before = set(state.feeds)
        for key, feed in regrouped.items():
            if feed is None:
                state.feeds.pop(key, None)
            else:
                state.feeds[key] = feed
        if set(state.feeds) != before:
            log.info("the set of feeds changed: a whole build")
            return None
        heads = {head.num: head for head in state.heads}
        keys = sorted(state.feeds, key=feed_order)
        specs = {key: _spec(key, state.feeds[key], config) for key in keys}
        renderer = Renderer(config)
        if not self._feed_documents(keys, specs, heads, dirty, renderer):
            log.info("a document of an unchanged feed is not in the store's index: a whole build")
            return None
        rows = [_row(specs[k], state.feeds[k], heads) for k in keys]
        self._pages(site_pages(rows, renderer))
        files = dict(sorted(self.files.items()))
        to_write = [f for p, f in files.items() if state.exported.get(p) != f.etag]
        if not self.store.holds(to_write):
            log.info("some stored files are gone: a whole build")
            return None
        log.info(
            "rendered %d of %d documents (the others are unchanged)", self.rendered, len(self.docs)
        )
        # From here the export changes: until the state is saved again, a killed build
        # leaves none, and the next build is a whole one (which also removes its temp files).
        buildstate.forget(config)
        report = export_changed(files, folder, state.exported, gzip=config.output.gzip)
        self.store.save(config, files, self._dates(keys, specs, heads), self.docs)
        used = {f.etag for f in files.values()}
        self.store.remove({f.etag for f in self.kept.files.values()} - used)
        try:
            buildstate.write_articles(config, removed, added.items())
        except OSError as e:
            log.warning("%s: the next build is a whole one", e)
            return _outcome(config, state, skipped, report, len(keys), heads, bool(regroup))
        outcome = _outcome(config, state, skipped, report, len(keys), heads, bool(regroup))
        _note_inodes(state, folder, files)
        state.exported = {p: f.etag for p, f in files.items()}
        buildstate.save(config, state)  # with the fates the counts found
        return outcome

    def _take_in(
        self, found: Scan, changed: list[str], gone: list[str]
    ) -> tuple[list[int], dict[int, Article], set[Key], set[Key]]:
        """Read the changed files into the state; the numbers of the articles gone, the
        articles read by number, the feeds whose articles changed place (to group again)
        and those whose articles changed only in content (the same items)."""
        state = self.state
        regroup: set[Key] = set()
        touched: set[Key] = set()
        old: dict[str, Head] = {}
        for path in (*changed, *gone):
            state.problems.pop(path, None)
            if (head := state.remove(path)) is not None:
                old[path] = head
        added: dict[int, Article] = {}
        for path, result in zip(changed, parsecache.read_all(changed), strict=True):
            if isinstance(result, Problem):
                state.problems[path] = result
                continue
            before = old.pop(path, None)
            num = state.next_num if before is None else before.num  # an edit keeps its number
            head = head_of(num, result, digest(result), self.rules)
            state.next_num = max(state.next_num, num + 1)
            state.add(head)
            added[num] = result
            if before is not None and _placed_alike(before, head):
                touched.update(head.feed_keys())
            else:
                regroup.update(head.feed_keys())
                regroup.update(before.feed_keys() if before else ())
        for head in old.values():  # gone, or no longer an article
            regroup.update(head.feed_keys())
        # Files written within the clock's tick before their stamp was taken may change
        # again with the same stamp: read again next time (see feeds.parsecache).
        trust_before = time.time_ns() - parsecache.TRUST_AFTER_NS
        found.distrust(found.newer(changed, trust_before))
        state.scan = found
        return [head.num for head in old.values()], added, regroup, touched | regroup

    def _regroup(self, dirty: set[Key]) -> dict[Key, FeedItems | None]:
        """The feeds of ``dirty`` grouped again from their members, as
        :class:`feeds.select.Selection` groups them; None for a feed not published."""
        if not dirty:
            return {}
        members: dict[Key, list[tuple[None, Head, str]]] = {key: [] for key in dirty}
        for head in self.state.heads:  # newest first
            for kind, value, name in head.memberships:
                if (kind, value) in members:
                    members[kind, value].append((None, head, name))
        min_provider = self.config.feeds.providers.min_articles
        feeds: dict[Key, FeedItems | None] = {}
        for key, taken in members.items():
            if not taken:
                feeds[key] = None
                continue
            items, name = grouped(taken)
            if key[0] == "provider" and len(items) < min_provider:
                feeds[key] = None
                continue
            image = (
                next((h.image for h in items if h.image), None) if key[0] == "provider" else None
            )
            feeds[key] = FeedItems(name, image, tuple(h.num for h in items))
        return feeds

    def _feed_documents(
        self,
        keys: Sequence[Key],
        specs: dict[Key, FeedSpec],
        heads: dict[int, Head],
        dirty: set[Key],
        renderer: Renderer,
    ) -> bool:
        """The documents of every feed and their pages: those of ``dirty`` feeds
        fingerprinted and rendered where they changed, the others as the index has them.
        False if one of those is not there."""
        size, archives = self.config.feeds.items, self.config.feeds.archives
        leads = Leads(frozenset(spec.path for spec in specs.values()))
        common = common_context(renderer) if self.config.feeds.pages else None
        for key in keys:
            feed, spec = self.state.feeds[key], specs[key]
            parts = pages_of(spec.path, len(feed.items), size, archives)
            if key not in dirty:
                if not all(self._reuse(p.path) and self._reuse_page(p, common) for p in parts):
                    return False
                continue
            checks = []
            for part in parts:
                doc_key = (spec, part.links, part.archive)
                found = fingerprint(doc_key, (heads[n].digest for n in _slice(feed, part)))
                same = self._reuse(part.path, found)
                # A page changes with its document, and the newest with the feed's count.
                page_same = common is None or (part.archive and self._reuse(f"{part.path}.html"))
                if not same or not page_same:
                    checks.append((part, found, same))
            if checks:
                self._render(spec, feed, heads, checks, renderer, leads, common)
        return True

    def _render(
        self,
        spec: FeedSpec,
        feed: FeedItems,
        heads: dict[int, Head],
        checks: list[tuple[Part, bytes, bool]],
        renderer: Renderer,
        leads: Leads,
        common: dict | None,
    ) -> None:
        """Render the documents of ``checks`` that changed, and their pages (where there
        are pages: ``common`` is their context) where theirs changed, with the articles
        read back from the article table."""
        nums = {feed.items[0], *(n for part, _, _ in checks for n in _slice(feed, part))}
        articles = {n: self.added[n] for n in nums if n in self.added}
        try:
            articles.update(buildstate.read_articles(self.config, nums - articles.keys()))
        except OSError as e:
            raise _Declined(f"the articles kept cannot be read ({e})") from None
        # All a document needs of its feed: the spec, and for the newest page its date.
        shown = Feed(spec, (articles[feed.items[0]],))
        for part, found, same in checks:
            items = tuple(articles[n] for n in _slice(feed, part))
            doc = Document(shown, items, part.path, part.links, part.archive)
            if not same:
                self._keep(part.path, found, renderer.render_list(doc))
            if common is not None:
                page = feed_page(doc, len(feed.items), leads, common)
                self._page(page, (heads[n].digest for n in _slice(feed, part)))

    def _pages(self, pages: Iterable[Page]) -> None:
        for page in pages:
            self._page(page, ())

    def _page(self, page: Page, digests: Iterable[bytes]) -> None:
        found = fingerprint(page.key, digests)
        if not self._reuse(page.path, found):
            self._keep(page.path, found, page.render())

    def _reuse_page(self, part: Part, common: dict | None) -> bool:
        """:meth:`_reuse` of the page of ``part``; True where there are no pages."""
        return common is None or self._reuse(f"{part.path}.html")

    def _reuse(self, path: str, found: bytes | None = None) -> bool:
        """Take the files of document ``path`` from the index, if it holds them (with the
        fingerprint ``found``, where given)."""
        kept = self.kept.docs.get(path)
        if kept is None or (found is not None and kept[0] != found):
            return False
        self.docs[path] = (kept[0], [f.path for f in kept[1]])
        self.files.update((f.path, f) for f in kept[1])
        return True

    def _keep(self, path: str, found: bytes, rendered: Iterable[File]) -> None:
        try:
            files = [self.store.put(r) for r in rendered]
        except OutputError as e:  # a whole build exports without the store
            raise _Declined(str(e)) from None
        self.rendered += 1
        self.docs[path] = (found, [f.path for f in files])
        self.files.update((f.path, f) for f in files)

    def _dates(
        self, keys: Sequence[Key], specs: dict[Key, FeedSpec], heads: dict[int, Head]
    ) -> dict[str, datetime]:
        """Each file's Last-Modified, as :func:`feeds.handover.modified` gives it."""
        config = self.config
        size, archives = config.feeds.items, config.feeds.archives
        newest = []
        for key in keys:
            feed = self.state.feeds[key]
            for part in pages_of(specs[key].path, len(feed.items), size, archives):
                newest.append((part.path, moment(heads[feed.items[part.start]].published)))
        return last_modified(newest, self.files, config.feeds.formats, datetime.now(UTC))


def _note_inodes(state: BuildState, folder: Path, files: Mapping[str, File]) -> None:
    """Keep the inodes of what an export changed (the files whose ETags changed, the
    manifest) for the next build to check."""
    root = folder.resolve()
    for path in state.exported.keys() - files.keys():
        state.inodes.pop(path, None)
    for path in (MANIFEST, *(p for p, f in files.items() if state.exported.get(p) != f.etag)):
        try:
            state.inodes[path] = os.stat(root / path).st_ino
        except OSError:
            state.inodes.pop(path, None)


class _Declined(Exception):
    """An incremental build found it cannot go on (the message says why): build whole."""


def _outcome(
    config: Config,
    state: BuildState,
    skipped: list[Problem],
    report: Report,
    feeds: int,
    heads: dict[int, Head],
    moved: bool,
) -> Outcome:
    problems = sorted([*skipped, *state.problems.values()], key=_order)
    counts = _counts(state, heads, problems, moved)
    return Outcome(config, tuple(problems), counts, feeds, report)


def _placed_alike(old: Head, new: Head) -> bool:
    """Whether an edit left the article where it was in every feed (same feeds, same place,
    same dedupe): only its content changed, and with it the documents that hold it."""
    return (old.id, old.published, old.quality, old.memberships, old.image) == (
        new.id,
        new.published,
        new.quality,
        new.memberships,
        new.image,
    )


def _slice(feed: FeedItems, part: Part) -> Sequence[int]:
    return feed.items[part.start : part.stop]


def _spec(key: Key, feed: FeedItems, config: Config) -> FeedSpec:
    return feed_spec(key[0], key[1], feed.name, config, feed.image)


def _row(spec: FeedSpec, feed: FeedItems, heads: dict[int, Head]) -> Row:
    return Row(spec, len(feed.items), moment(heads[feed.items[0]].published))


def _order(problem: Problem) -> str:
    return path_order(problem.source)


PUBLISHED, DUPLICATE, BELOW, UNFED = range(4)  # the fate of an article, as Counts has them


def _counts(
    state: BuildState, heads: dict[int, Head], problems: list[Problem], moved: bool
) -> Counts:
    """:func:`feeds.stats.counts` from the heads: the fate of every file. Where no article
    ``moved`` (only their contents changed), every fate is the last build's."""
    if moved or len(state.fates) != len(state.heads):
        state.fates = _fates(state, heads)
    groups: tuple[list[str], ...] = ([], [], [], [])
    for head, fate in zip(state.heads, state.fates, strict=True):
        groups[fate].append(head.source)
    return Counts(
        broken=tuple(p.source for p in problems),
        below=tuple(groups[BELOW]),
        duplicates=tuple(groups[DUPLICATE]),
        unfed=tuple(groups[UNFED]),
        published=tuple(groups[PUBLISHED]),
        feeds=len(state.feeds),
    )


def _fates(state: BuildState, heads: dict[int, Head]) -> bytes:
    """The fate of each head, in order: of the copies of a story the feeds show, the best
    is the one published, the others are duplicates, as are those a feed takes but shows
    another copy of; the rest are below a feed's threshold or in no feed."""
    shown: set[int] = set()
    for feed in state.feeds.values():
        shown.update(feed.items)
    best: dict[str, Head] = {}
    for num in shown:
        head = heads[num]
        if head.id not in best or rank(head) > rank(best[head.id]):
            best[head.id] = head
    published = state.feeds.keys()
    fates = bytearray()
    for head in state.heads:
        if head.num in shown:
            fates.append(PUBLISHED if best[head.id] is head else DUPLICATE)
        elif any(key in published for key in head.feed_keys()):
            fates.append(DUPLICATE)
        else:
            fates.append(BELOW if head.below else UNFED)
    return bytes(fates)


class Keeper:
    """What a whole build keeps for the next one to be an incremental one. Most of it (the
    parse cache, the article table, the heads) needs only the articles read and their
    feeds: a Keeper, as the ``meanwhile`` of :meth:`feeds.publisher.Publisher.build`,
    writes it while they are rendered (at 100,000 articles, 4 of the 24 s of a build done
    after it); :meth:`finish` adds what the export did. What it could not write is told
    then: a build that fails has a message of its own."""

    def __init__(self, publisher: Publisher, config: Config, folder: Path):
        self.publisher = publisher
        self.config = config
        self.folder = folder
        self._ran = False
        self._unsaved: OSError | None = None  # why the parse cache was not written
        self._unkept: OSError | None = None  # why the state was not
        self._state: BuildState | None = None  # but for the export's part, once written

    def __call__(self, feeds: tuple[Feed, ...]) -> None:
        self._ran = True
        for folder in (self.folder, buildstate.folder_of(self.config)):
            with contextlib.suppress(OSError):  # the writes tell why they could not write
                folder.mkdir(parents=True, exist_ok=True)  # a first build: not made yet
        try:
            self.publisher.cache.write(self.folder)
        except OSError as e:
            self._unsaved = e
        if self.publisher.stored:
            # From here the article table changes: no state kept before may be read with it.
            buildstate.forget(self.config)
            try:
                self._state = _written(self.publisher, self.config, feeds, self.folder)
            except OSError as e:
                self._unkept = e

    def finish(self, snapshot: Snapshot) -> None:
        """Keep the state of ``snapshot``, exported into the folder; or, if what it needs
        was not written, none (the next build is a whole one)."""
        if not self._ran:
            self.publisher.cache.save(self.folder)
        if self._unsaved:
            log.warning("%s", self._unsaved)
        state = self._state
        if state is None or not self.publisher.stored:  # not: rendered for the export alone
            if self._unkept and self.publisher.stored:
                log.warning("%s: the next build is a whole one", self._unkept)
            buildstate.forget(self.config)
            return
        state.exported = {path: file.etag for path, file in snapshot.files.items()}
        state.inodes = inodes(self.folder, state.exported)
        buildstate.save(self.config, state)


def _written(
    publisher: Publisher, config: Config, feeds: tuple[Feed, ...], folder: Path
) -> BuildState:
    """Write the articles read into the article table (afresh) and their heads; the state
    that names them, but for what the export did. OSError if they cannot be written."""
    problems = {}
    nums: dict[str, int] = {}
    read: list[Article] = []
    for num, (path, _, result) in enumerate(publisher.cache.parsed()):
        if isinstance(result, Problem):
            problems[path] = result
        else:
            nums[result.source] = num
            read.append(result)
    buildstate.write_articles(config, (), ((nums[a.source], a) for a in read), fresh=True)
    items = _feed_items(feeds, nums)
    count = len(nums) + len(problems)
    # The heads are made as they are written, never all held (at 1,000,000 articles they
    # took 300 MB), and what they are made from goes before the rest of the state is made.
    _sort_newest_first(read)
    rules = Rules(config)
    heads = (head_of(nums[a.source], a, publisher.digest(a), rules) for a in read)
    heads_file = buildstate.write_heads(config, heads)
    del nums, read
    cached = publisher.cache.parsed()
    scan = Scan.of((path, stamp.fields() if stamp else None) for path, stamp, _ in cached)
    state = BuildState(str(folder.resolve()), [], problems, scan, items, {}, {}, count)
    state.heads_file = heads_file  # its heads are in their file only: it is saved, not used
    return state


def _feed_items(feeds: Iterable[Feed], nums: Mapping[str, int]) -> dict[Key, FeedItems]:
    """Each feed's items by the numbers of their heads (``nums``, by source)."""
    return {
        (f.spec.kind, f.spec.key): FeedItems(
            f.spec.name, f.spec.image, tuple(nums[a.source] for a in f.items)
        )
        for f in feeds
    }


def _sort_newest_first(articles: list[Article]) -> None:
    """Sort ``articles`` as their heads sort (:attr:`Head.order`): a key at a time from the
    last, as the sort is stable, so that each key is a value the article holds (keys of
    three values took 100 MB at 1,000,000 articles)."""
    articles.sort(key=attrgetter("source"))
    articles.sort(key=attrgetter("id"))
    articles.sort(key=attrgetter("published"), reverse=True)
