"""config.yaml → a validated, frozen :class:`Config`.

Every setting has one row in :data:`SETTINGS` (key, check, default, help); the README's
config reference is checked against that table. Validation collects every problem, so a
user fixes a config in one pass, and unknown keys are errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from feeds.errors import ConfigError, Problem
from feeds.model import FORMAT_NAMES
from feeds.text import provider_key, slugify

Check = Callable[[Any], Any]
T = TypeVar("T")


class Invalid(ValueError):
    """A setting's value is wrong; the message says what was expected."""


def _got(value: Any) -> str:
    return (
        f"got {value!r}" if not isinstance(value, (dict, list)) else f"got a {type(value).__name__}"
    )


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a non-empty string, {_got(value)}")
    return value.strip()


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected a number, {_got(value)}")
    return value


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"expected a whole number of 0 or more, {_got(value)}")
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
            f"expected at most {MAX_ITEMS} (older items go to archive pages), {_got(value)}"
        )
    return value


def seconds(value: Any) -> float:
    if number(value) < 0:
        raise Invalid(f"expected a number of seconds of 0 or more, {_got(value)}")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, {_got(value)}")
    return value


def choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise Invalid(f"expected one of {', '.join(options)}, {_got(value)}")
        return value

    return check


def url(value: Any) -> str:
    parts = urlsplit(text(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"expected an absolute http(s) URL, {_got(value)}")
    return value.strip()


def absolute_url(value: Any) -> str:
    """An absolute URL that others are resolved against: it ends with a slash."""
    return url(value).rstrip("/") + "/"


def list_of(item: Check, *, allow_empty: bool = True) -> Check:
    def check(value: Any) -> tuple:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, {_got(value)}")
        if not value and not allow_empty:
            raise Invalid("expected at least one entry, got an empty list")
        return tuple(dict.fromkeys(item(v) for v in value))

    return check


def map_of(key: Check, item: Check) -> Check:
    def check(value: Any) -> Mapping:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping, {_got(value)}")
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
        raise Invalid(f"expected a domain name such as example.com, {_got(value)}")
    return key


def glob(value: Any) -> str:
    pattern = text(value)
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise Invalid(f"expected a pattern inside articles.folder, {_got(value)}")
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
        "feeds.max_age",
        count,
        600,
        "Seconds readers may cache a feed: HTTP `Cache-Control: max-age` and RSS `ttl`.",
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
)

_BY_KEY = {s.key: s for s in SETTINGS}
_SECTIONS = {
    ".".join(s.key.split(".")[:i]) for s in SETTINGS for i in range(1, s.key.count(".") + 1)
}


# The settings as typed, frozen sections: ``config.feeds.items``, never ``"feeds.items"``.
# Each field is one row of SETTINGS (a test holds the two together); a field whose key is a
# section of SETTINGS is a nested section.


@dataclass(frozen=True)
class SiteSettings:
    title: str
    description: str
    language: str
    base_url: str
    link: str | None


@dataclass(frozen=True)
class ArticleSettings:
    folder: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class OutputSettings:
    folder: str
    gzip: bool


@dataclass(frozen=True)
class QualitySettings:
    min: float
    missing: str
    topics: Mapping[str, float]
    providers: Mapping[str, float]


@dataclass(frozen=True)
class TopicFeedSettings:
    enabled: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]


@dataclass(frozen=True)
class ProviderFeedSettings(TopicFeedSettings):
    min_articles: int


@dataclass(frozen=True)
class FeedSettings:
    items: int
    formats: tuple[str, ...]
    archives: bool
    max_age: int
    all: bool
    topics: TopicFeedSettings
    providers: ProviderFeedSettings


@dataclass(frozen=True)
class WebSubSettings:
    hub: str | None


@dataclass(frozen=True)
class ServeSettings:
    reload_interval: float


@dataclass(frozen=True)
class Config:
    """The validated settings, plus where the file lives (which equality leaves out: two
    configs are equal when every setting is)."""

    site: SiteSettings
    articles: ArticleSettings
    output: OutputSettings
    quality: QualitySettings
    feeds: FeedSettings
    websub: WebSubSettings
    serve: ServeSettings
    path: Path = field(compare=False)

    @property
    def site_link(self) -> str:
        return self.site.link or self.site.base_url

    @property
    def articles_folder(self) -> Path:
        return self.path.parent / self.articles.folder

    @property
    def output_folder(self) -> Path:
        return self.path.parent / self.output.folder


def _section(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """An instance of the section class ``cls`` from validated ``values`` keyed as in
    SETTINGS; its fields that name a section of SETTINGS are built the same way."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        key = f"{prefix}{f.name}"
        if key in _SECTIONS:
            kwargs[f.name] = _section(_SECTION_TYPES[key], values, f"{key}.")
        elif key in values:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


_SECTION_TYPES: dict[str, type] = {
    "site": SiteSettings,
    "articles": ArticleSettings,
    "output": OutputSettings,
    "quality": QualitySettings,
    "feeds": FeedSettings,
    "feeds.topics": TopicFeedSettings,
    "feeds.providers": ProviderFeedSettings,
    "websub": WebSubSettings,
    "serve": ServeSettings,
}


def parse(data: Any, source: str = "config.yaml", path: Path | None = None) -> Config:
    """Validate loaded YAML; raise :class:`ConfigError` with every problem found."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    given: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            problems.append(f"{prefix or 'the file'}: expected a mapping of settings, {_got(node)}")
            return
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if dotted in _BY_KEY and value is None and _BY_KEY[dotted].default is None:
                given.add(dotted)  # an optional setting left empty on purpose
            elif dotted in _BY_KEY:
                given.add(dotted)
                try:
                    values[dotted] = _BY_KEY[dotted].check(value)
                except Invalid as e:
                    problems.append(f"{dotted}: {e}")
            elif dotted in _SECTIONS:
                walk(value, dotted)
            else:
                problems.append(f"{dotted}: unknown setting{_suggest(dotted)}")

    walk({} if data is None else data, "")
    for setting in SETTINGS:
        if setting.key not in values:
            if setting.required and setting.key not in given:
                problems.append(f"{setting.key}: required setting is missing")
            values[setting.key] = setting.default
    if problems:
        raise ConfigError([Problem(source, p) for p in problems])
    return _section(Config, {**values, "path": path or Path(source)})


def _suggest(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    close = [k for k in _BY_KEY if k.rsplit(".", 1)[-1] == leaf]
    return f" (did you mean {close[0]}?)" if close else ""


def load(path: Path | str) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            [Problem(source, f"cannot read: {getattr(e, 'strerror', None) or e}")]
        ) from None
    try:
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = re.sub(r"\s+", " ", getattr(e, "problem", None) or str(e))
        raise ConfigError([Problem(source, f"invalid YAML: {reason}", line)]) from None
    return parse(data, source, path)
