"""config.yaml → a validated, frozen :class:`Config`.

Each value is checked by its row in :data:`feeds.settings.SETTINGS`. Validation collects
every problem, so a user fixes a config in one pass, and unknown keys are errors.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from feeds.errors import ConfigError, Problem
from feeds.model import FeedSpec
from feeds.settings import BY_KEY, SECTIONS, SETTINGS, Invalid, got

T = TypeVar("T")

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
    icon: str | None
    logo: str | None


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
    pages: bool
    max_age: int
    content: str
    all: bool
    topics: TopicFeedSettings
    providers: ProviderFeedSettings


@dataclass(frozen=True)
class WebSubSettings:
    hub: str | None


@dataclass(frozen=True)
class ServeSettings:
    reload_interval: float
    filtered_renders: int
    memory: int  # MiB


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

    def feed_images(self, spec: FeedSpec) -> tuple[str | None, str | None]:
        """(icon, logo) of a feed: a provider feed's own image as its icon when it has one,
        else the site's."""
        if spec.image:
            return spec.image, None
        return self.site.icon, self.site.logo

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
        if key in SECTIONS:
            kwargs[f.name] = _section(_SECTION_CLASSES[key], values, f"{key}.")
        elif key in values:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


_SECTION_CLASSES: dict[str, type] = {
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


def parse(
    data: Any,
    source: str = "config.yaml",
    path: Path | None = None,
    overridden: Collection[str] = (),
) -> Config:
    """Validate loaded YAML; raise :class:`ConfigError` with every problem found. A problem
    with a key in ``overridden`` (set by :func:`override`) is told as one of ``--set``."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    given: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            problems.append(f"{prefix or 'the file'}: expected a mapping of settings, {got(node)}")
            return
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if dotted in BY_KEY and value is None and BY_KEY[dotted].default is None:
                given.add(dotted)  # an optional setting left empty on purpose
            elif dotted in BY_KEY:
                given.add(dotted)
                try:
                    values[dotted] = BY_KEY[dotted].check(value)
                except Invalid as e:
                    problems.append(f"{dotted}: {e}")
            elif dotted in SECTIONS:
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
        raise ConfigError([Problem(_source(p, source, overridden), p) for p in problems])
    return _section(Config, {**values, "path": path or Path(source)})


def _source(problem: str, source: str, overridden: Collection[str]) -> str:
    key = problem.split(": ", 1)[0]
    return "--set" if any(key == k or key.startswith(k + ".") for k in overridden) else source


def override(data: Any, overrides: Mapping[str, Any]) -> tuple[Any, set[str]]:
    """``data`` (loaded YAML) with ``overrides`` (dotted key → value) set in a copy, and the
    keys set, for :func:`parse`. A key inside a mapping setting names the setting, then the
    mapping's key (``quality.topics.AI Ethics``, ``quality.providers.example.com``)."""
    data = copy.deepcopy(data) if isinstance(data, dict) else {} if data is None else data
    if not isinstance(data, dict):
        return data, set()  # parse says the file is not a mapping
    keys = set()
    for dotted, value in overrides.items():
        setting = next((k for k in _LONGEST_FIRST if dotted.startswith(k + ".")), None)
        parts = [*setting.split("."), dotted[len(setting) + 1 :]] if setting else dotted.split(".")
        keys.add(setting or dotted)
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data, keys


_LONGEST_FIRST = sorted(BY_KEY, key=len, reverse=True)


def _suggest(key: str) -> str:
    """A hint at the known key meant: one with the same last part (``min`` is
    ``quality.min``), else the nearest in spelling (``site.tittle`` is ``site.title``)."""
    leaf = key.rsplit(".", 1)[-1]
    close = [k for k in BY_KEY if k.rsplit(".", 1)[-1] == leaf]
    close = close or difflib.get_close_matches(key, [*BY_KEY, *SECTIONS], n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def load(path: Path | str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a config file, with ``overrides`` (see :func:`override`)."""
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
    data, overridden = override(data, overrides or {})
    return parse(data, source, path, overridden)
