"""Article files → normalised :class:`Article` values, or a :class:`Problem` naming the file."""

from __future__ import annotations

import fnmatch
import glob
import logging
import math
import multiprocessing
import os
import re
import reprlib
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import frontmatter
import yaml
from dateutil import parser as dateparser
from dateutil import tz
from frontmatter.default_handlers import YAMLHandler

from feeds import fastyaml
from feeds.errors import ArticleError, Problem
from feeds.model import Article, Image, Provider, Related
from feeds.text import canonical_url, clean, provider_key

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TITLE = 300
MAX_EXCERPT = 1000  # characters; keeps a 50-item feed far below what readers accept
MAX_TOPICS = 20
MAX_NAME = 100  # characters of a topic or provider name
MAX_RELATED = 10
# Nesting of lists and mappings in front matter (real articles use 3). libyaml's C composer
# recurses once per level and overflows the C stack near 30,000: far below that, and far
# above any real file.
MAX_DEPTH = 1000
MAX_PIXELS = 100_000  # largest image width or height taken as true


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe libyaml loader that keeps timestamps as text, so dateutil parses every date."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's safe constructors convert scalars with int(), float() and look-ups and let
        # their errors out (`!!bool maybe`, `!!int ''`, a plain `0x_`, an int of 5,000
        # digits): as YAML errors they name the file and line instead of ending the build.
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, IndexError, OverflowError):
            kind = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                problem=f"{_show(node.value)} is not a valid {kind}", problem_mark=node.start_mark
            ) from None

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        # libyaml's composer asks this for every scalar; most are quoted, or plain text whose
        # first character no implicit type (bool, int, float, null, ...) can start with.
        if (
            kind is yaml.ScalarNode
            and value
            and (implicit[0] and value[0] not in _TYPED_FIRST or not implicit[0] and implicit[1])
        ):
            return _STR[1]
        return super().resolve(kind, value, implicit)

    def construct_document(self, node: yaml.Node) -> Any:
        # PyYAML's generic construction (generators, a memo of every node, path resolvers)
        # is most of the time a file takes. Front matter is nearly always mappings, lists and
        # strings: built here directly, anything else (merge keys, non-text keys, sets, ...)
        # by PyYAML as before. Aliases share one object, as in PyYAML.
        try:
            return self._plain(node, {})
        except (_Unusual, RecursionError):
            return super().construct_document(node)

    def _plain(self, node: yaml.Node, built: dict) -> Any:
        kind = (type(node), node.tag)
        if kind == _STR:
            return node.value
        if kind in _SCALARS:
            return self.construct_object(node)
        found = built.get(node)
        if found is not None:
            return found
        if kind == _MAP:
            built[node] = data = {}
            for key, value in node.value:
                if (type(key), key.tag) != _STR:
                    raise _Unusual
                data[key.value] = self._plain(value, built)
            return data
        if kind == _SEQ:
            items: list[Any] = []
            built[node] = items
            items.extend(self._plain(child, built) for child in node.value)
            return items
        raise _Unusual


class _Unusual(Exception):
    """Front matter that _Loader leaves to PyYAML's generic construction."""


# (node type, tag) of what _Loader builds itself.
_TAG = "tag:yaml.org,2002:"
_STR = (yaml.ScalarNode, _TAG + "str")
_MAP = (yaml.MappingNode, _TAG + "map")
_SEQ = (yaml.SequenceNode, _TAG + "seq")
_SCALARS = {
    (yaml.ScalarNode, _TAG + name) for name in ("int", "float", "bool", "null", "timestamp")
}
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)
# The first characters of the plain scalars that PyYAML may resolve to a type other than str.
_TYPED_FIRST = frozenset(_Loader.yaml_implicit_resolvers)
assert None not in _TYPED_FIRST and not _Loader.yaml_path_resolvers


