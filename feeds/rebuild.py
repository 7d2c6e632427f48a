"""Rebuilding when the files change, for a process that keeps running (``feeds serve``,
``feeds build --watch``): watched where the kernel tells which files change, else scanned."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from feeds.errors import FeedsError
from feeds.parsecache import Track
from feeds.publisher import Publisher, Snapshot, file_stamp
from feeds.watch import QUIET, Watcher

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
        self.first = publisher.build(config, track)
        self._rescan = False  # whether the next build looks at every file
        self._lost = False  # whether the folder watched went (or could not be watched): retried
        self._check_watcher()

    def wait(self, timeout: float) -> None:
        """Until a watched file changes, or ``timeout`` seconds (when the config file and,
        without a watcher, every article file are looked at)."""
        if watcher := self.watcher:
            watcher.wait(max(timeout, QUIET))
        else:
            time.sleep(timeout)

    def rebuild(self) -> Snapshot | None:
        """A new snapshot if the inputs changed since the last one, else None. Not to be
        called by two threads at once."""
        changed: set[str] | None = None
        if self.watcher:
            try:
                changed = self.watcher.changes()
            except OSError as e:  # it could not watch the folder afresh, e.g. it was removed
                self._stop_watching(f"cannot watch the articles any more ({e})")
                self._lost = True
            stamp = file_stamp(self.publisher.config_path)
            if changed == set() and stamp == self._config_stamp:
                return None
            self._config_stamp = stamp
        else:
            inputs = self.publisher.inputs()
            if inputs == self._inputs:
                return None
            self._inputs = inputs  # a failure is retried when the files change again
        rescan = self._rescan or changed is None
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
