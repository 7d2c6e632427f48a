"""Front matter read by yaml_rs (a Rust YAML 1.2 parser) wherever that is sure to give
what PyYAML's safe loader (YAML 1.1) gives; :func:`load` says when it is not.

The two specs read some plain scalars differently (``yes``, ``017``, ``0o17``, ``1e3``,
``1:20``, ``-.5``) and yaml_rs knows no merge keys, tags or YAML 1.1 line breaks. So the
fast result is taken only when the text has none of the constructs where they part (tags,
anchors, aliases, block scalars, complex keys, directives, odd characters, unusual number
forms, deep nesting) and no text value or key in it is one that PyYAML would have read as
another type had it been written plain. Anything else, any yaml_rs error included, is
PyYAML's to read: its results and error messages stay the publisher's.
``tests/test_fastyaml.py`` compares the two on generated YAML full of such constructs.
"""

from __future__ import annotations

import re
from typing import Any

import yaml_rs
from yaml.resolver import Resolver

SLOW = object()  # load's answer when the text is PyYAML's to read
# yaml_rs recurses once per level of nesting and overflows the stack (a crash, not an
# error) some 10,000 levels deep, or 1,500 in a thread with a 1 MiB stack.
MAX_DEPTH = 1000

# Characters PyYAML reads differently or refuses: those it does not print, tabs, and the
# line breaks that YAML 1.1 has and YAML 1.2 has not.
_ODD_CHARACTER = re.compile(
    r"[^\n\x20-\x7E\xA0-\u2027\u202A-\uD7FF\uE000-\uFEFE\uFF00-\uFFFD\U00010000-\U0010FFFF]"
)
# Merge keys, a colon ending a word in flow style ([x:]), directives, document markers, and
# escaped surrogates (PyYAML refuses "\ud800\udfff", yaml_rs makes it one character).
_ODD_TEXT = re.compile(r"<<|:[,\]}]|\n(?:%|---|\.\.\.)|\\(?:u|U0000)[dD][89a-fA-F]")
# At the start of a word (after a line break, space or flow indicator): tags, block scalars
# (yaml_rs reads an empty one as a line break), anchors, aliases, complex keys, and the
# numbers the specs read differently (017, 0o17, 0x11, 0b1, 1e3, 1.0e3, 1_000, .5).
_ODD_WORD = re.compile(
    r"[ \n\[{,](?:[!|>]|[&*][^ \n]|\?[ \n\]},]|[-+]?(?:0[0-9_oxbOXB]|[0-9.]+[eE_]|\.[0-9]))"
)
_FLOW_KEY = re.compile(r"""["']:[^ \n]""")  # {"a":017}: a value right after a quoted key
_TYPED = Resolver.yaml_implicit_resolvers  # first character → [(tag, pattern)]
_AS_TEXT = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"}  # timestamps stay text


def load(text: str) -> Any:
    """The front matter of ``text`` as PyYAML's safe loader reads it (timestamps as
    text), or SLOW when only PyYAML can tell."""
    text = f"\n{text}\n"  # the first plain scalar follows a line break, the last indicator one
    if (
        depth_bound(text) > MAX_DEPTH
        or _ODD_CHARACTER.search(text)
        or _ODD_TEXT.search(text)
        or _ODD_WORD.search(text)
        or (('":' in text or "':" in text) and _FLOW_KEY.search(text))
    ):
        return SLOW
    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # PyYAML gives the error, with its message and line
        return SLOW
    return data if _agrees(data) else SLOW


def depth_bound(text: str) -> int:
    """How deep YAML ``text`` can nest at most: each level needs one of the indicators
    counted (real front matter has up to some 750 of them)."""
    return sum(map(text.count, "[{-:?"))


def _agrees(value: Any) -> bool:
    """Whether PyYAML would read the text ``value`` came from the same way."""
    if isinstance(value, str):
        return not value or value[0] not in _TYPED or _plain_tag(value) in _AS_TEXT
    if isinstance(value, dict):
        return all(isinstance(k, str) and _agrees(k) and _agrees(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_agrees, value))
    if type(value) is int:  # PyYAML refuses ints of over 4,300 digits; yaml_rs takes them
        return value.bit_length() < 64
    return value is None or type(value) in (bool, float)


def _plain_tag(value: str) -> str:
    for tag, pattern in _TYPED[value[0]]:
        if pattern.match(value):
            return tag
    return "tag:yaml.org,2002:str"
