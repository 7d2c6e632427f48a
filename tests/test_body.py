"""Markdown bodies → safe HTML (feeds/body.py): what is kept, what is removed, URLs made
absolute, and the cut of long bodies."""

from __future__ import annotations

import os
import time
from html.parser import HTMLParser

import pytest

from feeds import body

URL = "https://site.example/2026/11/story/"


class Parsed(HTMLParser):
    """Tags, attributes and text of an HTML fragment, and whether its tags nest."""

    VOID = {"img", "br", "hr"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.text = ""
        self.open: list[str] = []
        self.misnested = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.misnested = True

    def handle_data(self, data):
        self.text += data

    def urls(self) -> list[str]:
        return [value for _, name, value in self.attrs if name in ("href", "src")]


def test_markdown_with_github_tables_strikethrough_and_autolinks():
    html = body.render(
        "# Title\n\nSome *em* and **strong**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "~~gone~~ and https://example.com/auto\n",
        URL,
    )
    parsed = Parsed(html)
    assert {"h1", "em", "strong", "table", "td", "del", "a"} <= set(parsed.tags)
    assert "https://example.com/auto" in parsed.urls()


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "text <script>alert(1)</script>",
        '<iframe src="https://evil.example/"></iframe>',
        '<img src="x.png" onerror="alert(1)">',
        '<p style="position:fixed" onclick="alert(1)">x</p>',
        "[a](javascript:alert(1))",
        '<a href="JaVaScRiPt:alert(1)">a</a>',
        '<a href=" java&#x09;script:alert(1)">a</a>',
        "[a](data:text/html,<script>alert(1)</script>)",
        '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
        "<style>body { display: none }</style>",
        '<object data="x.swf"></object><embed src="x.swf"><form action="/x"><input></form>',
        '<svg><script>alert(1)</script></svg><math><mi xlink:href="javascript:x">m</mi></math>',
        '<blockquote cite="javascript:alert(1)">q</blockquote>',
        "<div><p>unclosed <em>markup",
    ],
)
def test_hostile_markup_is_made_safe(markdown):
    html = body.render(markdown, URL)
    parsed = Parsed(html)
    assert not {"script", "iframe", "style", "object", "embed", "form", "input", "svg"} & set(
        parsed.tags
    )
    assert not [a for a in parsed.attrs if a[1].startswith("on") or a[1] in ("style", "cite")]
    assert all(url.startswith(("http://", "https://", "mailto:")) for url in parsed.urls())
    assert not parsed.open and not parsed.misnested
    # Removed with their content, not shown to readers as text.
    assert "alert" not in parsed.text and "display" not in parsed.text


def test_code_is_escaped_and_control_characters_are_gone():
    html = body.render("```\n<b>not bold</b>\n```\n\nInline `<i>` and \x01\x0b\x7f\x85 end.", URL)
    parsed = Parsed(html)
    assert "<b>not bold</b>" in parsed.text and "<i>" in parsed.text
    assert set(parsed.tags) == {"pre", "code", "p"}
    assert not any(c in html for c in "\x01\x0b\x7f\x85")


@pytest.mark.parametrize(
    ("link", "absolute"),
    [
        ("../x/", "https://site.example/2026/11/x/"),
        ("x.png", "https://site.example/2026/11/story/x.png"),
        ("/root", "https://site.example/root"),
        ("//cdn.example/a.png", "https://cdn.example/a.png"),
        ("?page=2", "https://site.example/2026/11/story/?page=2"),
        ("https://other.example/", "https://other.example/"),
    ],
)
def test_relative_links_and_images_are_resolved_against_the_article(link, absolute):
    parsed = Parsed(body.render(f"[a]({link}) ![i]({link}) <a href='{link}'>raw</a>", URL))
    assert parsed.urls() == [absolute] * 3


def test_a_body_of_blanks_is_none():
    assert body.render(" \n\n\t\n", URL) == ""
    assert body.render("<script>only</script>\n", URL) == ""


def test_a_long_body_is_cut_on_a_block_boundary_with_a_link_to_the_article():
    paragraphs = [f"Paragraph {k}: " + "word & <x> " * 40 for k in range(2000)]
    html = body.render("\n\n".join(paragraphs), URL)
    assert body.cost(html) <= body.MAX_CONTENT
    parsed = Parsed(html)
    assert not parsed.open and not parsed.misnested
    assert parsed.tags[-2:] == ["p", "a"] and parsed.urls()[-1] == URL
    assert parsed.text.endswith(body.MORE)
    kept = parsed.tags.count("p") - 1
    assert 10 < kept < 2000
    assert f"Paragraph {kept - 1}: " in parsed.text and f"Paragraph {kept}: " not in parsed.text


@pytest.mark.parametrize(
    "markdown",
    [
        "x" * (16 * 2**20 - 100),  # a file at the size limit, one paragraph
        "> " * 900 + "deep",  # nesting, as deep as it may be
        "*a **" * 100_000,  # emphasis delimiters
        "[" * 100_000 + "](x)",  # brackets
        "| a |\n|---|\n" + "| b |\n" * 100_000,  # a long table
        "```\n" + "<b>\n" * 500_000,  # an unclosed code block
    ],
)
def test_huge_and_pathological_bodies_take_bounded_time_and_size(markdown):
    started = time.monotonic()
    html = body.render(markdown, URL)
    assert time.monotonic() - started < 5
    assert body.cost(html) <= body.MAX_CONTENT
    parsed = Parsed(html)
    assert not parsed.open and not parsed.misnested


@pytest.mark.parametrize("markdown", ["> " * 100_000 + "deep", "<div>" * 50_000, "<x>" * 1100])
def test_a_body_nested_too_deep_is_refused_at_once(markdown):
    started = time.monotonic()
    with pytest.raises(ValueError):
        body.render(markdown, URL)
    assert time.monotonic() - started < 2


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_rendering_does_not_leak_memory():
    """cmarkgfm's own functions leak the document and the HTML of every call (some 500 KB
    for this body): 500 bodies held 260 MiB."""
    markdown = "\n\n".join(
        f"Paragraph {k} with *emphasis* and a [link](x/{k})." for k in range(300)
    )
    body.render(markdown, URL)
    before = resident()
    for _ in range(100):  # leaking, 50 MiB
        body.render(markdown, URL)
    assert resident() - before < 15 * 2**20


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
