"""The benchmark of issue 4, in one command: build times against Hugo, serving against nginx.

    python bench/run.py [--sizes 10000,100000] [--quick] [--work DIR] [--markdown FILE]

For each size N it generates N articles (``bench/generate.py``, seed 1), then times, in
fresh processes and interleaved so that a noisy machine hits every side alike:

- ``feeds build`` with a like-for-like config (``formats: [rss]``, ``archives: false``,
  ``pages: false``, ``quality.min: 40``, ``items: 50``: the feeds and the three OPML
  files) and with the default config (RSS + Atom + JSON Feed, archive pages and the HTML
  pages, same threshold and items);
- ``hugo`` on the same files with ``bench/hugo/`` (RSS only: home = all articles, one feed
  per topic and per provider, same threshold and items, article pages not rendered);

each cold (no output folder: moved aside, see ``retire``, then 6 s for the writeback of
the last build),
warm (again, nothing changed) and after one article was added. Every run is wrapped in
``/usr/bin/time -v`` for peak memory (max RSS of one process) and CPU time (of the
processes it waited for, its workers included). It also times the in-process rebuild
of ``feeds serve`` (``bench/reload_probe.py``).

Then, at the smallest size, it serves the default config's feeds with ``feeds serve``
and the static export with nginx (``deploy/nginx-static.conf``; also with pre-compressed
``.gz`` files, and ``deploy/nginx-proxy.conf`` in front of ``feeds serve``) and loads one
feed with ``wrk`` (``bench/wrk.lua``): 200 with gzip, and 304 to If-None-Match. The servers
are pinned to CPU 0 and wrk to CPU 1 when there are two or more.

Builds repeat 3 times (2 above 20,000 articles), the serving rows 3 rounds; ``--quick``
runs one repetition, 2 rounds and 2-second wrk runs. Needs Debian's ``hugo``,
``nginx-light``, ``wrk`` and ``time``; a missing one's rows are skipped with a note.
Everything is written under ``--work`` (default: a new temp folder, removed at the end
unless ``--keep``). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import generate

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEPLOY = ROOT / "deploy"
PYTHON = sys.executable
FEEDS = [PYTHON, "-m", "feeds"]
TIME = "/usr/bin/time"
FEED_PATH = "topics/ai.rss"  # the typical feed served in the load test
HUGO_FEED_PATH = "topics/ai/index.xml"
QUALITY_MIN = 40
ITEMS = 50
SEED = 1
# Extra environment of every process that runs feeds: PYTHONPATH of a snapshot with --at.
FEEDS_ENV: dict[str, str] = {}
BUILD_TIMEOUT = 1800  # seconds for one build; a build that takes longer is a failure
START_TIMEOUT = 300  # seconds for feeds serve to load its feeds and answer
SETTLE = 6  # seconds after an output is moved aside before a cold build (see settle)
RETIRED = "retired"  # in the work folder: the outputs of the builds before a cold one


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- builds


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds
    rss_mib: float
    stdout: str


@dataclass
class Side:
    """One builder with one config: its runs by phase."""

    name: str
    runs: dict[str, list[Run]] = field(default_factory=dict)
    output: tuple[int, int, int] | None = None  # feed files, files, bytes after a cold build
    feeds: int = 0  # distinct feeds (each in one or more formats, with archive pages)
    written: dict[str, str] = field(default_factory=dict)  # phase → what the build said

    def add(self, phase: str, run: Run) -> None:
        self.runs.setdefault(phase, []).append(run)

    def median(self, phase: str, attr: str = "wall") -> float | None:
        runs = self.runs.get(phase)
        return statistics.median(getattr(r, attr) for r in runs) if runs else None


def feeds_env() -> dict[str, str]:
    return {**os.environ, **FEEDS_ENV}


def timed(cmd: list[str], cwd: Path) -> Run:
    """Run ``cmd`` under /usr/bin/time -v; raise with its output if it fails."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        full = [TIME, "-v", "-o", report.name, *cmd] if Path(TIME).exists() else cmd
        start = time.perf_counter()
        proc = subprocess.run(
            full, cwd=cwd, env=feeds_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        text = report.read()
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(": ") for line in text.splitlines())
    )
    cpu = float(fields.get("User time (seconds)", 0)) + float(
        fields.get("System time (seconds)", 0)
    )
    rss = int(fields.get("Maximum resident set size (kbytes)", 0)) / 1024
    return Run(wall, cpu, rss, proc.stdout + proc.stderr)


