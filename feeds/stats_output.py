"""``feeds stats`` as text for a terminal (a table with a histogram per feed) or as the JSON
document for scripts that the README describes. Its shape is stable: keys are only ever
added, and ``version`` changes if one is removed or changes meaning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from feeds.stats import BIN, Counts, FeedStats, histogram, histogram_range, quartiles

VERSION = 1
BARS = " ▁▂▃▄▅▆▇█"  # a histogram's bars, from none to the feed's highest


def as_json(
    counts: Counts, stats: Sequence[FeedStats], config: str, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The document ``feeds stats --json`` prints."""
    start, bars = histogram_range(stats)
    return {
        "version": VERSION,
        "config": config,
        "overrides": dict(overrides),
        "files": {
            "read": counts.read,
            "broken": len(counts.broken),
            "below_threshold": len(counts.below),
            "duplicates": len(counts.duplicates),
            "in_no_feed": len(counts.unfed),
            "published": len(counts.published),
        },
        "stories": counts.stories,
        "feeds_published": counts.feeds,
        "histogram": {"start": start, "width": BIN, "bars": bars},
        "feeds": [_feed(s, start, bars) for s in stats],
    }


def _feed(s: FeedStats, start: float, bars: int) -> dict[str, Any]:
    spread = quartiles(s.qualities)
    names = ("min", "q1", "median", "q3", "max")
    return {
        "path": s.path,
        "kind": s.kind,
        "key": s.key,
        "name": s.name,
        "published": s.published,
        "threshold": s.threshold,
        "candidates": s.candidates,
        "kept": s.kept,
        "below_threshold": s.below,
        "duplicates": s.duplicates,
        "quality": {
            "none": s.no_quality,
            **{name: (spread[i] if spread else None) for i, name in enumerate(names)},
            "histogram": histogram(s.qualities, start, bars),
        },
        "newest": _date(s.newest),
        "oldest": _date(s.oldest),
    }


def _date(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


HEADINGS = (
    "feed",
    "cand",
    "kept",
    "below",
    "dupes",
    "limit",
    "no q",
    "q min",
    "q1",
    "median",
    "q3",
    "q max",
    "histogram",
    "newest",
    "oldest",
)


def table(stats: Sequence[FeedStats]) -> list[str]:
    """One line per feed under a heading line; the histograms share one scale."""
    start, bars = histogram_range(stats)
    rows = [HEADINGS]
    for s in stats:
        spread = quartiles(s.qualities)
        rows.append(
            (
                s.path if s.published else f"{s.path} *",
                str(s.candidates),
                str(s.kept),
                str(s.below),
                str(s.duplicates),
                _number(s.threshold),
                str(s.no_quality),
                *(map(_number, spread) if spread else ["-"] * 5),
                sparkline(histogram(s.qualities, start, bars)),
                s.newest.date().isoformat() if s.newest else "-",
                s.oldest.date().isoformat() if s.oldest else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i in (0, 12) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    if any(not s.published for s in stats):
        lines.append("*: not published (nothing kept, or feeds.providers.min_articles)")
    if bars:
        lines.append(f"histogram: quality {_number(start)} to {_number(start + bars * BIN)}, ")
        lines[-1] += f"{BIN} a bar; the tallest bar of a feed is its most common quality"
    return lines


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(BARS[-(-8 * c // top)] for c in counts)  # any count above 0 shows


def _number(value: float) -> str:
    return f"{round(value, 1):g}"
