"""Documents → JSON Feed 1.1, with the same items, ids, dates and links as RSS and Atom."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable

from feeds.body import related_html
from feeds.config import Config
from feeds.model import Article, Document
from feeds.text import rfc3339


def json_feed(
    doc: Document,
    config: Config,
    self_url: str,
    links: Iterable[tuple[str, str]],
    item: Callable[[Article], bytes],
) -> bytes:
    """``doc`` as JSON Feed; ``links`` are its (rel, URL) pairs, of which it uses the archive;
    ``item`` gives each item's JSON (:func:`item_json`, made once for all the documents that
    hold the article)."""
    by_rel = dict(links)
    feed: dict = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.feed.spec.title,
        "home_page_url": config.site_link,
        "feed_url": self_url,
        "description": doc.feed.spec.description,
        "language": config.site.language,
    }
    icon = config.feed_images(doc.feed.spec)[0]
    if icon:
        feed["icon"] = feed["favicon"] = icon
    if "prev-archive" in by_rel:
        feed["next_url"] = by_rel["prev-archive"]  # JSON Feed's next page holds older items
    if config.websub.hub:
        feed["hubs"] = [{"type": "WebSub", "url": config.websub.hub}]
    # The items last, joined in: what json.dumps would write with them in the mapping.
    head = _dumps(feed)[:-1].encode()
    return head + b',"items":[' + b",".join(map(item, doc.items)) + b"]}\n"


def item_json(article: Article, full: bool) -> bytes:
    """The JSON of the article's item; with ``full``, it carries the body."""
    return _dumps(_item(article, full)).encode()


def _dumps(value: dict) -> str:
    # Compact: with an indent, json falls back to its slow pure-Python encoder.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _item(article: Article, full: bool) -> dict:
    item: dict = {"id": article.id, "url": article.id, "title": article.title}
    if content := content_html(article, full):
        item["content_html"] = content
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


def content_html(article: Article, full: bool) -> str | None:
    """An item's content in every format (RSS and Atom use it too): with ``full``, its body;
    without a body, its excerpt if it has related articles; then the related articles. None
    when it has neither body nor related articles."""
    body = article.body if full else ""
    if not body and not article.related:
        return None
    if not body and article.excerpt:
        body = f"<p>{html.escape(article.excerpt)}</p>"
    return body + related_html(article.related)
