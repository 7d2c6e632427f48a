"""feeds.front_matter: yaml_rs's reading is taken only where it is PyYAML's (YAML 1.1) reading,
and libyaml's own construction builds what PyYAML's generic one builds."""

import math
from pathlib import Path

import pytest
import yaml
from frontmatter.default_handlers import YAMLHandler
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feeds import front_matter
from feeds.articles import parse
from feeds.errors import ArticleError
from feeds.files import find
from feeds.front_matter import _HANDLER, _SLOW, _check_depth, _fast_load, _Loader

from .conftest import CORPUS, ROOT, article
from .test_articles import dump


def pyyaml(text: str):
    """What the publisher read before yaml_rs: PyYAML's result, or the error it raised."""
    try:
        _check_depth(text)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError) as e:
        return e


def same(a, b) -> bool:
    """Equal, and of the same types throughout (True == 1 is not enough); NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def check(text: str) -> bool:
    """_fast_load agrees with PyYAML on ``text``; True if it answered itself."""
    fast = _fast_load(text)
    if fast is _SLOW:
        return False
    slow = pyyaml(text)
    assert not isinstance(slow, Exception), f"PyYAML refuses what yaml_rs took: {slow}"
    assert same(fast, slow), (fast, slow)
    return True


def words(text: str) -> list[str]:
    return text.split()


# Scalars where YAML 1.1 and 1.2, or PyYAML and yaml_rs, part ways, and ordinary ones.
SCALARS = [
    *words("yes no Yes NO on Off y n true False TRUE null Null ~ - -- . .. ? : # %"),
    *words("0 00 007 017 -017 +17 0o17 0x1F 0b101 1_000 1__0 +0x1F 0.5 .5 -.5 +.5 1. 1.5"),
    *words("1e3 1E3 1.0e3 1.0e+3 1.5E-2 -1e3 .inf -.Inf +.INF .nan .NaN 1:20 -1:20:30.5 1:2"),
    *words("2019-01-01 2019-1-1 2019-01-01T10:00:00Z 2019-01-01 10:00:00 +05:00 = << <<:"),
    *words("!!str !!int !!binary !foo &a *a !! @x `x x: y: x,y [a] {a} a#b"),
    "a b",
    "'single'",
    "'it''s'",
    '"double"',
    '"esc \\t \\x41 \\u00e9 \\N \\_ \\L \\P \\/ \\\\ \\" \\ud800 \\U0001F600"',
    '"line\\\n  continued"',
    '"\\ud83d\\ude00 \\U0000D800 \\uDFFF"',
    "'multi\n  line'",
    "Mar 02, 2021 (The News)",
    "AT&T",
    *["& x", "* x", "| x", "> x", "! x", "!x", "a & b", "a | b", "a > b", "a * b", "a # b"],
    "What? Yes!",
    "100%",
    "https://example.com/2021/07/01/x?a=1&b=2#f",
    "1234567890123456789012345",
    "9" * 30,
    "x\u2028y",
    "x\x85y",
    "x\ty",
    "\ufeffx",
    "é ü 中文 😀",
    "",
]
# What real front matter is made of, so that many documents go the fast way.
ORDINARY = [
    *words("0 17 -3 +4 2.5 -0.25 1. 100 true false null AI Robots x y"),
    "Plain words, with a comma",
    "It's a title",
    "Quoted: 'inside'",
    "'a: b, [c]'",
    '"Say \\"hi\\" \\u00e9"',
    "https://news.example.com/2023/06/01/story-1?a=1",
    "2023-06-01T10:00:00Z",
    "'2023-06-01T10:00:00Z'",
    "Mar 2, 2021 (The News) - a story",
    "word\n  continued on a second line",
    "é ü 中文 😀",
]
KEYS = ["title", "quality", "a b", "yes", "1", "null", "'q'", '"dq"', "<<", "? k", "~", "-k"]


def _flow(inner):
    seqs = st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    maps = st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
    )
    return seqs | maps


values = st.recursive(st.sampled_from(ORDINARY * 40 + SCALARS), _flow, max_leaves=6)


@st.composite
def block(draw, depth=0):
    """A block mapping or sequence of values, nested blocks, block scalars and comments."""
    pad = "  " * depth
    count = draw(st.integers(1, 4))
    if depth and draw(st.booleans()):
        leads = ["-"] * count
    else:  # mostly the keys of real front matter; each once (yaml_rs refuses duplicates)
        keys = st.sampled_from(["title", "quality", "topics", "url", "name"] * 4 + KEYS)
        leads = [f"{k}:" for k in draw(st.lists(keys, min_size=count, max_size=count, unique=True))]
    lines = []
    for lead in leads:
        kind = draw(st.sampled_from(["value"] * 6 + ["nested"] * 2 + ["block", "blank"]))
        if kind == "nested" and depth < 3:
            lines.append(f"{pad}{lead}\n{draw(block(depth + 1))}")
        elif kind == "block":
            mark = draw(st.sampled_from(["|", "|-", "|+", ">", ">-", "|2"]))
            body = draw(st.lists(st.sampled_from(SCALARS[:40] + ["", "  indented"]), max_size=3))
            lines.append(f"{pad}{lead} {mark}\n" + "".join(f"{pad}    {b}\n" for b in body))
        elif kind == "blank":
            lines.append(f"{pad}{lead}\n" + draw(st.sampled_from(["", "# c\n", "\n"])))
        else:
            comment = draw(st.sampled_from(["", "", " # note", "#x"]))
            lines.append(f"{pad}{lead} {draw(values)}{comment}\n")
    return "".join(lines)


@settings(max_examples=int(__import__("os").environ.get("N", 600)), deadline=None)
@given(block())
@example("quality: 017\n")
@example("quality: 0o17\n")
@example("title: yes\n")
@example("topics:\n  - AI\n  - yes\n")
@example("t: 1:20\n")
@example("q: -.5\n")
@example("q: 1e3\n")
@example('{"q":017}\n')
@example("a: &x [1]\nb: *x\n")
@example("a:\n  <<: {x: 1}\n")
@example("big: " + "9" * 5000 + "\n")
@example("title: a\ntitle: b\n")
@example("title: a\ud800b\n")  # a lone surrogate, which UTF-8 cannot carry
def test_yaml_rs_is_taken_only_where_pyyaml_reads_the_same(text):
    check(text)


def test_every_article_file_here_reads_the_same_and_most_take_the_fast_path():
    folders = [ROOT / "seeds", ROOT / "tests" / "nasty", *[CORPUS] * CORPUS.is_dir()]
    taken = {}
    for folder in folders:
        for path in find(folder, ["*.md", "*.txt"])[0]:
            try:
                fm = _HANDLER.split(Path(path).read_text(encoding="utf-8-sig"))[0]
            except (UnicodeDecodeError, ValueError):
                continue
            taken[path] = check(fm)
    assert len(taken) > 20
    real = [fast for path, fast in taken.items() if not path.startswith(str(ROOT / "tests"))]
    assert sum(real) >= 0.8 * len(real)  # a few have HTML entities, `|` or odd numbers


@pytest.fixture(params=["libyaml", "pure"])
def event_parser(request, monkeypatch):
    """The YAML event parser the depth check runs: the installed libyaml (newer ones have
    a depth limit of their own), or PyYAML's pure-Python parser, which has none, as the
    older libyaml builds that PyYAML's allowed range can bring."""
    if request.param == "pure":
        parse_events = yaml.parse
        monkeypatch.setattr(yaml, "parse", lambda text, Loader: parse_events(text, yaml.SafeLoader))
    return request.param


