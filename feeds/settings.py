"""The settings of config.yaml: one row each in :data:`SETTINGS` (key, check, default,
help), and the checks that turn a loaded value into a valid one or say what was expected.
The README's config reference is checked against that table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from feeds.model import FORMAT_NAMES
from feeds.text import provider_key, slugify

Check = Callable[[Any], Any]


class Invalid(ValueError):
    """A setting's value is wrong; the message says what was expected."""


def got(value: Any) -> str:
    """What a message says was found instead: the value, or the kind of a list or mapping."""
    return (
        f"got {value!r}" if not isinstance(value, (dict, list)) else f"got a {type(value).__name__}"
    )


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a non-empty string, {got(value)}")
    return value.strip()


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected a number, {got(value)}")
    return value


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"expected a whole number of 0 or more, {got(value)}")
    return value


def positive(value: Any) -> int:
    if count(value) == 0:
        raise Invalid("expected a whole number of 1 or more, got 0")
    return value


# With every field of every item at its limit, a feed of this many items stays under 5 MiB,
# the most some readers (CommaFeed) accept.
MAX_ITEMS = 50


def items(value: Any) -> int:
    if positive(value) > MAX_ITEMS:
        raise Invalid(
            f"expected at most {MAX_ITEMS} (older items go to archive pages), {got(value)}"
        )
    return value


def seconds(value: Any) -> float:
    if number(value) < 0:
        raise Invalid(f"expected a number of seconds of 0 or more, {got(value)}")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, {got(value)}")
    return value


def choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise Invalid(f"expected one of {', '.join(options)}, {got(value)}")
        return value

    return check


