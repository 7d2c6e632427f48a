"""An article's Markdown body → safe HTML, its URLs absolute, cut to what a feed can carry.

GitHub Flavored Markdown (CommonMark plus tables, strikethrough and autolinks) by cmark-gfm
(:mod:`cmarkgfm`, C), raw HTML included; then everything goes through the ammonia
sanitiser (:mod:`nh3`, Rust): an allow-list of tags and attributes, so no ``script``,
``iframe``, ``style`` or event-handler attribute survives, and only http(s) and mailto
URLs, each made absolute against the article's URL. Both are some 30 times faster than
the pure-Python Markdown parsers (``bench/RESULTS.md``).
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import html
import json
import re
from collections.abc import Iterable

import nh3
from cmarkgfm import cmark
from cmarkgfm.cmark import Options
from lxml import etree
from lxml import html as lxml_html

from feeds.model import Related

# What an item's content (its body, then its related articles) may cost, in bytes of its
# largest published form (XML-escaped in RSS and Atom, JSON-escaped in JSON Feed): no more
# than the excerpt and related articles at their limits, the largest content of an item
# without a body (74,800 bytes), so 50 items stay under 5 MiB (tests/test_render.py).
MAX_CONTENT = 72_000
# Markdown read at most, in characters: text makes at least a byte of HTML a character, so
# more would not fit in MAX_CONTENT, and the time to render grows with it (a 16 MiB body
# took seconds).
MAX_MARKDOWN = 2 * MAX_CONTENT
MORE = "Read the whole article"  # the link that ends a body cut short

# Characters no body keeps: the C0 and C1 controls but tab and line feed, lone surrogates
# and the non-characters U+FFFE/F (XML forbids most, the rest show as nothing or garbage).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
for _names in _ATTRIBUTES.values():
    _names.discard("cite")  # a URL that ammonia does not check
_SCHEMES = {"http", "https", "mailto"}
# Raw HTML is kept for the sanitiser to judge; code blocks' language as GitHub writes it.
_OPTIONS = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG
# GitHub's extensions but its tag filter, which shows <script>, <iframe>, <style> and the
# like as text: the sanitiser removes them with their content instead.
_GFM = ("table", "autolink", "strikethrough", "tasklist")
_LIB, _FFI = cmark._cmark.lib, cmark._cmark.ffi
# cmarkgfm's own functions never free the document tree nor the HTML of a call (its issue
# #53: some 25 KB a body, for good in a server); these free them, from the same library and
# the C library whose allocator cmark-gfm uses.
_CMARK = ctypes.CDLL(cmark._cmark.__file__)
_CMARK.cmark_node_free.argtypes = [ctypes.c_void_p]
_FREE = ctypes.CDLL(ctypes.util.find_library("c")).free
_FREE.argtypes = [ctypes.c_void_p]
cmark.core_extensions_ensure_registered()
_EXTENSIONS = [cmark.find_syntax_extension(name) for name in _GFM]
# Elements nested deeper than this are refused: the sanitiser's HTML parser takes time in
# the square of the depth (1,000 nested divs: 5 ms, 20,000: 2 s); real bodies nest a few.
MAX_DEPTH = 1000
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


def render(markdown: str, url: str, room: int = MAX_CONTENT) -> str:
    """The safe HTML of ``markdown``, the body of the article at ``url`` (absolute): ""
    for a body of blanks. Cut before a top-level block, with a link to ``url``, where the
    whole would cost more than ``room`` (see :func:`cost`). Raises ValueError if it cannot
    be rendered."""
    markdown = _CONTROLS.sub("", markdown.replace("\r", "\n"))
    if not markdown.strip():
        return ""
    cut = len(markdown) > MAX_MARKDOWN
    if cut:  # at the last blank line, which ends a block unless inside a fenced one
        markdown = markdown[: markdown.rfind("\n\n", 0, MAX_MARKDOWN) + 1 or MAX_MARKDOWN]
    unsafe = _to_html(markdown)
    if unsafe.count("<") > MAX_DEPTH and _depth(unsafe) > MAX_DEPTH:
        raise ValueError(f"elements nested more than {MAX_DEPTH} levels deep")
    cleaner = nh3.Cleaner(
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel=None,
        url_relative=("rewrite_with_base", url),
    )
    safe = cleaner.clean(unsafe).strip()
    # No character costs more than 5 bytes ("&" is "&amp;" in XML).
    if not safe or not cut and (5 * len(safe) <= room or cost(safe) <= room):
        return safe
    try:
        return _shorten(safe, url, room)
    except etree.LxmlError as e:
        raise ValueError(f"cannot be cut: {e}") from None


def _to_html(markdown: str) -> str:
    """GitHub Flavored Markdown → HTML by cmark-gfm, as cmarkgfm's
    github_flavored_markdown_to_html makes it, with what it allocates freed."""
    parser = _LIB.cmark_parser_new(_OPTIONS)
    try:
        for extension in _EXTENSIONS:
            _LIB.cmark_parser_attach_syntax_extension(parser, extension)
        data = markdown.encode()
        _LIB.cmark_parser_feed(parser, data, len(data))
        root = _LIB.cmark_parser_finish(parser)
        try:
            extensions = _LIB.cmark_parser_get_syntax_extensions(parser)
            raw = _LIB.cmark_render_html(root, _OPTIONS, extensions)
            try:
                return _FFI.string(raw).decode()
            finally:
                _FREE(_address(raw))
        finally:
            _CMARK.cmark_node_free(_address(root))
    finally:
        _LIB.cmark_parser_free(parser)


def _address(pointer: object) -> int:
    return int(_FFI.cast("uintptr_t", pointer))


def _depth(html: str) -> int:
    """How deep the elements of ``html`` nest at most, about as an HTML parser sees it: an
    end tag closes the last element of its name still open and every one opened after it."""
    stack: list[str] = []
    opened: dict[str, int] = {}  # names on the stack, each counted
    deepest = 0
    for end, name in _TAG.findall(html):
        name = name.lower()
        if name in _VOID:
            continue
        if not end:
            stack.append(name)
            opened[name] = opened.get(name, 0) + 1
            deepest = max(deepest, len(stack))
        elif opened.get(name):
            while (top := stack.pop()) != name:
                opened[top] -= 1
            opened[name] -= 1
    return deepest


def cost(fragment: str) -> int:
    """Bytes ``fragment`` takes in the largest of the forms it is published in: XML text
    (``<``, ``>`` and ``&`` escaped) or a JSON string."""
    size = len(fragment.encode())
    as_xml = size + 3 * (fragment.count("<") + fragment.count(">")) + 4 * fragment.count("&")
    as_json = len(json.dumps(fragment, ensure_ascii=False).encode()) - 2
    return max(as_xml, as_json)


def related_html(related: Iterable[Related]) -> str:
    """Related articles as a list of links, escaped: what follows the body in an item's
    content (its excerpt when it has no body)."""
    esc = html.escape
    items = "".join(
        f'<li><a href="{esc(r.url)}">{esc(r.title)}</a>'
        + (f" ({esc(r.provider)})" if r.provider else "")
        + "</li>"
        for r in related
    )
    return f"<p>Related:</p><ul>{items}</ul>" if items else ""


def _shorten(safe: str, url: str, room: int) -> str:
    """``safe`` cut before the first top-level block that would take it past ``room``, with
    a link to the article; each block is serialised whole, so it stays valid HTML."""
    more = f'<p><a href="{html.escape(url)}">{MORE}</a></p>'
    budget = room - cost(more)
    kept: list[str] = []
    for block in lxml_html.fragments_fromstring(safe):
        text = block if isinstance(block, str) else lxml_html.tostring(block, encoding=str)
        budget -= cost(text)
        if budget < 0:
            break
        kept.append(text)
    return "".join(kept).strip() + more