def tree_size(folder: Path, suffixes: tuple[str, ...]) -> tuple[int, int, int]:
    """(feed files, all files, bytes) under ``folder``, hidden files left out."""
    feeds = files = size = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name.startswith("."):
                continue
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
            feeds += name.endswith(suffixes)
    return feeds, files, size


def write_configs(work: Path, articles: Path) -> dict[str, Path]:
    """The like-for-like and default feeds configs for ``articles``."""
    common = (
        "site: {title: Bench, base_url: 'http://127.0.0.1:8080/'}\n"
        f"articles: {{folder: {articles}}}\n"
        f"quality: {{min: {QUALITY_MIN}, missing: include}}\n"
    )
    like = work / "feeds-like.yaml"
    like.write_text(
        common
        + f"output: {{folder: {work / 'out-like'}}}\n"
        + f"feeds: {{items: {ITEMS}, formats: [rss], archives: false, pages: false}}\n"
    )
    default = work / "feeds-default.yaml"
    default.write_text(
        common + f"output: {{folder: {work / 'out-default'}}}\nfeeds: {{items: {ITEMS}}}\n"
    )
    return {"like": like, "default": default}


def retire(folder: Path, trash: Path) -> None:
    """Move the output of the last build out of the way of a cold one, into ``trash``,
    which is removed when the bench is done. Removed there and then, the inodes it freed
    made every side's next build slower, the more so the more files it writes: for each
    file it creates, ext4 without a journal (this machine's) skips the inodes freed in the
    last 60 s, or 360 s while their inode table block is not written back yet (its
    recently_deleted check). perf put a quarter of a cold build's CPU time there (the
    default config at 10,000); a sync and a 6 s pause do not end it."""
    if folder.exists():
        trash.mkdir(exist_ok=True)
        folder.rename(trash / f"{len(list(trash.iterdir()))}-{folder.name}")


def settle() -> None:
    """Let the file system write back what the last build wrote before the clock starts:
    its writeback is no builder's work."""
    os.sync()
    time.sleep(SETTLE)


def warm_page_cache(folder: Path) -> None:
    """Read every article file once: the first build timed must not be the one that pays
    for reading them from disk (it was ours, and its cold builds looked up to 1.7× slower)."""
    start = time.perf_counter()
    for path in folder.iterdir():
        path.read_bytes()
    log(f"  read the articles into the page cache in {time.perf_counter() - start:.1f} s")


def ensure_articles(work: Path, count: int) -> Path:
    folder = work / f"articles-{count}"
    stamp = folder / ".generated"
    if stamp.exists() and stamp.read_text() == f"{count} {SEED}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    generate.generate(count, SEED, folder)
    stamp.write_text(f"{count} {SEED}")
    log(f"  generated {count} articles in {time.perf_counter() - start:.1f} s")
    return folder


_SUMMARY = re.compile(r"(\d+) feeds in .*: (\d+) files written, (\d+) unchanged")


