"""Article files → normalised :class:`Article` values, or a :class:`Problem` naming the file.

A file's bytes are checked (size, text, UTF-8), its front matter read
(:mod:`feeds.front_matter`), and each field normalised once here: text cleaned and cut,
URLs canonical, dates aware UTC, topics slugged, so everything downstream trusts them.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from dateutil import parser as dateparser
from dateutil import tz

from feeds import body, front_matter
from feeds.errors import ArticleError, Problem
from feeds.model import Article, Image, Provider, Related, quality_number
from feeds.text import canonical_url, clean, provider_key, show, slugify

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TITLE = 300
MAX_EXCERPT = 1000  # characters; keeps a 50-item feed far below what readers accept
MAX_TOPICS = 20
MAX_NAME = 100  # characters of a topic or provider name
MAX_RELATED = 10
MAX_PIXELS = 100_000  # largest image width or height taken as true


def read(path: str | Path) -> Article | Problem:
    """Parse one file; never raises for bad content."""
    try:
        # At most one byte past the limit: a huge file is refused without reading it whole.
        # Sized from its stat (a read of the limit itself made a 16 MiB buffer per file),
        # with no file object: their system calls took as long as the reading.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = min(os.fstat(fd).st_size, MAX_FILE_BYTES) + 1
            raw = os.read(fd, size)
            if len(raw) == size:  # grown since, or of a size the system does not tell
                raw += os.read(fd, MAX_FILE_BYTES + 1 - size)
        finally:
            os.close(fd)
        return parse(raw, str(path))
    except ArticleError as e:
        return e.problem
    except OSError as e:
        return Problem(str(path), f"skipped: cannot read: {e.strerror}")


def parse(raw: bytes, source: str) -> Article:
    """Bytes of one article file → an :class:`Article`; raises :class:`ArticleError`."""
    if len(raw) > MAX_FILE_BYTES:
        raise ArticleError(source, f"file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    if b"\0" in raw:
        raise ArticleError(source, "binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ArticleError(source, f"not UTF-8 text (bad byte at offset {e.start})") from None
    text = text.replace("\r\n", "\n")
    try:
        meta, markdown = front_matter.split(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 + _blank_lines_before(text) if mark else None
        reason = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ArticleError(source, f"invalid YAML: {reason}", line) from None
    except RecursionError:
        raise ArticleError(source, "invalid YAML: nested too deeply") from None
    if meta is None:
        raise ArticleError(source, "no front matter (the file must start with a --- line)", 1)
    if not meta:
        raise ArticleError(source, "front matter is empty or not a mapping of fields", 1)
    try:
        article = _article(meta, source)
    except _FieldError as e:
        raise ArticleError(source, f"{e.field}: {e}", _line_of(text, e.field)) from None
    if not markdown:
        return article
    try:
        # The body and the related articles after it share an item's room for content.
        room = body.MAX_CONTENT - body.cost(body.related_html(article.related))
        return replace(article, body=body.render(markdown, article.id, room))
    except ValueError as e:
        raise ArticleError(source, f"body: cannot be rendered ({e})") from None


class _FieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _article(meta: dict, source: str) -> Article:
    url = _url(meta)
    topics = _topics(meta.get("topics"))
    return Article(
        source=source,
        id=url,
        title=_text(meta, "title", MAX_TITLE, required=True),
        excerpt=_text(meta, "excerpt", MAX_EXCERPT),
        published=_date(meta.get("publishedDateTime")),
        provider=_provider(meta.get("provider"), url),
        topics=topics,
        topic_slugs=tuple(map(slugify, topics)),
        quality=_quality(meta.get("quality")),
        image=_first_image(meta.get("images")),
        related=_related(meta.get("related"), url),
        category=_optional_text(meta.get("category")),
        type=_optional_text(meta.get("type")),
    )


def _text(meta: dict, field: str, limit: int, required: bool = False) -> str:
    value = meta.get(field)
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problem = "missing" if value is None else f"expected text, got a {type(value).__name__}"
        raise _FieldError(field, problem)
    try:
        value = clean(str(value))
    except ValueError:  # an int too long for str() (YAML sexagesimal 1:0:0:... grows fast)
        raise _FieldError(field, "expected text, got a number too large to show") from None
    if not value and required:
        raise _FieldError(field, "is empty")
    return _shorten(value, limit)


def _shorten(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[:limit].rsplit(" ", 1)[0] or value[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _optional_text(value: Any) -> str | None:
    return clean(value) or None if isinstance(value, str) else None


def _url(meta: dict) -> str:
    # originalUrl is the article itself; in this data webUrl can point elsewhere.
    for field in ("originalUrl", "webUrl"):
        if isinstance(meta.get(field), str) and (url := canonical_url(meta[field])):
            return url
    given = meta.get("originalUrl", meta.get("webUrl"))
    if given is None:
        raise _FieldError("webUrl", "missing (an article needs webUrl or originalUrl)")
    raise _FieldError("webUrl", f"not an http(s) URL: {show(given)}")


def parse_date(value: Any) -> datetime:
    """An ISO date (a naive one is UTC) → aware UTC datetime; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO date, got {show(value)}")
    text = value.strip()
    try:
        try:
            parsed = _rfc3339(text) or dateparser.isoparse(text)
        except ValueError:
            parsed = _parse_words(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except _Vague as e:
        raise ValueError(f"not a date: {show(value)} ({e})") from None
    except (ValueError, OverflowError, dateparser.ParserError):
        raise ValueError(f"not a date: {show(value)}") from None


# The form nearly every article's date has (2023-06-01T10:00:00Z, with a fraction or an
# offset or without): read by datetime, many times faster than by dateutil.
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:[0-5]\d)", re.ASCII
)


