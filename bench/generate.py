"""Write N synthetic article files shaped like the everyday-ai corpus, for benchmarks.

The shape follows ``shared/corpus/everyday-ai/README.md``: every file has YAML front
matter between ``---`` lines and an empty body (with ``--bodies``, a Markdown body of some
3-6 KB); ``images`` in ~79% of files, ``quality``
in ~62% (0-170, median ~54, with ``heat`` and ``published`` beside it), ``originalUrl``
in ~60%, ``related`` in ~33% (1-18 entries), a ``secured`` blob in all; topics from the
corpus' topic names, always including "AI"; provider domains from a Zipf-like long tail
(N/18 of them, a few large ones: about 550 provider feeds hold articles at 10,000 and
5,200 at 100,000, most of them one to three, as the real corpus has 153 providers in 261
articles); dates over 2013-2023; file names ``YYYY-MM-DD-slug.md`` whose date is
sometimes a day off the UTC date, as in the corpus.
Quirks of the real data are kept at about their real rate: HTML entities, YAML-escaped
quotes, non-ASCII text, unquoted URLs, site-relative provider images, a few files that
point at the same article URL.

Every file also carries ``providers: [domain]``, a key ``feeds`` ignores, so that Hugo can
use the same files with a ``providers`` taxonomy (see ``bench/hugo/``).

The output depends only on ``--count`` and ``--seed``: same arguments, same bytes.

    python bench/generate.py --count 10000 --seed 1 --out /tmp/articles
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


class Weighted:
    """Draws from a fixed population with fixed weights (cumulative weights computed once)."""

    def __init__(self, population, weights):
        self.population = list(population)
        self.cum = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random, k: int = 1) -> list:
        return rng.choices(self.population, cum_weights=self.cum, k=k)

    @classmethod
    def of(cls, table: dict) -> Weighted:
        return cls(table, table.values())


# The corpus' topic names (shared/corpus/everyday-ai/topics/) with how often each occurs
# next to "AI" in the 261 real files (a floor of 1 for the ones that never occur).
TOPICS = {
    "AWS AI": 43,
    "Computer Vision": 36,
    "Machine Learning": 34,
    "AI in Autos": 29,
    "Natural Language Processing": 20,
    "Facebook AI": 18,
    "Microsoft AI": 18,
    "AI in Healthcare": 17,
    "Google AI": 11,
    "AI Hardware": 11,
    "AI Ethics": 7,
    "AI in Finance": 6,
    "AI in Robotics": 5,
    "IBM AI": 4,
    "TensorFlow": 3,
    "AI in Marketing": 1,
    "AI in Security": 1,
    "AI in Sales": 1,
    "AI in Education": 1,
    "Meta AI": 1,
    "Math for AI": 1,
}
# How many topics besides "AI" (the corpus averages about one).
EXTRA_TOPICS = Weighted.of({0: 30, 1: 45, 2: 20, 3: 5})

# The largest real providers first; the tail is made up.
BIG_PROVIDERS = [
    ("aws.amazon.com", "Amazon Web Services"),
    ("forbes.com", "Forbes"),
    ("medium.com", "Medium"),
    ("marketwatch.com", "MarketWatch"),
    ("apnews.com", "AP News"),
    ("prnewswire.com", "PR Newswire"),
    ("infoq.com", "InfoQ"),
    ("openpr.com", "openpr.com"),
    ("medicalxpress.com", "Medical Xpress"),
    ("hackaday.com", "Hackaday"),
    ("businessinsider.com", "Business Insider"),
    ("wsj.com", "The Wall Street Journal"),
]
TLDS = ["com", "com", "com", "net", "org", "io", "co.uk", "ai", "de", "news"]
SYLLABLES = (  # noqa: SIM905 - a word list reads better as text
    "ai tech data news wire daily neur byte robo logic quant cloud mind deep smart net "
    "info digi cyber zone hub lab post times review insight signal vector core"
).split()

YEARS = Weighted.of({2013: 1, 2014: 1, 2015: 1, 2016: 2, 2017: 5, 2018: 8, 2019: 20, 2020: 15,
                     2021: 25, 2022: 14, 2023: 12})  # fmt: skip

WORDS = (  # noqa: SIM905
    "artificial intelligence machine learning model models neural network networks deep "
    "data training inference startup company companies launches announces new report "
    "market growth research researchers study university open source platform cloud "
    "computing chips hardware robot robots robotics autonomous vehicles driving cars "
    "healthcare medical imaging diagnosis patients finance banks fraud detection vision "
    "language natural processing speech translation chatbot assistant generative text "
    "images video security privacy ethics regulation policy government lawmakers europe "
    "china america global industry enterprise business customers tools developers code "
    "accuracy benchmark dataset datasets algorithm algorithms analytics forecast billion "
    "million investment funding raises acquisition partnership google microsoft amazon "
    "meta facebook ibm nvidia intel apple openai tensorflow pytorch sagemaker azure "
    "how why what the a an of to in for on with from and or by its their this that is "
    "are will can could may should says said using used use helps help improve faster "
    "better smarter future jobs workers education students teachers marketing sales "
    "retail supply chain manufacturing energy climate weather science scientists"
).split()
FLAVOURS = ["“", "”", "’", "é", "ü", "—", "&amp;", "&#39;", '"', "…"]


def _providers(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (domain, name) pairs, the real big ones first."""
    out = list(BIG_PROVIDERS[:count])
    seen = {d for d, _ in out}
    while len(out) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        domain = f"{name}.{rng.choice(TLDS)}"
        if domain not in seen:
            seen.add(domain)
            out.append((domain, name.capitalize() if rng.random() < 0.6 else domain))
    return out