def test_the_deepest_nesting_is_refused_with_its_file_and_line_not_a_crash(event_parser):
    """yaml_rs overflows the stack some 10,000 levels deep, libyaml's composer near 30,000:
    text with that many indicators reaches neither (in-process: a crash would end the test
    run). Whichever check refuses it (ours, or the depth limit newer libyaml builds carry),
    the operator gets the file and the line of the nesting."""
    text = (ROOT / "tests" / "nasty" / "bad-deep-block-nesting.md").read_bytes()
    with pytest.raises(ArticleError) as refused:
        parse(text, "deep.md")
    problem = refused.value.problem
    assert problem.source == "deep.md"
    assert problem.line == 7  # the line of `x:` and its nested lists
    assert problem.message.startswith("invalid YAML: ")
    assert _fast_load("x:\n  " + "- " * 20000 + "v\n") is _SLOW


def parsed(raw: bytes):
    try:
        return parse(raw, "a.md")
    except ArticleError as e:
        return e.problem


@pytest.mark.parametrize(
    "line",
    [
        "quality: 017",
        "quality: 0o17",
        "quality: 1_0",
        "quality: 4e1",
        "quality: -.5",
        "title: no",
        "title: 10:20",
        "title: ~",
        "excerpt: 2023-01-01",
        "type: !!str 1",
        "quality: 17",
        "title: Plain words, 2023-01-01",
    ],
)
def test_an_article_reads_the_same_with_or_without_yaml_rs(line, monkeypatch):
    """What a reader sees of an article (or the problem reported) does not depend on
    which parser read it."""
    field = line.split(":")[0]
    raw = dump(article(**{field: None})).replace(b"\n---", f"\n{line}\n---".encode(), 1)
    both = parsed(raw)
    monkeypatch.setattr(front_matter, "_fast_load", lambda text: _SLOW)
    assert both == parsed(raw)
    if line == "quality: 017":
        assert both.quality == 15  # YAML 1.1's octal, as before