def bench_builds(work: Path, count: int, repeats: int, full: bool, have_hugo: bool) -> dict:
    log(f"== {count} articles")
    articles = ensure_articles(work / "data", count)
    warm_page_cache(articles)
    work = work / str(count)
    work.mkdir(exist_ok=True)
    configs = write_configs(work, articles)
    out = {"like": work / "out-like", "default": work / "out-default"}
    hugo_site = work / "hugo-site"
    hugo_out = work / "out-hugo"
    shutil.rmtree(hugo_site, ignore_errors=True)
    shutil.copytree(BENCH / "hugo", hugo_site)
    hugo_cmd = ["hugo", "--quiet", "--noBuildLock", "--source", str(hugo_site)]
    hugo_cmd += ["--contentDir", str(articles), "--destination", str(hugo_out)]

    sides = {"like": Side("feeds, rss only"), "default": Side("feeds, default config")}
    if have_hugo:
        sides["hugo"] = Side("hugo")
    # The default config is the slowest; at large sizes time only its cold build.
    default_phases = ("cold", "warm", "add") if full or count <= 20_000 else ("cold",)

    def run(key: str, phase: str) -> None:
        if key == "default" and phase not in default_phases:
            return
        if phase == "cold":
            retire(hugo_out if key == "hugo" else out[key], work.parent / RETIRED)
            settle()
        cmd = hugo_cmd if key == "hugo" else [*FEEDS, "--config", str(configs[key]), "build"]
        result = timed(cmd, cwd=work)
        sides[key].add(phase, result)
        if key != "hugo" and (m := _SUMMARY.search(result.stdout)):
            sides[key].written[phase] = f"{m[2]} written, {m[3]} unchanged"
            sides[key].feeds = int(m[1])
        if phase == "cold":
            if key == "hugo":
                sides[key].output = tree_size(hugo_out, (".xml",))
                sides[key].feeds = sides[key].output[0]
            else:
                sides[key].output = tree_size(out[key], (".rss", ".atom", ".json"))
        log(
            f"  {key:8} {phase:5} {result.wall:7.2f} s wall {result.cpu:7.2f} s cpu "
            f"{result.rss_mib:7.0f} MiB"
        )

    name, text = generate.added_article()
    added = articles / name
    for rep in range(repeats):
        order = ["like", "hugo", "default"] if rep % 2 == 0 else ["hugo", "default", "like"]
        order = [k for k in order if k in sides]
        added.unlink(missing_ok=True)
        for phase in ("cold", "warm", "add"):
            if phase == "add":
                added.write_text(text, encoding="utf-8")
            for key in order:
                run(key, phase)
        added.unlink(missing_ok=True)

    log("  in-process rebuild (feeds serve's reload)")
    probe = subprocess.run(
        [PYTHON, str(BENCH / "reload_probe.py"), "--config", str(configs["like"])],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=True,
        cwd=BENCH,
        env=feeds_env(),
    )
    reload = json.loads(probe.stdout.strip().splitlines()[-1])
    log(f"  {reload}")
    return {"count": count, "sides": sides, "reload": reload, "configs": configs, "out": out}