def _zipf_weights(count: int, s: float = 1.0) -> list[float]:
    return [1 / (rank**s) for rank in range(1, count + 1)]


class Text:
    """Random text cut from one long run of random words: one draw per title or excerpt."""

    def __init__(self, rng: random.Random, words: int = 200_000):
        self.pool = " ".join(rng.choices(WORDS, k=words))

    def cut(self, rng: random.Random, low: int, high: int) -> str:
        """Whole words, ``low`` to ``high`` characters, a capital first."""
        limit = rng.randint(low, high)
        start = self.pool.index(" ", rng.randrange(len(self.pool) - high - 50)) + 1
        text = self.pool[start : start + limit + 1].rsplit(" ", 1)[0]
        if rng.random() < 0.15:  # an accent, typographic quote or HTML entity somewhere
            i = text.find(" ", rng.randrange(len(text)))
            if i > 0:
                text = text[:i] + rng.choice(FLAVOURS) + text[i:]
        return text[0].upper() + text[1:]

    def title(self, rng: random.Random) -> str:
        return self.cut(rng, 30, 110)

    def excerpt(self, rng: random.Random) -> str:
        return self.cut(rng, 112, 596) + (" ..." if rng.random() < 0.5 else ".")


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(title: str) -> str:
    return _NOT_SLUG.sub("-", title.lower()).strip("-")[:120].rstrip("-") or "article"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escapes are valid YAML; accents stay as they are)."""
    return json.dumps(text, ensure_ascii=False)


def _date(rng: random.Random) -> datetime:
    year = YEARS(rng)[0]
    start = datetime(year, 1, 1, tzinfo=UTC)
    seconds = rng.randrange(365 * 86400)
    when = start + timedelta(seconds=seconds)
    if rng.random() < 0.9:  # most real dates have zero seconds
        when = when.replace(second=0)
    return when


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _secured(rng: random.Random) -> str:
    blob = base64.b64encode(rng.randbytes(rng.randint(150, 450))).decode()
    return f"{blob};{base64.b64encode(rng.randbytes(16)).decode()}"


def _image(rng: random.Random, host: str, title: str, indent: str) -> list[str]:
    width = rng.choice([600, 800, 1024, 1200, 1199, 1280, 580])
    lines = [
        f'{indent}- url: "https://{host}/wp-content/uploads/{rng.randint(1000, 99999)}.jpg"',
        f"{indent}  width: {width}",
        f"{indent}  height: {int(width * rng.uniform(0.5, 0.75))}",
    ]
    if rng.random() < 0.4:
        lines.append(f"{indent}  title: {_q(title)}")
    if rng.random() < 0.6:
        lines.append(f"{indent}  isCached: true")
    return lines


class Generator:
    """Makes article texts one by one; all randomness comes from one seeded Random."""

    def __init__(self, count: int, seed: int, bodies: bool = False):
        self.rng = random.Random(seed)
        # Bodies draw from a Random of their own: the front matter is the same either way.
        self.body_rng = random.Random(seed + 1) if bodies else None
        self.text = Text(self.rng)
        self.providers = _providers(self.rng, max(10, count // 18))
        self.draw_provider = Weighted(self.providers, _zipf_weights(len(self.providers)))
        self.draw_topics = Weighted.of(TOPICS)
        self.urls: list[str] = []  # earlier article URLs, a few of which are reused
        self.names: set[str] = set()

    def provider(self) -> tuple[str, str]:
        return self.draw_provider(self.rng)[0]

    def topics(self) -> list[str]:
        rng = self.rng
        extra = set(self.draw_topics(rng, EXTRA_TOPICS(rng)[0]))
        topics = ["AI", *sorted(extra)]
        rng.shuffle(topics)  # "AI" is not always first in the real files either
        return topics

    def related(self, when: datetime) -> list[str]:
        rng = self.rng
        count = min(18, max(1, int(rng.expovariate(1 / 2.5)) + 1))
        lines = ["related:"]
        for _ in range(count):
            domain, name = self.provider()
            title = self.text.title(rng)
            lines += [
                f"  - title: {_q(title)}",
                f"    excerpt: {_q(self.text.excerpt(rng))}",
                f"    publishedDateTime: {_iso(when + timedelta(hours=rng.randint(-72, 240)))}",
                f"    webUrl: https://www.{domain}/news/{rng.randint(10**5, 10**7)}/{_slug(title)}",
                "    type: article",
                "    provider:",
                f"      name: {_q(name)}",
                f"      domain: {domain}",
                f"    quality: {rng.randint(0, 120)}",
            ]
            if rng.random() < 0.8:
                lines += ["    images:", *_image(rng, f"cdn.{domain}", title, "      ")]
        return lines

    def article(self) -> tuple[str, str]:
        """One (file name, text)."""
        rng = self.rng
        title = self.text.title(rng)
        when = _date(rng)
        domain, name = self.provider()
        host = f"www.{domain}" if rng.random() < 0.7 else domain
        slug = _slug(title)
        if self.urls and rng.random() < 0.015:  # a story filed twice, as in the corpus
            url = rng.choice(self.urls)
        else:
            url = f"https://{host}/{when:%Y/%m/%d}/{slug}/"
            self.urls.append(url)

        file_day = when + timedelta(days=1) if rng.random() < 0.15 else when
        name_stem = f"{file_day:%Y-%m-%d}-{slug}"
        file_name, n = f"{name_stem}.md", 1
        while file_name in self.names:
            n += 1
            file_name = f"{name_stem}-{n}.md"
        self.names.add(file_name)

        has_quality = rng.random() < 0.62
        lines = [
            "---",
            "category: news",
            f"title: {_q(title)}",
            f"excerpt: {_q(self.text.excerpt(rng))}",
            f"publishedDateTime: {_iso(when)}",
        ]
        if rng.random() < 0.60:
            original = url if rng.random() < 0.96 else url + "?utm_source=feed"
            lines.append(f"originalUrl: {_q(original)}")
        web_url = url if rng.random() < 0.97 else f"https://{host}/news/{rng.randint(1, 10**6)}/"
        lines.append(f"webUrl: {web_url}" if rng.random() < 0.3 else f"webUrl: {_q(web_url)}")
        if rng.random() < 0.32:
            lines += [
                f"ampWebUrl: {web_url}?amp=1",
                f"cdnAmpWebUrl: https://cdn.ampproject.org/c/s/{host}/amp",
            ]
        lines.append("type: article")
        if has_quality:
            quality = min(170, int(rng.gammavariate(2.0, 32.0)))
            lines += [f"quality: {quality}", f"heat: {rng.choice([-1, quality, quality + 10])}"]
            lines.append(f"published: {'true' if rng.random() < 0.26 else 'false'}")
        lines += ["", "provider:", f"  name: {_q(name)}", f"  domain: {domain}"]
        if rng.random() < 0.35:
            lines += ["  images:", f"    - url: /assets/images/organizations/{domain}-50x50.jpg",
                      "      width: 50", "      height: 50"]  # fmt: skip
        lines += ["", "topics:", *(f"  - {t}" for t in self.topics())]
        lines += ["", "providers:", f"  - {domain}"]
        if rng.random() < 0.79:
            lines += ["", "images:", *_image(rng, host, title, "  ")]
            if rng.random() < 0.1:
                lines += _image(rng, host, title, "  ")
        if rng.random() < 0.33:
            lines += ["", *self.related(when)]
        lines += ["", f'secured: "{_secured(rng)}"', "---", ""]
        if self.body_rng:
            lines.append(self.body(self.body_rng))
        return file_name, "\n".join(lines)

    def body(self, rng: random.Random) -> str:
        """A Markdown body shaped like a news story: 4 to 12 paragraphs (some 3-6 KB in
        all) with emphasis, links (some relative), sometimes a heading, a list, an image,
        a quote, a table or a code block."""
        text = self.text
        blocks = []
        for k in range(rng.randint(4, 12)):
            words = text.cut(rng, 250, 700).split(" ")
            at = rng.randrange(len(words))
            words[at] = rng.choice(
                [f"*{words[at]}*", f"**{words[at]}**", f"[{words[at]}](../related-{k}/)",
                 f"[{words[at]}](https://example.org/{k})", f"`{words[at]}`"]
            )  # fmt: skip
            blocks.append(" ".join(words) + ".")
            roll = rng.random()
            if roll < 0.08:
                blocks.append(f"## {text.title(rng)}")
            elif roll < 0.16:
                blocks.append("\n".join(f"- {text.cut(rng, 20, 80)}" for _ in range(3)))
            elif roll < 0.22:
                blocks.append(f"![{text.cut(rng, 10, 40)}](images/{k}.jpg)")
            elif roll < 0.26:
                blocks.append(f"> {text.cut(rng, 60, 200)}")
            elif roll < 0.28:
                blocks.append("| model | score |\n|---|---|\n| a | 1 |\n| b | 2 |")
            elif roll < 0.30:
                blocks.append("```python\nprint(model.predict(x) < 1)\n```")
        return "\n\n".join(blocks) + "\n"


ADDED_NAME = "2024-06-01-one-more-article-for-the-rebuild-benchmark.md"


def added_article() -> tuple[str, str]:
    """One more article, newer than every generated one: it enters the all-articles feed,
    the "AI" and "Machine Learning" feeds and forbes.com's feed (the rebuild benchmarks)."""
    text = "\n".join([
        "---",
        "category: news",
        'title: "One more article for the rebuild benchmark"',
        'excerpt: "Added after a full build, to time the rebuild that follows one new file."',
        "publishedDateTime: 2024-06-01T12:00:00Z",
        'webUrl: "https://www.forbes.com/2024/06/01/one-more-article-for-the-rebuild-benchmark/"',
        "type: article",
        "quality: 90",
        "",
        "provider:",
        "  name: Forbes",
        "  domain: forbes.com",
        "",
        "topics:",
        "  - AI",
        "  - Machine Learning",
        "",
        "providers:",
        "  - forbes.com",
        "",
        'secured: "AAAA;BBBB"',
        "---",
        "",
    ])  # fmt: skip
    return ADDED_NAME, text


def generate(count: int, seed: int, out: Path, bodies: bool = False) -> int:
    """Write ``count`` files into ``out`` (created; files already there are left), with
    Markdown bodies if ``bodies``; bytes written."""
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(count, seed, bodies)
    total = 0
    for _ in range(count):
        name, text = gen.article()
        data = text.encode()
        with open(out / name, "wb") as f:
            f.write(data)
        total += len(data)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="number of files (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--bodies", action="store_true", help="write a Markdown body after the front matter"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty")
    start = time.perf_counter()
    size = generate(args.count, args.seed, args.out, args.bodies)
    print(
        f"wrote {args.count} files ({size / 2**20:.1f} MiB) to {args.out} "
        f"in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