def same_sharing(a, b, pairs=None) -> bool:
    """``a == b``, and objects shared within ``a`` (YAML aliases) are shared alike within
    ``b``. Each pair of containers is compared once, so a "billion laughs" document of
    9**9 strings built from a few dozen shared lists takes no longer than its text."""
    pairs = {} if pairs is None else pairs
    if not isinstance(a, (dict, list)):
        return type(a) is type(b) and (a is b or a == b)  # as containers compare: NaN is NaN
    if id(a) in pairs:
        return pairs[id(a)] is b
    if type(a) is not type(b) or len(a) != len(b):
        return False
    pairs[id(a)] = b
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_sharing(a[k], b[k], pairs) for k in a)
    return all(same_sharing(x, y, pairs) for x, y in zip(a, b, strict=True))


def test_the_fast_yaml_construction_builds_what_pyyaml_builds():
    """_Loader builds plain front matter itself and leaves the rest to PyYAML: on the
    seeds, the real corpus (where it is here) and the nasty files, both give the same
    values, aliases shared alike."""
    folders = [ROOT / "seeds", ROOT / "tests" / "nasty", *[CORPUS] * CORPUS.is_dir()]
    compared = 0
    for folder in folders:
        for path in find(folder, ["*.md", "*.txt"])[0]:
            try:
                fm = _HANDLER.split(Path(path).read_text(encoding="utf-8-sig"))[0]
                _check_depth(fm)  # libyaml's composer would crash on the deepest
                node = yaml.compose(fm, Loader=_Loader)
                generic = yaml.constructor.SafeConstructor.construct_document(_Loader(""), node)
            except (UnicodeDecodeError, ValueError, yaml.YAMLError, RecursionError):
                continue  # not YAML: reported as such whichever way it is built
            assert same_sharing(_Loader("").construct_document(node), generic), path
            compared += 1
    assert compared > 20


def test_fields_tells_no_front_matter_from_an_empty_one_and_marks_errors():
    assert front_matter.fields("just a body\n") is None
    assert front_matter.fields("---\n- a list\n---\nbody") == {}
    assert front_matter.fields("\n---\ntitle: T\n---\nbody") == {"title": "T"}
    with pytest.raises(yaml.YAMLError) as error:
        front_matter.fields("---\ntitle: ok\nquality: [1\n---\n")
    assert error.value.problem_mark.line == 3  # the closing ---: 0 is the opening one


def boundary_split(text: str):
    """python-frontmatter's own split of ``text``, or the ValueError it raises."""
    try:
        return YAMLHandler().split(text)
    except ValueError as e:
        return type(e)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["---", "-", "----", " ", "\t", "\n", "\n\n", "\u2028", "\x1c", "a: 1"]),
        max_size=16,
    ).map("".join)
)
@example("---\n---")
@example("---\na: 1\n---\nbody\n---\nmore")
@example("---\n\n---  \n\nbody")
@example("--- \na: 1 ---\n----\n")
def test_the_front_matter_is_split_where_python_frontmatter_splits_it(text):
    """The publisher's split looks for the closing line only where a line starts with
    ---; it finds what python-frontmatter's split of the whole text finds, or fails alike."""
    try:
        found = _HANDLER.split(text)
    except ValueError as e:
        found = type(e)
    assert found == boundary_split(text)
