"""HTML pages and OPML for people and feed readers (being written)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from feeds.model import Feed, Rendered
from feeds.render import Renderer


def render_pages(feeds: Iterable[Feed], renderer: Renderer) -> Iterator[Rendered]:
    return iter(())
