"""Cleaning of untrusted strings (XML-safe text, slugs, provider domains, canonical URLs,
bounded reprs for messages), and RFC 3339 dates as feeds and pages write them."""

from __future__ import annotations

import functools
import hashlib
import html
import re
import reprlib
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# Characters XML 1.0 forbids (C0 controls but tab/newline/CR, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
_URL_SAFE = "/%:@!$&'()*+,;=-._~"
# Slugs and provider domains name feed files and folders (`topics/<slug>.atom`); a file
# name has at most 255 bytes, so one hostile topic or domain must not exceed it and fail
# the whole export.
MAX_KEY = 200
# Longer URLs are refused: real ones are under 200 characters, and each is in a feed
# several times (id, link, related links), which must stay under 5 MiB.
MAX_URL = 1000
# Query parameters that only track a click; they never select a different article.
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|mod|source|ref|ref_src|fbclid|gclid|dclid|mc_cid|mc_eid|"
    r"cmpid|ocid|smid|smtyp|cid|mbid|__twitter_impression)$",
    re.I,
)


def clean(value: str) -> str:
    """Decode HTML entities, drop characters XML cannot carry, fold runs of spaces."""
    value = html.unescape(value)
    if not (value.isascii() and value.isprintable()):  # else none to drop: no search for one
        value = _NOT_XML.sub("", value)
    return " ".join(value.split())


@functools.lru_cache(maxsize=65536)  # topic names recur in every file
def slugify(name: str) -> str:
    """A stable, lowercase, URL-safe slug; names without Latin letters get a hash."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if len(slug) > MAX_KEY:
        # NFKD can make one character several ("㎯" → "rad∕s2"): cut, and keep long names
        # apart by their hash.
        return slug[: MAX_KEY - 11].rstrip("-") + "-" + digest
    return slug or "t-" + digest


def provider_key(domain: str) -> str | None:
    """The lowercase ASCII form of a domain name (IDN as punycode), or None if it is not one."""
    domain = domain.strip().rstrip(".").lower()
    if domain.startswith("www."):
        domain = domain[4:]
    return _ascii_host(domain)


@functools.lru_cache(maxsize=8192)  # a few hosts recur in every file; idna is slow
def _ascii_host(name: str) -> str | None:
    """``name`` as a lowercase ASCII host name (IDN as punycode), or None if it is not one."""
    try:
        name = name.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return name if len(name) <= MAX_KEY and _HOSTNAME.match(name) else None


def canonical_url(url: str) -> str | None:
    """The article's URL as an entry id: http(s) only, host lowercase, no fragment or
    tracking parameters, unsafe characters percent-encoded. None if it is not such a URL."""
    # Most URLs are canonical already: known so by a look at their characters, in a fifth
    # of the time it takes to take them apart and put them together again.
    plain = _PLAIN_URL.fullmatch(url)
    if plain and len(url) <= MAX_URL and _ascii_host(plain[1]) == plain[1]:
        return url if plain[2] else url + "/"
    return _canonical_url(url)


# A URL that _canonical_url gives back as it is (or with "/" for an empty path): http(s), a
# lowercase host (checked by _ascii_host) without a port, no query or fragment, and a path
# of characters that need no quoting.
_PLAIN_URL = re.compile(r"https?://([a-z0-9.-]+)(/[A-Za-z0-9/%:@!$&'()*+,;=._~-]*)?")


def _canonical_url(url: str) -> str | None:
    url = _NOT_XML.sub("", url).strip()
    if len(url) > MAX_URL:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    # The host is checked as it is written into the URL, not in provider_key's stripped form:
    # " example.com" or "\x85example.com" passed that check and then gave an id with a space
    # in its host, or made the idna encoding raise.
    netloc = _ascii_host(host.removesuffix(".")) if host else None
    if parts.scheme.lower() not in ("http", "https") or netloc is None:
        return None
    if port and port != {"http": 80, "https": 443}[parts.scheme.lower()]:
        netloc += f":{port}"
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not TRACKING_PARAMS.match(unquote(pair.split("=", 1)[0]))
    )
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path or "/", safe=_URL_SAFE),
            quote(query, safe=_URL_SAFE + "?"),
            "",
        )
    )


def rfc3339(when: datetime) -> str:
    """An aware date as RFC 3339 in UTC, with ``Z``: ``2023-06-01T10:00:00Z``."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A bounded repr: YAML aliases share nodes, so a short file can hold a list of 9**9
# strings ("billion laughs"), and a plain repr of it would never finish.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 80


def show(value: Any) -> str:
    """``value`` as a message shows it: a repr of at most 80 characters."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long for repr()
        text = "a number too large to show"
    return text if len(text) <= 80 else text[:77] + "..."
