"""What Markdown bodies cost: the same generated articles with and without bodies
(``bench/generate.py --bodies``), parsed in one process and built cold and warm with
``feeds build`` (RSS only, like ``bench/run.py``'s like-for-like config, and the default
config with ``--default``).

    python bench/bodies.py --count 100000 --work /tmp/bodies

Prints one table (Markdown) of wall and CPU seconds, peak memory and bytes written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

from feeds import body  # noqa: E402
from feeds.articles import read  # noqa: E402
from feeds.front_matter import split  # noqa: E402

SAMPLE = 5000  # files parsed in one process for the cost per article


def per_article(folder: Path) -> tuple[float, float]:
    """Microseconds per file to parse the first SAMPLE files in this process, and of that
    the body's rendering alone."""
    paths = sorted(folder.iterdir())[:SAMPLE]
    start = time.process_time()
    articles = [read(p) for p in paths]
    parse = time.process_time() - start
    pairs = []
    for path, article in zip(paths, articles, strict=True):
        markdown = split(path.read_text(encoding="utf-8"))[1]
        pairs.append((markdown, getattr(article, "id", "https://x.example/")))
    start = time.process_time()
    for markdown, url in pairs:
        if markdown:
            body.render(markdown, url)
    render = time.process_time() - start
    return parse / len(paths) * 1e6, render / len(paths) * 1e6


def build(config: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds and peak RSS (MiB, its largest process) of one ``feeds build``
    in a new process."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "feeds", "-c", str(config), "build"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = status  # reaped here, for wait4's resource usage
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"feeds build failed: {command}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "." in p.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--work", type=Path, required=True, help="folder for articles and output")
    parser.add_argument("--default", action="store_true", help="also the default config")
    args = parser.parse_args(argv)
    print("| articles | config | cold s | cold CPU s | warm s | peak RSS MiB | MiB out |")
    print("|---|---|---|---|---|---|---|")
    costs = {}
    for bodies in (False, True):
        name = "with bodies" if bodies else "without"
        articles = args.work / f"articles-{'bodies' if bodies else 'plain'}-{args.count}"
        if not articles.is_dir():
            generate(args.count, 1, articles, bodies)
        costs[name] = per_article(articles)
        configs = {"rss only": "feeds: {items: 50, formats: [rss], archives: false}"}
        if args.default:
            configs["default"] = "feeds: {items: 50}"
        for label, feeds in configs.items():
            out = args.work / f"out-{name.replace(' ', '-')}-{label.replace(' ', '-')}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            config = args.work / f"{name.replace(' ', '-')}-{label.replace(' ', '-')}.yaml"
            config.write_text(
                "site: {title: Bench, base_url: 'http://127.0.0.1:8080/'}\n"
                f"articles: {{folder: {articles}}}\n"
                "quality: {min: 40, missing: include}\n"
                f"output: {{folder: {out}}}\n{feeds}\n"
            )
            for path in articles.iterdir():  # into the page cache: the build reads no disk
                path.read_bytes()
            wall, cpu, rss = build(config)
            warm = build(config)[0]
            mib = size_of(out) / 2**20
            print(
                f"| {args.count:,} {name} | {label} | {wall:.1f} | {cpu:.1f} | {warm:.1f} "
                f"| {rss} | {mib:.0f} |",
                flush=True,
            )
    print()
    for name, (parse, render) in costs.items():
        print(f"{name}: parse {parse:.0f} µs per file (one process), of which body {render:.0f} µs")
    print(f"CPUs: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
