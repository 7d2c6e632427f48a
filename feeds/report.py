"""What a service that keeps building (``feeds serve``, ``feeds build --watch``) tells its
operator after each build: every broken article once, when it is fixed or gone, and the
counts of :func:`feeds.stats.summary` (the files of each at DEBUG).

Through the ``feeds.report`` logger, which the CLI shows at its default verbosity."""

from __future__ import annotations

import logging

from feeds.errors import Problem
from feeds.publisher import Snapshot
from feeds.stats import counts, details, summary

log = logging.getLogger("feeds.report")


class Reporter:
    """Remembers the problems it told of, so that a rebuild tells only what changed."""

    def __init__(self) -> None:
        self._told: dict[str, Problem] = {}  # by file

    def tell(self, snapshot: Snapshot) -> None:
        now = {p.source: p for p in snapshot.problems}
        for source, problem in now.items():
            if self._told.get(source) != problem:
                log.warning("%s", problem)
        if gone := self._told.keys() - now.keys():
            articles = {a.source for a in snapshot.read}
            for source in sorted(gone):
                log.warning("%s: %s", source, "fixed" if source in articles else "gone")
        self._told = now
        found = counts(snapshot)
        log.info("%s", summary(found))
        if log.isEnabledFor(logging.DEBUG):
            for line in details(found):
                log.debug("%s", line)
