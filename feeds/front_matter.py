"""The front matter of an article file (the YAML between its --- lines) → plain values,
as PyYAML's safe loader (YAML 1.1) reads it, timestamps kept as text: :func:`fields`.

Two parsers read it. Most files are read by yaml_rs (a Rust YAML 1.2 parser), wherever
that is sure to give what PyYAML gives; :func:`_fast_load` says when it is not. The two
specs read some plain scalars differently (``yes``, ``017``, ``0o17``, ``1e3``, ``1:20``,
``-.5``) and yaml_rs knows no merge keys, tags or YAML 1.1 line breaks. So the fast result
is taken only when the text has none of the constructs where they part (tags, anchors,
aliases, block scalars, complex keys, directives, odd characters, unusual number forms,
deep nesting) and no text value or key in it is one that PyYAML would have read as another
type had it been written plain. Anything else, any yaml_rs error included, is read by
libyaml through PyYAML (:class:`_Loader`): its results and error messages stay the
publisher's. ``tests/test_front_matter.py`` compares the two on generated YAML full of
such constructs.
"""

from __future__ import annotations

import functools
from typing import Any

import frontmatter
import re2
import yaml
import yaml_rs
from frontmatter.default_handlers import YAMLHandler
from yaml.resolver import Resolver

from feeds.text import show

# Nesting of lists and mappings in front matter (real articles use 3). Both parsers recurse
# once per level and overflow the stack (a crash, not an error): yaml_rs some 10,000 levels
# deep (1,500 in a thread with a 1 MiB stack), libyaml's C composer near 30,000. Far below
# that, and far above any real file.
MAX_DEPTH = 1000


def fields(text: str) -> dict[str, Any] | None:
    """The fields of the front matter that ``text`` (an article file's text) starts with, or
    None if it starts with none; {} if it is empty or not a mapping. Raises yaml.YAMLError,
    whose mark's line is 0 at the opening --- line, or RecursionError."""
    return split(text)[0]


def split(text: str) -> tuple[dict[str, Any] | None, str]:
    """:func:`fields` of ``text``, and the body after its front matter (stripped); the
    fields are None, and the body "", when ``text`` starts with no front matter."""
    if not _HANDLER.detect(text.lstrip()):
        return None, ""
    return frontmatter.parse(text, handler=_HANDLER)


_SLOW = object()  # _fast_load's answer when the text is PyYAML's to read

# Where the two parsers may part, found in one scan by RE2 (an automaton: its alternatives
# cost no more than one, where re tries each at every character), is any of
_UNSURE = re2.compile(
    "|".join(
        [
            # a character PyYAML reads differently or refuses: one it does not print, a tab,
            # a line break that YAML 1.1 has and YAML 1.2 has not;
            r"[^\n\x20-\x7E\x{A0}-\x{2027}\x{202A}-\x{D7FF}\x{E000}-\x{FEFE}\x{FF00}-\x{FFFD}"
            r"\x{10000}-\x{10FFFF}]",
            # merge keys, a colon ending a word in flow style ([x:]), directives, document
            # markers, escaped surrogates (PyYAML refuses "\ud800\udfff", yaml_rs makes it
            # one character);
            r"<<|:[,\]}]|\n(?:%|---|\.\.\.)|\\(?:u|U0000)[dD][89a-fA-F]",
            # at the start of a word (after a line break, space or flow indicator): tags,
            # block scalars (yaml_rs reads an empty one as a line break), anchors, aliases,
            # complex keys, and the numbers the specs read differently (017, 0o17, 0x11,
            # 0b1, 1e3, 1.0e3, 1_000, .5);
            r"[ \n\[{,](?:[!|>]|[&*][^ \n]|\?[ \n\]},]"
            r"|[-+]?(?:0[0-9_oxbOXB]|[0-9.]+[eE_]|\.[0-9]))",
            # a value right after a quoted key ({"a":017}).
            r"""["']:[^ \n]""",
        ]
    )
)
_TYPED = Resolver.yaml_implicit_resolvers  # first character → [(tag, pattern)]
_AS_TEXT = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"}  # timestamps stay text


def _fast_load(text: str) -> Any:
    """The front matter of ``text`` as PyYAML's safe loader reads it (timestamps as
    text), or _SLOW when only PyYAML can tell."""
    text = f"\n{text}\n"  # the first plain scalar follows a line break, the last indicator one
    if _depth_bound(text) > MAX_DEPTH or _unsure(text):
        return _SLOW
    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # PyYAML gives the error, with its message and line
        return _SLOW
    return data if _agrees(data) else _SLOW


def _unsure(text: str) -> bool:
    try:
        return _UNSURE.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate (RE2 reads UTF-8): PyYAML refuses it
        return True


def _depth_bound(text: str) -> int:
    """How deep YAML ``text`` can nest at most: each level needs one of the indicators
    counted (real front matter has up to some 750 of them)."""
    return sum(map(text.count, "[{-:?"))


def _agrees(data: Any) -> bool:
    """Whether PyYAML would read the text ``data`` came from the same way. Walked with a
    list of the values left to look at, not by recursion: faster, and at any depth."""
    left = [data]
    while left:
        value = left.pop()
        kind = type(value)
        if kind is str:
            if not _text_agrees(value):
                return False
        elif kind is dict:
            for key in value:
                if type(key) is not str or not _key_agrees(key):
                    return False
            left.extend(value.values())
        elif kind is list:
            left.extend(value)
        elif kind is int:  # PyYAML refuses ints of over 4,300 digits; yaml_rs takes them
            if value.bit_length() >= 64:
                return False
        elif value is not None and kind is not bool and kind is not float:
            return False
    return True


def _text_agrees(value: str) -> bool:
    return not value or value[0] not in _TYPED or _plain_tag(value) in _AS_TEXT


@functools.lru_cache(maxsize=1024)
def _key_agrees(key: str) -> bool:
    """:func:`_text_agrees` of a key: the same few recur in every file ("title", "type",
    "name" are looked at as plain scalars that might be bools or nulls)."""
    return _text_agrees(key)


def _plain_tag(value: str) -> str:
    for tag, pattern in _TYPED[value[0]]:
        if pattern.match(value):
            return tag
    return "tag:yaml.org,2002:str"


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
                problem=f"{show(node.value)} is not a valid {kind}", problem_mark=node.start_mark
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
    def split(self, text: str) -> tuple[str, str]:
        """What YAMLHandler.split gives (the boundary pattern's re.split), but with the
        pattern tried only at the starts of lines that begin with ---, not at every
        character up to the closing line (a thirteenth of a file's parse)."""
        boundary = self.FM_BOUNDARY
        first = boundary.search(text)
        if first is None:
            raise ValueError("no front matter")
        start = first.end()
        while (at := text.find("---", start)) >= 0:
            if text[at - 1] == "\n" and (closing := boundary.match(text, at)):
                return text[first.end() : at], text[closing.end() :]
            start = at + 1
        raise ValueError("front matter without its closing line")

    def load(self, fm: str, **kwargs: object) -> Any:
        data = _fast_load(fm)
        if data is not _SLOW:
            return data
        _check_depth(fm)
        return yaml.load(fm, Loader=_Loader)  # noqa: S506 - a safe loader


def _check_depth(fm: str) -> None:
    """Refuse front matter nested deeper than MAX_DEPTH before libyaml builds it: its C
    composer would overflow the C stack (a segfault that kills the whole process, not a
    RecursionError). The event parser it runs on first keeps its own stack, so counting its
    events is safe at any depth; it is only needed when the text could be deeper."""
    if _depth_bound(fm) <= MAX_DEPTH:
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
