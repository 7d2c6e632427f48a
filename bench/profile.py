"""Profile one cold ``feeds build`` with py-spy and print where the time goes.

    .venv/bin/pip install py-spy
    python bench/profile.py --config CONFIG [--rate 250] [--top 10]

The output folder of CONFIG is removed first (a cold build). py-spy samples the whole
process, imports included; "self" is the share of samples whose innermost frame is that
function, "total" the share of samples it is anywhere on the stack.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def output_folder(config: Path) -> Path:
    data = yaml.safe_load(config.read_text()) or {}
    folder = Path((data.get("output") or {}).get("folder", "public"))
    return folder if folder.is_absolute() else config.parent / folder


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['func']} ({match['file']})"


def summarise(raw: str) -> tuple[int, Counter, Counter]:
    """py-spy raw (collapsed stacks) → total samples, self and total samples per function."""
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    return samples, own, total


def profile(config: Path, rate: int = 250) -> tuple[int, Counter, Counter, float]:
    """Run the cold build under py-spy; (samples, self, total, wall seconds)."""
    spy = py_spy()
    if spy is None:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    shutil.rmtree(output_folder(config), ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw_file = Path(tmp) / "raw.txt"
        cmd = [spy, "record", "-r", str(rate), "-F", "-f", "raw", "-o", str(raw_file), "--"]
        cmd += [sys.executable, "-m", "feeds", "--config", str(config), "build"]
        start = time.perf_counter()
        # Not in the repository: `python -m feeds` imports from the cwd first, and PYTHONPATH
        # may point at a snapshot of feeds/ (as bench/run.py --at does).
        subprocess.run(cmd, check=True, capture_output=True, timeout=1800, cwd=tmp)
        wall = time.perf_counter() - start
        samples, own, total = summarise(raw_file.read_text())
    return samples, own, total, wall


def table(samples: int, own: Counter, total: Counter, top: int) -> str:
    rows = ["| # | function (file) | self | total |", "|---:|---|---:|---:|"]
    for i, (name, n) in enumerate(own.most_common(top), 1):
        rows.append(f"| {i} | `{name}` | {n / samples:.1%} | {total[name] / samples:.1%} |")
    return "\n".join(rows)


def stages(samples: int, total: Counter, top: int) -> str:
    """The feeds functions with the largest inclusive share: the pipeline's stages."""
    ours = [(name, n) for name, n in total.most_common() if "(feeds/" in name]
    rows = ["| feeds function (file) | total |", "|---|---:|"]
    rows += [f"| `{name}` | {n / samples:.1%} |" for name, n in ours[:top]]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    samples, own, total, wall = profile(args.config.resolve(), args.rate)
    print(f"{samples} samples over {wall:.1f} s (py-spy at {args.rate}/s)\n")
    print("Self time (innermost frame):\n")
    print(table(samples, own, total, args.top))
    print("\nfeeds' own stages (inclusive):\n")
    print(stages(samples, total, args.top + 4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
