"""Time feeds' in-process rebuild after one article is added: what ``feeds serve`` does.

    python bench/reload_probe.py --config CONFIG

One :class:`feeds.publisher.Publisher` builds once (every file parsed), then one article
file is added (``generate.added_article``) and rebuilt three ways, the file removed again
after each:

- ``reload_after_add_s``: a build that looks at every file (stat, then reads the new one),
  as ``feeds serve`` does where it cannot watch; ``inputs_scan_s`` is the scan it makes
  every ``serve.reload_interval`` to notice a change.
- ``watched_rebuild_s``: a build told the changed file by a :class:`feeds.watch.Watcher`.
- ``visible_after_s``: from writing the file until :class:`feeds.live.LiveFeeds`, the
  server's state, serves a snapshot with it (its watching thread's reaction included).

Nothing is exported. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from generate import added_article

from feeds.live import LiveFeeds
from feeds.publisher import Publisher
from feeds.watch import Watcher


def probe(config: Path) -> dict[str, float]:
    publisher = Publisher(config)
    cfg = publisher.load_config()
    watcher = Watcher(cfg.articles_folder)
    start = time.perf_counter()
    first = publisher.build(cfg)
    cold = time.perf_counter() - start

    start = time.perf_counter()
    publisher.inputs()
    scan = time.perf_counter() - start

    name, text = added_article()
    added = cfg.articles_folder / name
    figures = {"cold_s": cold, "inputs_scan_s": scan}
    for key in ("reload_after_add_s", "watched_rebuild_s"):
        watcher.changes()
        added.write_text(text, encoding="utf-8")
        try:
            start = time.perf_counter()
            changed = watcher.changes() if key == "watched_rebuild_s" else None
            second = publisher.build(cfg, changed=changed)
            figures[key] = time.perf_counter() - start
        finally:
            added.unlink()
        publisher.build(cfg, changed=watcher.changes())
    watcher.close()

    live = LiveFeeds(publisher)
    live.current()  # starts its watching thread, as a server's first request does
    before = live.state
    added.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    try:
        while live.state is before:
            time.sleep(0.001)
        figures["visible_after_s"] = time.perf_counter() - start
    finally:
        added.unlink()
    assert str(added) in {a.source for a in live.state.snapshot.feeds[0].items}

    changed = sum(1 for p, r in second.files.items() if first.files.get(p) != r)
    return {
        **{key: round(value, 3) for key, value in figures.items()},
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