class _Handler(YAMLHandler):
    def load(self, fm: str, **kwargs: object) -> Any:
        data = fastyaml.load(fm)
        if data is not fastyaml.SLOW:
            return data
        _check_depth(fm)
        return yaml.load(fm, Loader=_Loader)  # noqa: S506 - a safe loader


def _check_depth(fm: str) -> None:
    """Refuse front matter nested deeper than MAX_DEPTH before libyaml builds it: its C
    composer would overflow the C stack (a segfault that kills the whole process, not a
    RecursionError). The event parser it runs on first keeps its own stack, so counting its
    events is safe at any depth; it is only needed when the text could be deeper."""
    if fastyaml.depth_bound(fm) <= MAX_DEPTH:
        return
    depth = 0
    for event in yaml.parse(fm, Loader=_Loader):
        depth += _NESTING.get(type(event), 0)
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                problem=f"nested more than {MAX_DEPTH} levels deep",
                problem_mark=event.start_mark,  # type: ignore[arg-type]  # libyaml's Mark
            )


_NESTING = {
    yaml.SequenceStartEvent: 1,
    yaml.MappingStartEvent: 1,
    yaml.SequenceEndEvent: -1,
    yaml.MappingEndEvent: -1,
}


_HANDLER = _Handler()


def find(folder: Path, patterns: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """Paths of the article files under ``folder`` matching ``patterns``, sorted; and what
    was passed over. Paths are text: a Path object each costs more than finding the file."""
    return Finder(folder, patterns).all()


class Finder:
    """The article files in a folder: all of them, or what one path is now. Remembers the
    folders and symbolic links it met, which a watcher of the folder may not see into."""

    def __init__(self, folder: Path, patterns: Iterable[str]):
        self.folder = folder
        self.patterns = tuple(patterns)
        self.root = folder.resolve()
        self.links: set[str] = set()  # article files that are symbolic links
        self.folders: dict[str, bool] = {}  # folders of the files met: inside the root?

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise ArticleError(self.folder, "articles folder not found")

    def all(self) -> tuple[list[str], list[Problem]]:
        """:func:`find`. Raises ArticleError if the folder is gone (a Finder is kept from
        build to build)."""
        self._check_root()
        names: set[str] = set()
        for pattern in self.patterns:  # glob.glob on names: pathlib's glob is much slower
            names.update(
                glob.glob(pattern, root_dir=self.folder, recursive=True, include_hidden=True)
            )
        found = []
        problems = []
        for name in sorted(names, key=path_order):
            result = self._examine(os.path.join(self.folder, name))
            if isinstance(result, Problem):
                problems.append(result)
            elif result is not None:
                found.append(result)
        return found, problems

    def check(self, path: str) -> str | Problem | None:
        """``path`` (as :meth:`all` would join it) if :meth:`all` would list it now, the
        problem it would report, or None: not an article file (any more)."""
        if not matches(os.path.relpath(path, self.folder), self.patterns):
            return None
        return self._examine(path)

    def _examine(self, path: str) -> str | Problem | None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:  # removed since it was listed
            return None
        try:
            if stat.S_ISLNK(mode):
                self.links.add(path)
                contained = Path(path).resolve().is_relative_to(self.root)
                mode = os.stat(path).st_mode if contained else mode
            else:  # only the folder can lead elsewhere: resolve each folder once
                parent = os.path.dirname(path)
                if parent not in self.folders:
                    self.folders[parent] = Path(parent).resolve().is_relative_to(self.root)
                contained = self.folders[parent]
        except FileNotFoundError:
            return Problem(path, "skipped: a symbolic link to nothing")
        except (OSError, RuntimeError):  # a symlink loop: RuntimeError before Python 3.13
            return Problem(path, "skipped: a symbolic link that loops")
        if not contained:
            return Problem(path, "skipped: leads outside the articles folder")
        if not stat.S_ISREG(mode):
            return Problem(path, "skipped: not a regular file")
        return path


def path_order(path: str) -> str:
    """Sorts paths by folder, then name, as Path objects would (\\0 sorts before any character)."""
    return path.replace(os.sep, "\0")


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether :func:`find` lists ``name`` (relative to the folder) for one of ``patterns``:
    glob's rules, with ``**`` as zero or more folders and hidden names included."""
    parts = name.split(os.sep)
    return any(_matches(parts, pattern.split("/")) for pattern in patterns)


def _matches(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[k:], pattern[1:]) for k in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _matches(parts[1:], pattern[1:])
    )


