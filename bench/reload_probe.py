"""Time feeds' in-process rebuild after one article is added: what ``feeds serve`` does.

    python bench/reload_probe.py --config CONFIG

One :class:`feeds.publisher.Publisher` builds once (every file parsed), then one article
file is added (``generate.added_article``) and the same publisher builds again: its parse
cache re-reads only the new file, but selection and rendering run over everything, as on
a reload of ``feeds serve``. ``inputs`` is the scan ``feeds serve`` makes every
``serve.reload_interval`` seconds to notice a change. Nothing is exported. Prints JSON.
The added file is removed again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from generate import added_article

from feeds.publisher import Publisher


def probe(config: Path) -> dict[str, float]:
    publisher = Publisher(config)
    cfg = publisher.load_config()
    start = time.perf_counter()
    first = publisher.build(cfg)
    cold = time.perf_counter() - start

    start = time.perf_counter()
    publisher.inputs()
    scan = time.perf_counter() - start

    name, text = added_article()
    added = cfg.articles_folder / name
    added.write_text(text, encoding="utf-8")
    try:
        start = time.perf_counter()
        second = publisher.build(cfg)
        reload = time.perf_counter() - start
    finally:
        added.unlink()
    changed = sum(1 for p, r in second.files.items() if first.files.get(p) != r)
    return {
        "cold_s": round(cold, 3),
        "inputs_scan_s": round(scan, 3),
        "reload_after_add_s": round(reload, 3),
        "files": len(second.files),
        "files_changed": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