# --------------------------------------------------------------------------- serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int) -> list[str]:
    return (
        ["taskset", "-c", str(cpu)]
        if (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        else []
    )


def head(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    status, found, _ = fetch(url, headers)
    return status, found


def fetch(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET: status, headers (names title-cased: granian sends them in lower case), body."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            status, found = response.status, response.headers
    except urllib.error.HTTPError as e:
        with e:
            body, status, found = e.read(), e.code, e.headers
    return status, {name.title(): value for name, value in found.items()}, body


def check_answers(url: str, expected: bytes) -> tuple[str, dict[str, int], str]:
    """What ``url`` answers the benchmark's two requests (gzip GET, then If-None-Match with
    its ETag): the ETag, the bytes each answer takes on the wire (headers included, as wrk
    counts them), and what is wrong with them ("" if nothing): the gzip GET must be a 200,
    gzipped, of the same feed bytes as ``expected``; the conditional one a 304."""
    status, headers, body = fetch(url, {"Accept-Encoding": "gzip"})
    etag = headers.get("Etag", "")
    again, again_headers, again_body = fetch(
        url, {"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    wrong = []
    if status != 200 or headers.get("Content-Encoding") != "gzip":
        wrong.append(f"gzip GET gave {status} {headers.get('Content-Encoding')}")
    elif gzip.decompress(body) != expected:
        wrong.append("gzip GET gave other bytes than feeds serve's feed")
    if again != 304:
        wrong.append(f"If-None-Match gave {again}")
    sizes = {
        "200 gzip": len(body) + _header_bytes(headers),
        "304 If-None-Match": len(again_body) + _header_bytes(again_headers),
    }
    return etag, sizes, "; ".join(wrong)


def _header_bytes(headers: dict[str, str]) -> int:
    return sum(len(k) + len(v) + 4 for k, v in headers.items()) + len("HTTP/1.1 200 OK\r\n\r\n")


def wrong_run(result: dict, size: int) -> str:
    """What was wrong with a wrk run's answers, "" if nothing: every one must have the
    status and about the size of the answer checked before the run (a 404 page or a 304
    instead of the 200 is told by its size)."""
    if not result["requests"]:
        return "no answers"
    if result["errors"] or result["bad_statuses"]:
        return f"{result['errors']} socket errors, {result['bad_statuses']} 4xx/5xx answers"
    per_answer = result["bytes"] / result["requests"]
    if abs(per_answer - size) > 100 + size * 0.02:
        return f"{per_answer:.0f} bytes per answer, expected about {size}"
    return ""


def wait_up(url: str, proc: subprocess.Popen, timeout: float, ready: int | None = None) -> float:
    """Seconds until ``url`` answers (with the status ``ready``, if given)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if ready in (None, head(url, {})[0]):
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_nginx(template: Path, prefix: Path, **markers: str) -> subprocess.Popen:
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "tmp").mkdir(parents=True)
    conf = template.read_text()
    for key, value in {"PREFIX": str(prefix), "ACCESS_LOG": "off", **markers}.items():
        conf = conf.replace("{" + key + "}", value)
    (prefix / "nginx.conf").write_text(conf)
    cmd = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log")]
    cmd += ["-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    return subprocess.Popen(
        [*pinned(0), *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def gzip_copy(source: Path, target: Path) -> None:
    """The export with a .gz beside every text file, for nginx's gzip_static."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    for path in list(target.rglob("*")):
        if path.suffix in (".rss", ".atom", ".json", ".opml", ".html"):
            gz = path.with_name(path.name + ".gz")
            gz.write_bytes(gzip.compress(path.read_bytes(), 6, mtime=0))
            st = path.stat()
            os.utime(gz, ns=(st.st_atime_ns, st.st_mtime_ns))


def wrk(url: str, seconds: int, connections: int, env: dict[str, str]) -> dict:
    cmd = [*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["-s", str(BENCH / "wrk.lua"), url]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**os.environ, **env},
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def bench_serving(
    work: Path, config: Path, export: Path, seconds: int, connections: int, rounds: int
) -> dict:
    log("== serving")
    ports = {k: free_port() for k in ("feeds", "static", "static-gz", "proxy")}
    procs: dict[str, subprocess.Popen] = {}
    results: dict = {"targets": {}, "problems": []}
    try:
        # Bring the export up to date with the articles (the last timed build had one more).
        subprocess.run(
            [*FEEDS, "--config", str(config), "build"],
            check=True,
            capture_output=True,
            cwd=work,
            env=feeds_env(),
            timeout=BUILD_TIMEOUT,
        )
        gzip_copy(export, work / "export-gz")
        serve_cmd = [*FEEDS, "--config", str(config), "serve", "--port", str(ports["feeds"])]
        procs["feeds"] = subprocess.Popen(
            [*pinned(0), *serve_cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=work,  # not the repository: `python -m feeds` imports from the cwd first
            env=feeds_env(),
        )
        procs["static"] = start_nginx(
            DEPLOY / "nginx-static.conf",
            work / "nginx-static",
            ROOT=str(export),
            PORT=str(ports["static"]),
        )
        procs["static-gz"] = start_nginx(
            DEPLOY / "nginx-static.conf",
            work / "nginx-static-gz",
            ROOT=str(work / "export-gz"),
            PORT=str(ports["static-gz"]),
        )
        # Until its first complete load feeds serve answers 503: /healthz says when it is done.
        health = f"http://127.0.0.1:{ports['feeds']}/healthz"
        startup = wait_up(health, procs["feeds"], START_TIMEOUT, ready=200)
        results["feeds_startup_s"] = round(startup, 1)
        log(f"  feeds serve answered after {startup:.1f} s")
        procs["proxy"] = start_nginx(
            DEPLOY / "nginx-proxy.conf",
            work / "nginx-proxy",
            UPSTREAM=f"127.0.0.1:{ports['feeds']}",
            PORT=str(ports["proxy"]),
        )
        for key in ("static", "static-gz", "proxy"):
            wait_up(f"http://127.0.0.1:{ports[key]}/", procs[key], 10)

        labels = {
            "feeds": "feeds serve (granian, 16 threads)",
            "static": "nginx static export, gzip on",
            "static-gz": "nginx static export, gzip_static (.gz made by the bench)",
            "proxy": "nginx proxy_cache in front of feeds serve",
        }
        expected = fetch(f"http://127.0.0.1:{ports['feeds']}/{FEED_PATH}", {})[2]
        for key, port in ports.items():
            url = f"http://127.0.0.1:{port}/{FEED_PATH}"
            target = results["targets"][key] = {"label": labels[key], "cases": {}}
            target["etag"], target["sizes"], wrong = check_answers(url, expected)
            if wrong:
                results["problems"].append(f"{labels[key]}: {wrong}")
            wrk(url, 1, connections, {"BENCH_ACCEPT_ENCODING": "gzip"})  # warm-up, not kept

        cases = {
            "200 gzip": lambda t: {"BENCH_ACCEPT_ENCODING": "gzip"},
            "304 If-None-Match": lambda t: {
                "BENCH_ACCEPT_ENCODING": "gzip",
                "BENCH_IF_NONE_MATCH": t["etag"],
            },
        }
        # Rounds of every row in turn: the machine's load drifts, and each round's ratios
        # compare runs made seconds apart. Each row reports its median round.
        runs: dict = {}
        for _ in range(rounds):
            for case, env_of in cases.items():
                for key in ("feeds", "static", "static-gz", "proxy"):
                    target = results["targets"][key]
                    url = f"http://127.0.0.1:{ports[key]}/{FEED_PATH}"
                    result = wrk(url, seconds, connections, env_of(target))
                    result["wrong"] = wrong_run(result, target["sizes"][case])
                    if result["wrong"]:
                        results["problems"].append(f"{case}, {target['label']}: {result['wrong']}")
                    runs.setdefault((case, key), []).append(result)
                    log(
                        f"  {case:18} {key:9} {result['rps']:9.0f} req/s  p99 "
                        f"{result['p99_us'] / 1000:7.2f} ms  {result['wrong'] or 'answers ok'}"
                    )
        for (case, key), results_of in runs.items():
            middle = sorted(results_of, key=lambda r: r["rps"])[len(results_of) // 2]
            pairs = zip(runs[(case, "feeds")], results_of, strict=True)
            # A ratio only from rounds where both servers gave the right answers throughout.
            ratios = [
                ours["rps"] / theirs["rps"]
                for ours, theirs in pairs
                if not ours["wrong"] and not theirs["wrong"]
            ]
            middle["ratio"] = statistics.median(ratios) if len(ratios) == len(results_of) else None
            middle["ratios"] = ratios
            results["targets"][key]["cases"][case] = middle
    finally:
        for proc in procs.values():
            stop(proc)
    results["connections"] = connections
    results["seconds"] = seconds
    results["rounds"] = rounds
    return results


# --------------------------------------------------------------------------- report


def snapshot(rev: str, work: Path) -> Path:
    """``feeds/`` as of git revision ``rev``, unpacked under ``work``."""
    target = work / "code"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "feeds"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def code_version(rev: str | None) -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.strip()

    if rev:
        return f"feeds at {git('rev-parse', '--short', rev)} ({rev}), a snapshot of feeds/"
    dirty = git("status", "--short", "--", "feeds")
    head = git("rev-parse", "--short", "HEAD")
    if dirty:
        files = ", ".join(line.split()[-1] for line in dirty.splitlines())
        return f"the working tree: HEAD {head} with uncommitted changes in {files}"
    return f"the working tree at {head}"


def machine() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"
        return (
            (proc.stdout + proc.stderr).strip().splitlines()[0] if proc.stdout + proc.stderr else ""
        )

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = out(["free", "-h"])
    try:
        mem_line = subprocess.run(
            ["free", "-h"], capture_output=True, text=True
        ).stdout.splitlines()[1]
        mem = f"{mem_line.split()[1]} total"
    except (OSError, IndexError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "memory": mem,
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hugo": out(["hugo", "version"]),
        "nginx": out(["nginx", "-v"]),
        "wrk": out(["wrk", "-v"]),
    }


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _ratio(ours: Side, hugo: Side | None, phase: str) -> str:
    """Median of per-repetition ratios (each pair ran back to back)."""
    if hugo is None or phase not in ours.runs or phase not in hugo.runs:
        return "–"
    pairs = zip(ours.runs[phase], hugo.runs[phase], strict=False)
    return f"{statistics.median(a.wall / b.wall for a, b in pairs):.2f}"


def report(builds: list[dict], serving: dict | None, info: dict[str, str], repeats: int) -> str:
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "",
        "## Builds",
        "",
        f"Wall seconds (median of {repeats} interleaved repetitions at sizes up to 20,000, "
        f"{min(repeats, 2)} above), CPU = user + system seconds of the cold build, "
        "peak RSS of the cold build. "
        "Ratio = ours / Hugo wall time, median of the per-repetition ratios.",
        "",
        "| N | builder | feeds | feed files | all files | MiB out | cold s | warm s | +1 article s "
        "| cold CPU s | peak RSS MiB | cold ours/Hugo | warm ours/Hugo | +1 ours/Hugo |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in builds:
        hugo = b["sides"].get("hugo")
        for key, side in b["sides"].items():
            feeds, files, size = side.output or (0, 0, 0)
            cold_rss = max((r.rss_mib for r in side.runs.get("cold", [])), default=0)
            ours = key != "hugo"
            lines.append(
                f"| {b['count']:,} | {side.name} | {side.feeds:,} | {feeds:,} | {files:,} "
                f"| {size / 2**20:.1f} "
                f"| {_s(side.median('cold'))} | {_s(side.median('warm'))} "
                f"| {_s(side.median('add'))} "
                f"| {_s(side.median('cold', 'cpu'))} | {cold_rss:.0f} "
                f"| {_ratio(side, hugo, 'cold') if ours else ''} "
                f"| {_ratio(side, hugo, 'warm') if ours else ''} "
                f"| {_ratio(side, hugo, 'add') if ours else ''} |"
            )
    lines += [
        "",
        "What the warm and +1 builds wrote (ours; Hugo rewrites every file on every build):",
        "",
    ]
    for b in builds:
        for side in b["sides"].values():
            if side.written:
                said = "; ".join(f"{p}: {w}" for p, w in side.written.items())
                lines.append(f"- {b['count']:,}, {side.name}: {said}")
    lines += [
        "",
        "In-process rebuild after one added article (a `Publisher` kept alive, as `feeds serve` "
        "keeps one; rss-only config, no export). *Scan*: the look at every file's stamp that "
        "serving makes every `reload_interval` where it cannot watch, then a rebuild that looks "
        "at every file. *Watched*: the rebuild told the changed file by inotify, as `feeds "
        "serve` does on Linux; *visible*: from writing the file until the server's state has it.",
        "",
        "| N | first build s | change scan s | rebuild after scan s | watched rebuild s "
        "| visible after s | files changed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in builds:
        r = b["reload"]
        lines.append(
            f"| {b['count']:,} | {r['cold_s']:.2f} | {r['inputs_scan_s']:.2f} "
            f"| {r['reload_after_add_s']:.2f} | {r['watched_rebuild_s']:.2f} "
            f"| {r['visible_after_s']:.2f} | {r['files_changed']} of {r['files']} |"
        )
    if serving:
        lines += [
            "",
            "## Serving",
            "",
            f"`/{FEED_PATH}` of the default config at {serving['size']:,} articles; wrk, 1 thread, "
            f"{serving['connections']} connections, {serving['seconds']} s per row, "
            f"{serving['rounds']} rounds of all rows in turn (each row: its median round; the "
            "ratio: the median of the rounds' ratios, each from runs seconds apart), "
            "servers on CPU 0 and wrk on CPU 1. feeds serve answered "
            f"{serving['feeds_startup_s']} s after start.",
            "",
            "| case | server | req/s | p50 ms | p99 ms | answers | feeds/this (req/s) "
            "| per round |",
            "|---|---|---:|---:|---:|---|---:|---|",
        ]
        for case in ("200 gzip", "304 If-None-Match"):
            for target in serving["targets"].values():
                r = target["cases"][case]
                rounds = " ".join(f"{x:.2f}" for x in r["ratios"])
                lines.append(
                    f"| {case} | {target['label']} | {r['rps']:,.0f} | {r['p50_us'] / 1000:.2f} "
                    f"| {r['p99_us'] / 1000:.2f} | {r['wrong'] or 'ok'} | {ratio(r)} "
                    f"| {rounds} |"
                )
        for problem in serving["problems"]:
            lines.append(f"\nWrong answers, no ratio printed from them: {problem}")
    return "\n".join(lines) + "\n"


def ratio(row: dict) -> str:
    return "refused: wrong answers" if row["ratio"] is None else f"{row['ratio']:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="article counts, comma-separated")
    parser.add_argument(
        "--quick", action="store_true", help="one repetition, 2 s wrk runs, 2 serving rounds"
    )
    parser.add_argument(
        "--repeats", type=int, help="repetitions at sizes up to 20,000 (default 3; at most 2 above)"
    )
    parser.add_argument(
        "--full", action="store_true", help="warm and +1 for the default config at every size"
    )
    parser.add_argument("--no-serve", action="store_true", help="skip the serving benchmark")
    parser.add_argument("--wrk-seconds", type=int, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--work", type=Path, help="work folder (kept); default: a temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the temp work folder")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--at",
        metavar="REV",
        help="benchmark feeds/ as of this git revision (e.g. HEAD) instead of the working tree",
    )
    args = parser.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or min(sizes) < 1:
        parser.error("--sizes: expected positive whole numbers, e.g. 10000,100000")
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.wrk_seconds or (2 if args.quick else 5)

    missing = [t for t in ("hugo", "nginx", "wrk") if not shutil.which(t)]
    if not Path(TIME).exists():
        missing.append("time")
    if missing:
        names = {"nginx": "nginx-light"}
        log(
            f"missing: {', '.join(missing)} (apt-get install -y "
            f"{' '.join(names.get(m, m) for m in missing)}); their rows are skipped"
        )

    work = args.work or Path(tempfile.mkdtemp(prefix="feeds-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    # Run as root, nginx's workers are `nobody`: they must get through to the export and
    # to their own cache (mkdtemp makes a folder only its owner may enter: every nginx
    # row answered 404 or 500).
    work.chmod(0o755)
    work = work.resolve()
    log(f"work folder: {work}")
    if args.at:
        FEEDS_ENV["PYTHONPATH"] = str(snapshot(args.at, work))
    code = code_version(args.at)
    where = subprocess.run(
        [PYTHON, "-c", "import feeds; print(feeds.__file__)"],
        cwd=work,
        env=feeds_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log(f"code: {code} (imports {where})")
    # As README's setup does: where PYTHONDONTWRITEBYTECODE is set, every process timed
    # would otherwise compile feeds as it starts.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(Path(where).parent)], check=True)
    started = time.monotonic()
    try:
        builds = []
        for count in sizes:
            size_repeats = repeats if count <= 20_000 else min(repeats, 2)
            builds.append(bench_builds(work, count, size_repeats, args.full, "hugo" not in missing))
        serving = None
        if not args.no_serve and not {"nginx", "wrk"} & set(missing):
            first = builds[0]
            # The default config's export of the smallest size is still there from its runs.
            serving = bench_serving(
                work,
                first["configs"]["default"],
                first["out"]["default"],
                seconds,
                args.connections,
                rounds=2 if args.quick else 3,
            )
            serving["size"] = first["count"]
        text = report(builds, serving, {"code": code, **machine()}, repeats)
        text += f"\nTotal benchmark time: {(time.monotonic() - started) / 60:.1f} min.\n"
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
    finally:
        shutil.rmtree(work / RETIRED, ignore_errors=True)
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if serving and serving["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
