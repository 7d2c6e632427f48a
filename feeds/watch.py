"""Which files changed under a folder, told by the kernel (Linux inotify) instead of found by
stat-ing every file: with 100,000 articles that scan alone took longer than a rebuild."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

try:
    from inotify_simple import INotify, flags
except (ImportError, OSError, AttributeError):  # not Linux
    INotify = None
else:
    _MASK = (
        flags.CREATE
        | flags.DELETE
        | flags.MODIFY
        | flags.CLOSE_WRITE
        | flags.ATTRIB
        | flags.MOVED_FROM
        | flags.MOVED_TO
        | flags.DELETE_SELF
        | flags.MOVE_SELF
    )
    # Events after which the changed files cannot be named one by one.
    _ANYTHING = flags.Q_OVERFLOW | flags.ISDIR | flags.DELETE_SELF | flags.MOVE_SELF

QUIET = 0.02  # seconds without an event that end a burst of them
GATHER = 0.5  # seconds a burst is gathered at most


class Watcher:
    """The paths under a folder and its subfolders that changed since the last look.

    :meth:`changes` answers None where it cannot name every changed file: the kernel's
    event queue overflowed, or a folder came, went or moved (its files were never
    watched one by one). The caller then scans everything, as it would without a watcher.
    """

    def __init__(self, folder: Path):
        """Raises OSError where inotify is missing or its limits are reached."""
        if INotify is None:
            raise OSError("inotify is not available on this system")
        self.folder = folder
        self._start()

    def _start(self) -> None:
        self._inotify = INotify()
        self._folders: dict[int, str] = {}  # watch descriptor → the folder's path
        try:
            # Paths joined as feeds.files.find joins them: the paths of changed files
            # compare equal to the ones it listed.
            for top, _, _ in os.walk(self.folder):
                self._folders[self._inotify.add_watch(top, _MASK)] = top
            if not self._folders:
                raise FileNotFoundError(f"no folder {self.folder}")
        except OSError:
            self.close()
            raise

    def folders(self) -> set[str]:
        """The folders whose files' changes are told (not the ones reached through links)."""
        return set(self._folders.values())

    def wait(self, timeout: float) -> bool:
        """Block until there are changes to look at, or ``timeout`` seconds; True if there are."""
        poll = select.poll()  # one each: a poll object is not to be shared by threads
        try:
            poll.register(self._inotify.fileno(), select.POLLIN)
        except ValueError:  # closed meanwhile by the thread that replaced it: look again
            return True
        return bool(poll.poll(timeout * 1000))

    def changes(self) -> set[str] | None:
        """The paths that changed since the last call, or None: anything may have changed
        (the folders are then watched afresh). Waits while events keep coming, up to
        GATHER seconds, so that a file written in parts is seen once, whole."""
        changed: set[str] = set()
        deadline = time.monotonic() + GATHER
        while True:
            for event in self._inotify.read(timeout=0):
                if event.mask & _ANYTHING:
                    self.close()  # a moved folder's events would carry its old path
                    self._start()
                    return None
                if event.mask & flags.IGNORED:
                    self._folders.pop(event.wd, None)
                elif event.wd in self._folders:
                    changed.add(os.path.join(self._folders[event.wd], event.name))
            if time.monotonic() > deadline or not self.wait(QUIET):
                return changed

    def close(self) -> None:
        self._inotify.close()
        self._folders.clear()

    def __del__(self) -> None:
        if hasattr(self, "_inotify"):
            self.close()
