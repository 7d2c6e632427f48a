import html
from datetime import UTC, datetime
from unittest import mock

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feeds import articles
from feeds.articles import parse, read
from feeds.errors import ArticleError, Problem
from feeds.files import find
from feeds.text import _canonical_url, canonical_url, clean

from .conftest import CORPUS, ROOT, article


def dump(fields: dict) -> bytes:

    return ("---\n" + yaml.safe_dump(fields, allow_unicode=True) + "---\n").encode()


def test_the_seed_articles_parse(tmp_path):

    paths, problems = find(ROOT / "seeds", ["*.md", "*.txt"])
    parsed = [read(p) for p in paths]
    assert problems == [] and len(parsed) == 2
    cnn = next(a for a in parsed if a.provider.domain == "cnn.com")
    assert cnn.title == "OpenAI CEO calls for global cooperation to regulate AI"
    assert cnn.published == datetime(2023, 6, 9, 11, 47, tzinfo=UTC)
    assert cnn.quality == 87 and cnn.topics == ("AI",)
    assert cnn.image.url.startswith("https://media.cnn.com/") and cnn.image.width == 800
    assert [r.provider for r in cnn.related] == ["Microsoft", "SiliconANGLE"]


def test_every_real_article_parses(corpus):
    results = [read(p) for p in find(corpus, ["*.md"])[0]]
    assert len(results) == (261 if corpus == CORPUS else 28)
    assert [r for r in results if isinstance(r, Problem)] == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-06-09T11:47:00Z", datetime(2023, 6, 9, 11, 47, tzinfo=UTC)),
        ("2023-06-09T11:47:00", datetime(2023, 6, 9, 11, 47, tzinfo=UTC)),  # naive is UTC
        ("2023-06-09T13:47:00+02:00", datetime(2023, 6, 9, 11, 47, tzinfo=UTC)),
        ("2023-06-09", datetime(2023, 6, 9, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_utc(value, expected):
    assert parse(dump(article(publishedDateTime=value)), "a.md").published == expected


# Dates of the form datetime reads itself, valid or not in each field, and real ones.
_DATE_FORM = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_REAL_DATES = st.builds(
    lambda when, fraction, zone: when.isoformat(timespec=fraction).replace("+00:00", zone),
    st.datetimes(timezones=st.timezones() | st.just(UTC)),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.sampled_from(["Z", "+00:00", "-00:00"]),
)


@settings(max_examples=100, deadline=None)
@given(_DATE_FORM | _REAL_DATES)
@example("2023-06-09T24:00:00Z")  # midnight of the next day
@example("2023-06-09T10:00:00+05:60")  # not isoparse's: read as +06:00 by dateutil's parser
def test_a_date_reads_as_dateutil_reads_it(value):
    def published() -> datetime | str:
        try:
            return parse(dump(article(publishedDateTime=value)), "a.md").published
        except ArticleError as e:
            return e.problem.message

    fast = published()
    with mock.patch.object(articles, "_rfc3339", lambda text: None):
        assert fast == published()


def test_the_canonical_url_is_the_id():
    a = parse(
        dump(
            article(
                originalUrl="https://WWW.Example.com/a b?utm_source=x&id=7#top",
                webUrl="https://elsewhere.example/",
            )
        ),
        "a.md",
    )
    assert a.id == "https://www.example.com/a%20b?id=7"


# URLs near the shortcut's edges: case, ports, trailing dots, empty labels, user info,
# queries, fragments, characters that need quoting, and long hosts.
_URL_PART = st.sampled_from(
    [
        "http",
        "https",
        "HTTP",
        "ftp",
        "://",
        "/",
        "//",
        ".",
        "-",
        "a",
        "Z",
        "0",
        "x" * 64,
        ":80",
        ":8080",
        "@",
        "?",
        "#",
        "&",
        "=",
        "%20",
        "%",
        " ",
        "\t",
        "é",
        "~",
        "'",
        ";",
        "utm_source=1",
        "www.example.com",
        "xn--bcher-kva.example",
        "..",
        "\\",
        "[::1]",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_URL_PART, max_size=12).map("".join))
@example("https://example.com")
@example("https://example.com.")
@example("https://a..b/")
def test_a_canonical_url_is_what_taking_it_apart_gives(url):
    """Most URLs are known to be canonical by their characters alone: that shortcut gives
    what parsing and rebuilding them gives, for any text."""
    for candidate in (url, "https://" + url, "http://example.com/" + url):
        assert canonical_url(candidate) == _canonical_url(candidate)


def test_web_url_stands_in_for_a_bad_original_url():
    a = parse(
        dump(article(originalUrl="javascript:alert(1)", webUrl="https://x.example/a")), "a.md"
    )
    assert a.id == "https://x.example/a"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": None}, "title: missing"),
        ({"title": ["a"]}, "title: expected text, got a list"),
        ({"webUrl": None}, "webUrl: missing"),
        ({"webUrl": "javascript:alert(1)"}, "webUrl: not an http(s) URL"),
        ({"webUrl": "ftp://x.example/a"}, "webUrl: not an http(s) URL"),
        ({"publishedDateTime": None}, "publishedDateTime: missing"),
        ({"publishedDateTime": "last tuesday-ish"}, "publishedDateTime: not a date"),
        ({"publishedDateTime": 1686311220}, "publishedDateTime: expected an ISO date"),
        ({"quality": "high"}, "quality: expected a number, got 'high'"),
        ({"quality": True}, "quality: expected a number"),
    ],
)
def test_bad_fields_are_named_with_their_line(fields, message):
    with pytest.raises(ArticleError) as info:
        parse(dump(article(**fields)), "seeds/bad.md")
    assert message in str(info.value)
    assert str(info.value).startswith("seeds/bad.md:")
    key = next(iter(fields))
    if fields[key] is not None and key != "webUrl":
        # The line printed is the line of the field in the file.
        raw = dump(article(**fields)).decode().splitlines()
        assert raw[info.value.problem.line - 1].startswith(key)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no front matter"),
        (b"just a body\n", "no front matter"),
        (b"---\n---\n", "empty"),
        (b"---\n- a list\n---\n", "not a mapping"),
        (b"---\ntitle: [unclosed\n---\n", "invalid YAML"),
        (b"---\ntitle: \xff\xfe\n---\n", "not UTF-8"),
        (b"\x00\x01binary", "binary"),
        (b"---\nx: !!python/object/apply:os.system ['echo hi']\n---\n", "invalid YAML"),
    ],
)
def test_broken_files_are_reported_not_raised(tmp_path, raw, message):
    path = tmp_path / "broken.md"
    path.write_bytes(raw)
    problem = read(path)
    assert isinstance(problem, Problem) and message in problem.message
    assert str(problem).startswith(str(path))


