"""What one run leaves in the output folder for the next, whether ``feeds serve`` or
``feeds build``: the index of the stored files with each one's Last-Modified date, and
only the stored bodies still in use. Either command starts from what the other left."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from feeds.model import File
from feeds.publisher import Publisher, Snapshot
from feeds.render import paginate
from feeds.store import Store


def modified(snapshot: Snapshot, now: datetime) -> dict[str, datetime]:
    """Each file's Last-Modified, from the articles alone, so that every server (replicas,
    restarts) gives the same: a feed document's or its HTML page's newest item; for the
    other files (index.html, feeds.opml, ...) the newest item of all. A
    file with no item has none. A date ahead of ``now`` is ``now`` (HTTP allows no later).

    Only a newer item moves it: a change that adds none (an edit, a removal) is seen by the
    ETag, which every reader sends where it has one."""
    config = snapshot.config
    dates: dict[str, datetime] = {}
    for feed in snapshot.feeds:
        if feed.updated is None:
            continue
        for doc in paginate(feed, config.feeds.items, config.feeds.archives):
            for name in (*config.feeds.formats, "html"):
                dates[f"{doc.path}.{name}"] = doc.items[0].published
    newest = max(dates.values(), default=None)
    if newest is not None:
        for path in snapshot.files:
            dates.setdefault(path, newest)
    return {path: min(date, now).replace(microsecond=0) for path, date in dates.items()}


def keep_stored(
    publisher: Publisher,
    snapshot: Snapshot,
    dates: Mapping[str, datetime],
    previous: Mapping[str, File],
) -> None:
    """Save the index of ``snapshot``'s stored files (with their ``dates``) for the next
    run of a stored ``publisher``, and remove the bodies that neither they nor the
    ``previous`` files use: another process sharing the store may still serve those."""
    config = snapshot.config
    store = Store.of(config)
    store.save(config, snapshot.files, dates, publisher.documents())
    store.collect(snapshot.files, previous)
