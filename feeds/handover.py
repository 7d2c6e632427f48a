"""What one run leaves in the output folder for the next, whether ``feeds serve`` or
``feeds build``: the index of the stored files with each one's Last-Modified date, and
only the stored bodies still in use. Either command starts from what the other left."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from feeds.model import File
from feeds.publisher import Publisher, Snapshot
from feeds.render import paginate
from feeds.store import Store


def modified(snapshot: Snapshot, now: datetime) -> dict[str, datetime]:
    """Each file's Last-Modified, from the articles alone, so that every server (replicas,
    restarts) gives the same: see :func:`last_modified`."""
    config = snapshot.config
    newest = (
        (doc.path, doc.items[0].published)
        for feed in snapshot.feeds
        if feed.updated is not None
        for doc in paginate(feed, config.feeds.items, config.feeds.archives)
    )
    return last_modified(newest, snapshot.files, config.feeds.formats, now)


def last_modified(
    newest: Iterable[tuple[str, datetime]],
    files: Iterable[str],
    formats: Iterable[str],
    now: datetime,
) -> dict[str, datetime]:
    """Each file's Last-Modified from each feed document's path (no extension) and its
    newest item (``newest``): a feed document's, in each of ``formats``, or its HTML page's
    is that item's date; for the other ``files`` (index.html, feeds.opml, ...) the newest
    item of all. A file with no item has none. A date ahead of ``now`` is ``now`` (HTTP
    allows no later).

    Only a newer item moves it: a change that adds none (an edit, a removal) is seen by the
    ETag, which every reader sends where it has one."""
    names = (*formats, "html")
    dates: dict[str, datetime] = {}
    for path, date in newest:
        for name in names:
            dates[f"{path}.{name}"] = date
    latest = max(dates.values(), default=None)
    if latest is not None:
        for path in files:
            dates.setdefault(path, latest)
    # A few distinct dates per feed: each one is bounded and cut to the second once.
    shown = {date: min(date, now).replace(microsecond=0) for date in set(dates.values())}
    return {path: shown[date] for path, date in dates.items()}


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
