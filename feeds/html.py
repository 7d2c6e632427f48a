"""Templates → bytes for the pages people read: the Jinja environment, and :class:`Page`,
one file to render with what its bytes depend on.

Pure: no I/O, no clock. Dates are numbers, not month names: language-neutral whatever
``site.language`` is, and independent of the process locale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from feeds.model import Article, Rendered
from feeds.render import etag
from feeds.text import rfc3339

HTML = "text/html"
OPML = "text/x-opml"
LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}

_env = Environment(
    loader=PackageLoader("feeds"),
    autoescape=True,  # every template, the OPML too: article text is never trusted
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,  # the templates are the package's: no look at their files per page
)
_env.filters.update(
    rfc3339=rfc3339,
    rfc822=lambda when: format_datetime(when.astimezone(UTC), usegmt=True),
    date=lambda when: f"{when.astimezone(UTC):%Y-%m-%d}",
    time=lambda when: f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    label=lambda name: LABELS.get(name, name.upper()),
    count=lambda n, one, many: f"{n:,} {one if n == 1 else many}",
)


def rendered(path: str, media_type: str, template: str, **context: Any) -> Rendered:
    """``template`` rendered with ``context``, as the file at ``path``."""
    body = _env.get_template(template).render(**context).encode()
    return Rendered(path, media_type, body, etag(body))


@dataclass(frozen=True)
class Page:
    """One page to render, and what its bytes depend on besides the config: ``key`` and
    ``items``, compared with the previous build's (see :class:`feeds.reuse.PreviousBuild`).
    ``key`` has a repr that is the same in every process (no objects of identity)."""

    path: str
    key: tuple
    items: tuple[Article, ...]
    make: Callable[[], Rendered]

    def render(self) -> list[Rendered]:
        return [self.make()]
