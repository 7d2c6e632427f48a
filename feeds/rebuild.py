"""Rebuilding when the files change, for a process that keeps running (``feeds serve``,
``feeds build --watch``): watched where the kernel tells which files change, else scanned."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

from feeds.config import Config
from feeds.errors import FeedsError
from feeds.files import file_stamp
from feeds.parsecache import Track
from feeds.publisher import Publisher, Snapshot, public_urls
from feeds.report import Reporter
from feeds.watch import QUIET, Watcher
from feeds.websub import Notifier

log = logging.getLogger(__name__)


class Rebuilder:
    """Builds a publisher's snapshot first, then again whenever its inputs change.

    With a :class:`feeds.watch.Watcher`, a rebuild reads only the files it names; without
    one (not Linux, or article files the watcher cannot see, e.g. through a linked folder)
    every file's stamp is looked at. A bad config or folder is logged and its build
    skipped: the caller keeps the last good snapshot, and the next change is built afresh.
    """

    def __init__(self, publisher: Publisher, watch: bool = True, track: Track | None = None):
        self.publisher = publisher
        config = publisher.load_config()  # a bad config at start-up is the caller's to report
        self._config_stamp = file_stamp(publisher.config_path)
        # Watching starts before the first build reads the files: no change goes unseen.
        self.watcher = _watcher(config.articles_folder) if watch else None
        self._inputs = None if self.watcher else publisher.inputs()
        try:
            self.first = publisher.build(config, track)
        except BaseException:  # a server tries again with a new Rebuilder: close this watch
            if self.watcher:
                self.watcher.close()
            raise
        self._rescan = False  # whether the next build looks at every file
        self._lost = False  # whether the folder watched went (or could not be watched): retried
        self._forced = False  # whether the next rebuild happens even if nothing changed
        self._check_watcher()

    def wait(self, timeout: float) -> None:
        """Until a watched file changes, or ``timeout`` seconds (when the config file and,
        without a watcher, every article file are looked at)."""
        if watcher := self.watcher:
            watcher.wait(max(timeout, QUIET))
        else:
            time.sleep(timeout)

    def force(self) -> None:
        """Make the next :meth:`rebuild` look at every file and build, changed or not."""
        self._forced = True

    def rebuild(self) -> Snapshot | None:
        """A new snapshot if the inputs changed since the last one (or :meth:`force` was
        called), else None. Not to be called by two threads at once."""
        forced, self._forced = self._forced, False
        changed: set[str] | None = None
        if self.watcher:
            try:
                changed = self.watcher.changes()
            except OSError as e:  # it could not watch the folder afresh, e.g. it was removed
                self._stop_watching(f"cannot watch the articles any more ({e})")
                self._lost = True
            stamp = file_stamp(self.publisher.config_path)
            if changed == set() and stamp == self._config_stamp and not forced:
                return None
            self._config_stamp = stamp
        else:
            inputs = self.publisher.inputs()
            if inputs == self._inputs and not forced:
                return None
            self._inputs = inputs  # a failure is retried when the files change again
        rescan = self._rescan or changed is None or forced
        self._rescan = True  # until a build succeeds: what changed meanwhile is unknown
        try:
            config = self.publisher.load_config()
            if self._lost or (self.watcher and self.watcher.folder != config.articles_folder):
                # Another folder, or the lost one maybe back: watched before its files are read.
                if self.watcher:
                    self.watcher.close()
                self.watcher = _watcher(config.articles_folder)
                self._lost = self.watcher is None
                rescan = True
            snapshot = self.publisher.build(config, changed=None if rescan else changed)
        except FeedsError as e:
            log.error("keeping the last good feeds: %s", e)
            return None
        self._rescan = False
        self._check_watcher()
        return snapshot

    def _check_watcher(self) -> None:
        """Scan instead of watching where the watcher cannot see every file."""
        if self.watcher and not self.publisher.watchable(self.watcher):
            self._stop_watching("watching cannot see every article file")

    def _stop_watching(self, why: str) -> None:
        log.info("%s; scanning the files instead", why)
        if self.watcher:
            self.watcher.close()
        self.watcher = None
        self._inputs = None  # the next scan rebuilds


def _watcher(folder: Path) -> Watcher | None:
    try:
        return Watcher(folder)
    except OSError as e:
        log.info("not watching %s (%s); scanning it instead", folder, e)
        return None


# Takes a new snapshot (serves or exports it); gives the paths of the files that changed.
Handler = Callable[[Snapshot], Iterable[str]]


class Reloader:
    """The one "keep running" service of ``feeds serve`` and ``feeds build --watch``.

    Owns the :class:`Rebuilder`: waits for the inputs to change, rebuilds, hands each new
    snapshot to ``handle`` (the server swaps what it serves, ``build --watch`` exports)
    and tells the WebSub hub of the feeds that changed, from a background thread
    (:class:`feeds.websub.Notifier`), so a slow hub never holds up a rebuild.
    """

    def __init__(
        self,
        publisher: Publisher,
        handle: Handler,
        watch: bool = True,
        track: Track | None = None,
    ):
        started = time.monotonic()
        self.rebuilder = Rebuilder(publisher, watch, track)
        self.first = self.rebuilder.first
        self.reporter = Reporter()  # broken articles and counts, told as they change
        self.reporter.tell(self.first)
        self.seconds = time.monotonic() - started  # how long the last snapshot handed on took
        self.config: Config = self.first.config  # of the last snapshot handed on
        self.notifier: Notifier | None = None
        self.rebuilds = 0  # snapshots handed on since the first
        self._handle = handle
        self._lock = threading.Lock()  # one rebuild at a time
        self._checked = time.monotonic()  # the last scan started by keep_up
        self._in_background = False  # whether keep_up was called: rebuilds follow by thread
        self._follower: int | None = None  # the process whose thread follows the watcher

    def run(self) -> None:
        """Rebuild as the inputs change, in this thread, until interrupted."""
        while True:
            self.rebuilder.wait(self.config.serve.reload_interval)
            self.refresh()

    def keep_up(self) -> None:
        """For a server, at each request: rebuild in the background from now on.

        Starts the thread that follows the watcher, in the process that calls (a server's
        worker is forked from the one that built, without its threads); without a
        watcher, starts a background rebuild once ``serve.reload_interval`` has passed,
        so the files are scanned only while requests come."""
        self._in_background = True
        if self.rebuilder.watcher:
            # Not waiting for the lock: a rebuild holds it, and a request never waits for one
            # (the next request starts the thread then).
            if self._follower != os.getpid() and self._lock.acquire(blocking=False):
                try:
                    self._start_following()
                finally:
                    self._lock.release()
            return
        interval = self.config.serve.reload_interval
        if time.monotonic() - self._checked >= interval and self._lock.acquire(blocking=False):
            self._checked = time.monotonic()
            threading.Thread(target=self._refresh_locked, daemon=True).start()

    def refresh(self) -> bool:
        """Bring the feeds up to date with the files as they are now; True if a new
        snapshot was handed on meanwhile (by this call or by the following thread)."""
        seen = self.rebuilds
        with self._lock:
            self._refresh()
        return self.rebuilds != seen

    def rebuild_soon(self) -> None:
        """Rebuild in the background even if no input changed (e.g. stored files were
        removed); after the rebuild running now, if there is one."""
        self.rebuilder.force()
        if self._lock.acquire(blocking=False):
            threading.Thread(target=self._refresh_locked, daemon=True).start()

    def tell_hub(self, snapshot: Snapshot, changed: Iterable[str]) -> None:
        """Queue the changed feeds for the configured WebSub hub, if any (never waits)."""
        hub = snapshot.config.websub.hub
        if self.notifier and self.notifier.hub != hub:
            self.notifier.close(timeout=0)
            self.notifier = None
        urls = public_urls(snapshot.config, changed)
        if hub and urls:
            self.notifier = self.notifier or Notifier(hub)
            self.notifier.notify(urls)

    def close(self, timeout: float | None = None) -> None:
        """Give the hub up to ``timeout`` seconds for what is queued for it."""
        if self.notifier:
            self.notifier.close(timeout)

    def _refresh_locked(self) -> None:
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        """Rebuild, hand on and tell the hub; hold ``_lock``."""
        started = time.monotonic()
        snapshot = self.rebuilder.rebuild()
        if self._in_background and self.rebuilder.watcher and self._follower is None:
            self._start_following()  # watching again (see Rebuilder): from now, not at a request
        if snapshot is None:
            return
        self.seconds = time.monotonic() - started
        changed = list(self._handle(snapshot))
        self.reporter.tell(snapshot)
        self.config = snapshot.config
        self.rebuilds += 1
        self.tell_hub(snapshot, changed)

    def _start_following(self) -> None:
        """Start the thread that follows the watcher, unless it runs here; hold ``_lock``."""
        if self._follower != os.getpid():
            self._follower = os.getpid()
            threading.Thread(
                target=_follow, args=(weakref.ref(self),), name="feeds-watch", daemon=True
            ).start()


def _follow(ref: weakref.ref[Reloader]) -> None:
    """The following thread: rebuilds when files change, for as long as the Reloader
    lives. It holds it weakly, so that an app dropped (in tests) is collected, its
    watcher closed and this thread ended."""
    while (reloader := ref()) and reloader.rebuilder.watcher:
        rebuilder, interval = reloader.rebuilder, reloader.config.serve.reload_interval
        del reloader
        rebuilder.wait(interval)
        del rebuilder
        if reloader := ref():
            try:
                reloader.refresh()
            except Exception:  # the thread lives on: the next change is built afresh
                log.exception("reload failed; keeping the last good feeds")
    if reloader:  # it stopped watching: a watcher made later (see Rebuilder) gets a thread
        reloader._follower = None