def url(value: Any) -> str:
    parts = urlsplit(text(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"expected an absolute http(s) URL, {got(value)}")
    return value.strip()


def absolute_url(value: Any) -> str:
    """An absolute URL that others are resolved against: it ends with a slash."""
    return url(value).rstrip("/") + "/"


def list_of(item: Check, *, allow_empty: bool = True) -> Check:
    def check(value: Any) -> tuple:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, {got(value)}")
        if not value and not allow_empty:
            raise Invalid("expected at least one entry, got an empty list")
        return tuple(dict.fromkeys(item(v) for v in value))

    return check


def map_of(key: Check, item: Check) -> Check:
    def check(value: Any) -> Mapping:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping, {got(value)}")
        out = {}
        for k, v in value.items():
            try:
                out[key(k)] = item(v)
            except Invalid as e:
                raise Invalid(f"{k}: {e}") from None
        return MappingProxyType(out)

    return check


def topic_slug(value: Any) -> str:
    return slugify(text(value))


def domain(value: Any) -> str:
    key = provider_key(text(value))
    if key is None:
        raise Invalid(f"expected a domain name such as example.com, {got(value)}")
    return key


def glob(value: Any) -> str:
    pattern = text(value)
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise Invalid(f"expected a pattern inside articles.folder, {got(value)}")
    return pattern


@dataclass(frozen=True)
class Setting:
    key: str
    check: Check
    default: Any
    help: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


REQUIRED = object()

SETTINGS: tuple[Setting, ...] = (
    Setting("site.title", text, REQUIRED, "Title of the site; feed titles start with it."),
    Setting("site.description", text, "News feeds", "Description of the all-articles feed."),
    Setting("site.language", text, "en", "Language code of the feeds (RSS language, xml:lang)."),
    Setting(
        "site.base_url",
        absolute_url,
        REQUIRED,
        "Absolute URL where the feeds are published; every feed URL is relative to it.",
    ),
    Setting(
        "site.link",
        absolute_url,
        None,
        "The site's home page, the feeds' channel link. Default: site.base_url.",
    ),
    Setting(
        "site.icon",
        url,
        None,
        "URL of a square image of the site: Atom `icon`, JSON Feed `icon` and `favicon`, the "
        "pages' favicon, and RSS `image` when there is no site.logo.",
    ),
    Setting(
        "site.logo",
        url,
        None,
        "URL of a wide image of the site (2:1): Atom `logo` and RSS `image`.",
    ),
    Setting(
        "articles.folder", text, "seeds", "Folder of article files, relative to the config file."
    ),
    Setting(
        "articles.patterns",
        list_of(glob, allow_empty=False),
        ("*.md", "*.txt"),
        "Glob patterns of article files inside articles.folder (`**/*.md` recurses).",
    ),
    Setting(
        "output.folder",
        text,
        "public",
        "Folder `feeds build` writes to, relative to the config file.",
    ),
    Setting(
        "output.gzip",
        boolean,
        False,
        "Also write `<file>.gz` beside every file, for a web server's pre-compressed files "
        "(nginx `gzip_static`).",
    ),
    Setting("quality.min", number, 0, "Lowest quality an article needs to enter a feed."),
    Setting(
        "quality.missing",
        choice("include", "exclude"),
        "include",
        "Articles without a quality: `include` them in every feed, or `exclude` them.",
    ),
    Setting(
        "quality.topics",
        map_of(topic_slug, number),
        MappingProxyType({}),
        "Per-topic minimum (topic name or slug → number) for that topic's feed.",
    ),
    Setting(
        "quality.providers",
        map_of(domain, number),
        MappingProxyType({}),
        "Per-provider minimum (domain → number) for that provider's feed.",
    ),
    Setting("feeds.items", items, 50, "Most recent items in each feed (at most 50)."),
    Setting(
        "feeds.formats",
        list_of(choice(*FORMAT_NAMES), allow_empty=False),
        FORMAT_NAMES,
        "Formats written for every feed.",
    ),
    Setting(
        "feeds.archives",
        boolean,
        True,
        "Publish older items as RFC 5005 archive pages linked from each feed.",
    ),
    Setting(
        "feeds.pages",
        boolean,
        True,
        "Publish the HTML pages people read: `index.html`, each feed's pages, the providers "
        "A–Z, and their style sheet, script and `providers.tsv`. `false`: the feeds and the "
        "OPML files alone.",
    ),
    Setting(
        "feeds.max_age",
        count,
        600,
        "Seconds readers may cache a feed: HTTP `Cache-Control: max-age` and RSS `ttl`.",
    ),
    Setting(
        "feeds.content",
        choice("full", "summary"),
        "full",
        "`full`: items carry the article's Markdown body as HTML content; `summary`: the "
        "excerpt only (for a site that may not republish the bodies).",
    ),
    Setting("feeds.all", boolean, True, "Make the all-articles feed."),
    Setting("feeds.topics.enabled", boolean, True, "Make one feed per topic."),
    Setting(
        "feeds.topics.include",
        list_of(topic_slug),
        (),
        "Only these topics get a feed (names or slugs). Empty: all topics.",
    ),
    Setting("feeds.topics.exclude", list_of(topic_slug), (), "These topics get no feed."),
    Setting("feeds.providers.enabled", boolean, True, "Make one feed per provider domain."),
    Setting(
        "feeds.providers.include",
        list_of(domain),
        (),
        "Only these provider domains get a feed. Empty: all providers.",
    ),
    Setting("feeds.providers.exclude", list_of(domain), (), "These providers get no feed."),
    Setting(
        "feeds.providers.min_articles",
        positive,
        1,
        "Fewest articles (after the quality filter) a provider needs for its own feed.",
    ),
    Setting(
        "websub.hub",
        url,
        None,
        "WebSub hub URL: feeds link to it, and it is told which feeds changed.",
    ),
    Setting(
        "serve.reload_interval",
        seconds,
        2.0,
        "`feeds serve` looks for changed article and config files at most this often.",
    ),
    Setting(
        "serve.filtered_renders",
        positive,
        # One: renders hold the interpreter lock, so a second adds no throughput, only
        # another thread the plain feeds wait behind (bench/filter_flood.py).
        1,
        "Filtered feeds `feeds serve` renders at once; past it, 503 with Retry-After.",
    ),
    Setting(
        "serve.memory",
        positive,
        256,
        "MiB `feeds serve` keeps the most asked-for answers in; the rest are read from disk.",
    ),
)

BY_KEY = {s.key: s for s in SETTINGS}
SECTIONS = {  # "feeds", "feeds.topics", ...: the keys that hold settings
    ".".join(s.key.split(".")[:i]) for s in SETTINGS for i in range(1, s.key.count(".") + 1)
}