def _rfc3339(value: str) -> datetime | None:
    """``value`` as a datetime where it has that form and names a time; else None, for
    dateutil to read (it takes an hour of 24 as the next midnight, datetime does not)."""
    if not _RFC3339.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class _Vague(ValueError):
    """A date dateutil can read but that does not name one moment."""


# dateutil fills what a date leaves out from its default, which is today: "June 5" or
# "Monday" would give a different date on every build. Parsing with two defaults that
# differ in year, month and day shows whether the text named all three.
_DEFAULTS = (datetime(2000, 1, 1), datetime(2001, 2, 2))


def _parse_words(value: str) -> datetime:
    first, second = (dateparser.parse(value, default=d, tzinfos=_zone) for d in _DEFAULTS)
    if first != second:
        raise _Vague("the year, month or day is missing")
    return first


def _zone(name: str | None, offset: int | None) -> Any:
    """A time zone dateutil found: explicit offsets and UTC only. Without this, a name that
    happens to be the machine's zone means local time, and any other name ("EST") is
    silently dropped with a warning, so the same file gives different dates."""
    if offset is not None:
        return tz.tzoffset(name, offset)
    if name is None:
        return None
    if name.upper() in ("UTC", "UT", "GMT", "Z"):
        return UTC
    raise _Vague(f"unknown time zone {name!r}; give an offset such as +02:00")


def _date(value: Any) -> datetime:
    if value is None:
        raise _FieldError("publishedDateTime", "missing")
    try:
        return parse_date(value)
    except ValueError as e:
        raise _FieldError("publishedDateTime", str(e)) from None


def _provider(value: Any, url: str) -> Provider:
    """The provider, keyed by its domain; the article's host stands in for a missing one.
    Its image is its first with an absolute URL (in the data, relative ones are relative
    to a site not named)."""
    name = domain = None
    image: Image | None = None
    if isinstance(value, dict):
        name = _optional_text(value.get("name"))
        domain = provider_key(value["domain"]) if isinstance(value.get("domain"), str) else None
        image = _first_image(value.get("images"))
    elif isinstance(value, str):
        name = clean(value) or None
    # The URL's host is a valid host name already (canonical_url): it is its own key when
    # dropping its "www." leaves none.
    host = url.split("/")[2].split(":")[0]
    domain = domain or provider_key(host) or host
    return Provider(_shorten(name or domain, MAX_NAME), domain, image.url if image else None)


def _topics(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    names = (clean(t) for t in value if isinstance(t, str))
    return tuple(dict.fromkeys(_shorten(n, MAX_NAME) for n in names if n))[:MAX_TOPICS]


def _quality(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return quality_number(value)
    except ValueError:
        raise _FieldError("quality", f"expected a number, got {show(value)}") from None


def _first_image(value: Any) -> Image | None:
    for image in value if isinstance(value, list) else ():
        if isinstance(image, dict) and isinstance(image.get("url"), str):
            url = canonical_url(image["url"]) if _absolute(image["url"]) else None
            if url:
                return Image(url, _dimension(image.get("width")), _dimension(image.get("height")))
    return None


def _absolute(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def _dimension(value: Any) -> int | None:
    # Bounded: a YAML int can have thousands of digits, more than str() turns into text.
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PIXELS:
        return value
    return None


def _related(value: Any, own_url: str) -> tuple[Related, ...]:
    out: dict[str, Related] = {}
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            continue
        url = isinstance(item.get("webUrl"), str) and canonical_url(item["webUrl"])
        title = clean(item["title"])
        if url and title and url != own_url and url not in out:
            provider = item.get("provider")
            name = _optional_text(provider.get("name")) if isinstance(provider, dict) else None
            name = name and _shorten(name, MAX_NAME)
            out[url] = Related(_shorten(title, MAX_TITLE), url, name)
    return tuple(out.values())[:MAX_RELATED]


def _blank_lines_before(text: str) -> int:
    """Blank lines before the opening ---, which front matter parsing strips."""
    return text[: len(text) - len(text.lstrip())].count("\n")


def _line_of(text: str, field: str) -> int | None:
    match = re.search(rf"^{re.escape(field)}\s*:", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None
