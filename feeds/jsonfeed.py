"""Documents → JSON Feed 1.1, with the same items, ids, dates and links as RSS and Atom."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from feeds.config import Config
from feeds.model import Article, Document
from feeds.text import rfc3339


def json_feed(
    doc: Document, config: Config, self_url: str, links: Iterable[tuple[str, str]]
) -> bytes:
    """``doc`` as JSON Feed; ``links`` are its (rel, URL) pairs, of which it uses the archive."""
    by_rel = dict(links)
    feed: dict = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.feed.spec.title,
        "home_page_url": config.site_link,
        "feed_url": self_url,
        "description": doc.feed.spec.description,
        "language": config.site.language,
    }
    if "prev-archive" in by_rel:
        feed["next_url"] = by_rel["prev-archive"]  # JSON Feed's next page holds older items
    if config.websub.hub:
        feed["hubs"] = [{"type": "WebSub", "url": config.websub.hub}]
    feed["items"] = [_item(a) for a in doc.items]
    # Compact: with an indent, json falls back to its slow pure-Python encoder.
    return (json.dumps(feed, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _item(article: Article) -> dict:
    item: dict = {"id": article.id, "url": article.id, "title": article.title}
    if article.related:
        item["content_html"] = content_html(article)
    else:
        item["content_text"] = article.excerpt
    if article.excerpt:
        item["summary"] = article.excerpt
    if article.image:
        item["image"] = article.image.url
    item["date_published"] = rfc3339(article.published)
    item["authors"] = [
        {"name": article.provider.name, "url": f"https://{article.provider.domain}/"}
    ]
    if article.topics:
        item["tags"] = list(article.topics)
    return item


def content_html(article: Article) -> str:
    """The excerpt and the related articles as a list of links, escaped: the content of
    an item with related articles in every format (RSS and Atom use it too)."""
    esc = html.escape
    items = "".join(
        f'<li><a href="{esc(r.url)}">{esc(r.title)}</a>'
        + (f" ({esc(r.provider)})" if r.provider else "")
        + "</li>"
        for r in article.related
    )
    summary = f"<p>{esc(article.excerpt)}</p>" if article.excerpt else ""
    return f"{summary}<p>Related:</p><ul>{items}</ul>"