def test_yaml_error_line_is_the_line_in_the_file(tmp_path):
    path = tmp_path / "broken.md"
    path.write_text("---\ntitle: ok\nexcerpt: fine\nquality: [1\n---\n")
    problem = read(path)
    assert problem.line == 5  # the closing --- where the list is found unclosed


def test_bom_and_crlf_are_fine():
    raw = b"\xef\xbb\xbf" + dump(article()).replace(b"\n", b"\r\n")
    assert parse(raw, "a.md").title == "Story number 1"


def test_text_is_cleaned_for_xml():
    a = parse(dump(article(title="AT&amp;T \x07 buys\ufffe it", excerpt="x" * 5000)), "a.md")
    assert a.title == "AT&T buys it"
    assert len(a.excerpt) <= 1001 and a.excerpt.endswith("…")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", " ", "\t", "\n", "&amp;", "&#7;", "\x07", "\x1c", "\x7f", "é"])
        | st.characters(exclude_categories=()),
        max_size=20,
    ).map("".join)
)
def test_cleaned_text_keeps_no_character_xml_forbids_and_no_run_of_spaces(text):
    cleaned = clean(text)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    # Forbidden: C0 controls but tab, newline and CR; surrogates; U+FFFE and U+FFFF.
    forbidden = [c for c in cleaned if c < " " or "\ud800" <= c <= "\udfff" or c in "\ufffe\uffff"]
    assert not forbidden
    # Nothing else is lost: the words are those of the decoded text without them.
    kept = "".join(c for c in html.unescape(text) if c >= " " or c in "\t\n\r")
    kept = "".join(c for c in kept if not ("\ud800" <= c <= "\udfff" or c in "\ufffe\uffff"))
    assert cleaned == " ".join(kept.split())


def test_loose_shapes_are_accepted():
    a = parse(dump(article(topics="Robots", provider="Some Paper", quality="42")), "a.md")
    assert a.topics == ("Robots",)
    assert a.provider.name == "Some Paper" and a.provider.domain == "news.example.com"
    assert a.quality == 42


def test_missing_quality_is_none_and_published_false_is_not_a_draft():
    a = parse(dump(article(quality=None, published=False)), "a.md")
    assert a.quality is None


def test_secured_is_never_kept():
    a = parse(dump(article()), "a.md")
    assert "SECRET-BLOB" not in repr(a)


def test_topic_slugs_are_made_once_here_in_topic_order():
    a = parse(dump(article(topics=["Self-Driving Cars", "AI", "ai"])), "a.md")
    assert a.topics == ("Self-Driving Cars", "AI", "ai")
    assert a.topic_slugs == ("self-driving-cars", "ai", "ai")


def test_a_body_that_cannot_be_rendered_is_reported_and_its_file_skipped(site):
    site.write("good.md", article())
    bad = site.write("bad.md", article(n=2))
    bad.write_text(bad.read_text() + "<div>" * 5000)
    problem = read(bad)
    assert isinstance(problem, Problem) and problem.source == str(bad)
    assert problem.message.startswith("body: ")
    snapshot = site.build()
    assert [p.source for p in snapshot.problems] == [str(bad)]
    assert b"Story number 1" in snapshot.files["all.rss"].body