@dataclass(frozen=True)
class Stamp:
    """What identifies one version of a file without reading it: any write changes ctime
    (which, unlike mtime, no program can set back)."""

    mtime_ns: int
    ctime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: str | Path) -> Stamp:
        st = os.stat(path)
        return cls(st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


SETTLED_NS = 2_000_000_000
# Files each worker process must have to parse for its start-up to be worth it.
PER_WORKER = 1000
CHUNK = 250  # files a worker process reads per task

Track = Callable[[Iterator, int], Iterable]  # wraps results as they come, e.g. in a progress bar


def _untracked(results: Iterator, count: int) -> Iterator:
    return results


class ArticleCache:
    """Parsed articles keyed on file path and stamp: a rebuild re-reads only changed files."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Stamp | None, Article | Problem]] = {}
        # A cache file and the settled entries it holds, once restored or saved
        # (:mod:`feeds.cache`): it is written again only when they differ.
        self.saved: tuple[Path, dict[str, tuple[Stamp, Article | Problem]]] | None = None

    def settled(self) -> dict[str, tuple[Stamp, Article | Problem]]:
        """The entries whose stamps identify the file's content (see :meth:`load`)."""
        # The entry tuples themselves, not new ones: feeds.cache compares them with the saved.
        settled = {path: entry for path, entry in self._entries.items() if entry[0] is not None}
        return cast(dict[str, tuple[Stamp, Article | Problem]], settled)

    def update(self, entries: dict[str, tuple[Stamp, Article | Problem]]) -> None:
        """Take ``entries``, e.g. saved by an earlier process; :meth:`load` checks each stamp."""
        self._entries.update(entries)

    def load(self, paths: Sequence[str], track: Track | None = None) -> list[Article | Problem]:
        """The article or problem of each path, in order; forgets every other path."""
        self._entries, results = self._look(paths, track)
        return [results[p] for p in paths]

    def refresh(
        self, paths: Collection[str], gone: Iterable[str] = ()
    ) -> dict[str, Article | Problem]:
        """The article or problem of each of ``paths``, by path; forgets ``gone`` and keeps
        every other path as it was."""
        entries, results = self._look(paths, None)
        for path in gone:
            self._entries.pop(path, None)
        self._entries.update(entries)
        return results

    def _look(self, paths: Iterable[str], track: Track | None) -> tuple[dict, dict]:
        """Entries and results for ``paths``: files whose stamps match are not read again."""
        entries: dict[str, tuple[Stamp | None, Article | Problem]] = {}
        results: dict[str, Article | Problem] = {}
        misses: dict[str, Stamp] = {}
        for path in paths:
            try:
                stamp = Stamp.of(path)
            except OSError as e:
                results[path] = Problem(str(path), f"skipped: cannot read: {e.strerror}")
                continue
            hit = self._entries.get(path)
            if hit and hit[0] == stamp:
                entries[path] = hit  # kept as it is: also what a saved cache file holds
                results[path] = hit[1]
            else:
                misses[path] = stamp
        track = track or _untracked
        results.update(zip(misses, track(read_all([*misses]), len(misses)), strict=True))
        # File times tick coarsely (a few ms): a file written again in the same tick with the
        # same size keeps its stamp. A stamp is trusted once the file is older than that.
        settled = time.time_ns() - SETTLED_NS
        for path, stamp in misses.items():
            entries[path] = (stamp if stamp.ctime_ns < settled else None, results[path])
        return entries, results


def read_all(paths: Sequence[str]) -> Iterator[Article | Problem]:
    """:func:`read` of each path, in order; many files are parsed on all the cores."""
    workers = min(len(os.sched_getaffinity(0)), len(paths) // PER_WORKER)
    if workers < 2:
        yield from map(read, paths)
        return
    # fork starts fastest, but forking a process with threads (the server reloads from
    # one) can copy a lock another thread holds; forkserver forks a clean process instead.
    context: multiprocessing.context.BaseContext
    if threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    chunks = [paths[k : k + CHUNK] for k in range(0, len(paths), CHUNK)]
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for results in pool.map(_read_chunk, chunks):
            yield from results


def _read_chunk(paths: Sequence[str]) -> list[Article | Problem]:
    return [read(p) for p in paths]


def read(path: str | Path) -> Article | Problem:
    """Parse one file; never raises for bad content."""
    try:
        # At most one byte past the limit: a huge file is refused without reading it whole.
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
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
    if not _HANDLER.detect(text.lstrip()):
        raise ArticleError(source, "no front matter (the file must start with a --- line)", 1)
    try:
        meta, _ = frontmatter.parse(text, handler=_HANDLER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 + _blank_lines_before(text) if mark else None
        reason = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ArticleError(source, f"invalid YAML: {reason}", line) from None
    except RecursionError:
        raise ArticleError(source, "invalid YAML: nested too deeply") from None
    if not meta:
        raise ArticleError(source, "front matter is empty or not a mapping of fields", 1)
    try:
        return _article(meta, source)
    except _FieldError as e:
        raise ArticleError(source, f"{e.field}: {e}", _line_of(text, e.field)) from None


class _FieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _article(meta: dict, source: str) -> Article:
    url = _url(meta)
    return Article(
        source=source,
        id=url,
        title=_text(meta, "title", MAX_TITLE, required=True),
        excerpt=_text(meta, "excerpt", MAX_EXCERPT),
        published=_date(meta.get("publishedDateTime")),
        provider=_provider(meta.get("provider"), url),
        topics=_topics(meta.get("topics")),
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
    raise _FieldError("webUrl", f"not an http(s) URL: {_show(given)}")


# A bounded repr: YAML aliases share nodes, so a short file can hold a list of 9**9
# strings ("billion laughs"), and a plain repr of it would never finish.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 80


def _show(value: Any) -> str:
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long for repr()
        text = "a number too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def parse_date(value: Any) -> datetime:
    """An ISO date (a naive one is UTC) → aware UTC datetime; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO date, got {_show(value)}")
    try:
        try:
            parsed = dateparser.isoparse(value.strip())
        except ValueError:
            parsed = _parse_words(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except _Vague as e:
        raise ValueError(f"not a date: {_show(value)} ({e})") from None
    except (ValueError, OverflowError, dateparser.ParserError):
        raise ValueError(f"not a date: {_show(value)}") from None


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
    """The provider, keyed by its domain; the article's host stands in for a missing one."""
    name = domain = None
    if isinstance(value, dict):
        name = _optional_text(value.get("name"))
        domain = provider_key(value["domain"]) if isinstance(value.get("domain"), str) else None
    elif isinstance(value, str):
        name = clean(value) or None
    # The URL's host is a valid host name already (canonical_url): it is its own key when
    # dropping its "www." leaves none.
    host = url.split("/")[2].split(":")[0]
    domain = domain or provider_key(host) or host
    return Provider(name=_shorten(name or domain, MAX_NAME), domain=domain)


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
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _FieldError("quality", f"expected a number, got {_show(value)}")
    try:
        # An int beyond float's range raises OverflowError here, not in isfinite below.
        number = float(value)
    except (ValueError, OverflowError):
        raise _FieldError("quality", f"expected a number, got {_show(value)}") from None
    if not math.isfinite(number):
        raise _FieldError("quality", f"expected a number, got {_show(value)}")
    return number


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
