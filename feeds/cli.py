"""The ``feeds`` command: build, serve and check."""

from __future__ import annotations

import difflib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import yaml

from feeds import articles as articles_module
from feeds import buildstate, incremental, processes, stats, stats_output
from feeds import config as config_module
from feeds.config import Config
from feeds.errors import ConfigError, FeedsError, OutputError, Problem
from feeds.export import Report, export
from feeds.files import find
from feeds.handover import keep_stored, modified
from feeds.model import FORMAT_NAMES
from feeds.publisher import Publisher, Snapshot, paused_gc, public_urls
from feeds.store import Store

if TYPE_CHECKING:
    from feeds.rebuild import Reloader

log = logging.getLogger(__name__)

PROGRESS_FROM = 2000  # files; smaller builds finish before a bar would help
MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers `feeds serve` reads
HUB_GRACE = 5.0  # seconds `build --watch` waits, when stopped, for the hub to be told


class Failed(click.ClickException):
    """A user-facing failure: printed as it is (``file: key: message``), exit 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.message, err=True)


def _progress(results: Iterator, count: int) -> Iterator:
    if count < PROGRESS_FROM or not sys.stderr.isatty():
        yield from results
        return
    with click.progressbar(results, count, label="Reading articles", file=sys.stderr) as bar:
        yield from bar


# -h is help everywhere: serve's host is --host only.
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    default="config.yaml",
    show_default=True,
    envvar="FEEDS_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file (also $FEEDS_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what the publisher does.")
@click.version_option(package_name="feeds")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: bool) -> None:
    """Publish RSS and Atom feeds from Markdown news articles."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # What `serve` and `build --watch` tell after each build (feeds.report) shows unasked.
    report = logging.getLogger("feeds.report")
    report.handlers = [_Echo()]
    report.setLevel(logging.DEBUG if verbose else logging.INFO)
    report.propagate = False
    ctx.obj = Publisher(config_path)


class _Echo(logging.Handler):
    """Log records as plain lines on stderr, wherever it is at the time (a forked worker)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write here instead of output.folder.",
)
@click.option("--strict", is_flag=True, help="Exit with 1 if any article was skipped.")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep running: build again as soon as article files or the config change, reading "
    "only the changed files and writing only the changed feeds (Ctrl-C stops).",
)
@click.pass_obj
def build(publisher: Publisher, output: Path | None, strict: bool, watch: bool) -> None:
    """Write every feed into the output folder."""
    if strict and watch:
        raise click.UsageError("--strict sets the exit status of one build: not with --watch")
    try:
        with paused_gc():
            config = publisher.load_config()
            folder = output or config.output_folder
            if watch:
                buildstate.forget(config)  # its exports are not the ones a state describes
                publisher.cache.restore(folder)
                exporter = _Exporter(output, folder)
                # Imported here: a one-off build neither watches nor needs what it does.
                from feeds.rebuild import Reloader

                reloader = Reloader(publisher, exporter, track=_progress)
                snapshot = reloader.first
                report = export(snapshot.files, folder, gzip=config.output.gzip)
                publisher.cache.save(folder)
            else:
                outcome = incremental.build(config, folder) or _build_whole(
                    publisher, config, folder
                )
    except FeedsError as e:
        raise Failed(str(e)) from None
    if watch:
        _tell(len(snapshot.feeds), report, folder)
        exporter.last = snapshot
        reloader.tell_hub(snapshot, report.written)
        _keep_building(reloader, exporter)
        return
    _tell_counts(outcome.problems, outcome.counts)
    _tell(outcome.feeds, outcome.report, folder)
    hub = config.websub.hub
    changed = public_urls(config, outcome.report.written)
    if hub and changed:  # the process ends here: it waits for the hub's answer
        from feeds import websub  # only with a hub: its HTTP client takes a while to load

        told = websub.publish(hub, changed)
        click.echo(
            f"Told the WebSub hub of {len(changed)} changed feeds."
            if told
            else f"The WebSub hub {hub} did not take the {len(changed)} changed feeds.",
            err=not told,
        )
    if strict and outcome.problems:
        raise Failed(f"--strict: {len(outcome.problems)} article files skipped")


def _build_whole(publisher: Publisher, config: Config, folder: Path) -> incremental.Outcome:
    """A build that reads (or takes from the parse cache) every article: where an
    incremental one cannot be made (see :mod:`feeds.incremental`)."""
    publisher.cache.restore(folder)
    keeper = incremental.Keeper(publisher, config, folder)
    snapshot, report = _build_once(publisher, config, folder, keeper)
    keeper.finish(snapshot)
    found = stats.counts(snapshot)
    return incremental.Outcome(config, snapshot.problems, found, len(snapshot.feeds), report)


def _build_once(
    publisher: Publisher, config: Config, folder: Path, keeper: incremental.Keeper
) -> tuple[Snapshot, Report]:
    """Build from the files the last run (``feeds build`` or ``feeds serve``) kept in the
    store in output.folder, rendering only the documents that changed (while ``keeper``
    writes what needs only the articles); export into ``folder`` (each file a link to its
    stored body), and keep the store for the next."""
    publisher.stored = True
    kept = Store.of(config).load(config)
    if kept is not None:
        publisher.resume(config, kept)
    try:
        snapshot = publisher.build(config, track=_progress, meanwhile=keeper)
    except OutputError as e:  # say, a read-only output.folder, and --output elsewhere
        log.warning("%s: every file is rendered for this export alone", e)
        publisher.stored = False
        snapshot = publisher.build(config, track=_progress, keep=False)
    report = export(snapshot.files, folder, gzip=config.output.gzip)
    if publisher.stored:
        dates = modified(snapshot, datetime.now(UTC))
        keep_stored(publisher, snapshot, dates, kept.files if kept else {})
    return snapshot, report


def _tell_counts(problems: Iterable[Problem], counts: stats.Counts) -> None:
    """Print the broken articles and the counts (``build --watch`` has its Reloader tell
    those)."""
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(stats.summary(counts))
    if _verbose():
        click.echo("\n".join(stats.details(counts)))


def _tell(feeds: int, report: Report, folder: Path) -> None:
    """Print what an export did."""
    click.echo(
        f"{feeds} feeds in {folder}: {len(report.written)} files written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed."
    )


def _verbose() -> bool:
    return bool(click.get_current_context().find_root().params.get("verbose"))


class _Exporter:
    """``build --watch``'s use of each new snapshot: write the files that changed since
    the last one written; a failure is shown and the next change tried."""

    def __init__(self, output: Path | None, folder: Path):
        self.output = output
        self.folder = folder  # where the last snapshot goes: the parse cache is saved there
        self.last: Snapshot | None = None  # the last snapshot written

    def __call__(self, snapshot: Snapshot) -> list[str]:
        config = snapshot.config
        folder = self.folder = self.output or config.output_folder
        since = self.last.files if self.last else None
        try:
            report = export(snapshot.files, folder, gzip=config.output.gzip, since=since)
        except FeedsError as e:
            click.echo(str(e), err=True)
            return []
        self.last = snapshot
        _tell(len(snapshot.feeds), report, folder)
        return list(report.written)


def _keep_building(reloader: Reloader, exporter: _Exporter) -> None:
    """``build --watch``: export each new snapshot until interrupted (Ctrl-C or SIGTERM).
    The parse cache is saved on the way out, and the hub given a moment for what is queued."""
    default = signal.signal(signal.SIGTERM, _interrupt)
    try:
        reloader.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, default)
        reloader.rebuilder.publisher.cache.save(exporter.folder)
        reloader.close(HUB_GRACE)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--threads",
    # With fewer threads than requests in flight, granian answered 304s at two thirds of the
    # rate with 4 threads and 16 connections that it had with 16 (bench/run.py, one core).
    default=16,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads running the app's Python code (granian's blocking threads).",
)
@click.pass_obj
def serve(publisher: Publisher, host: str, port: int, threads: int) -> None:
    """Serve the feeds over HTTP with a production server (granian)."""
    import multiprocessing

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.log import logger as granian_log

    _refuse_taken(host, port)
    try:
        publisher.load_config()  # cheap, unlike a build: the worker builds (see below)
    except FeedsError as e:
        raise Failed(str(e)) from None
    click.echo(f"Serving the feeds of {publisher.config_path} on http://{host}:{port}/", err=True)
    server = Granian(
        "feeds",  # only named: the worker gets its app from the loader below
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        blocking_threads=threads,
        # HTTP/1 only: its read buffer bounds the request line and headers (431 past it);
        # HTTP/2 and TLS are the job of a proxy in front.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD),
        log_level=LogLevels.warning,
        respawn_failed_workers=True,
    )
    # granian warns of more threads than 2 per core + 1, for apps that keep the CPU busy.
    # This one mostly waits on the network, and 16 was measured faster than fewer (above).
    granian_log.addFilter(_not_the_thread_count_warning)
    # The worker is forked: it starts at once, with the modules already imported. It builds
    # the feeds itself, in the background (it answers 503 meanwhile), and so does a worker
    # respawned after a crash; this process holds none.
    multiprocessing.set_start_method("fork", force=True)
    loader = partial(_app, publisher.config_path, os.getpid())
    server.serve(target_loader=loader, wrap_loader=False)


def _app(config_path: Path, server: int) -> Callable:
    """The WSGI app of a worker process of ``server`` (a process id). The worker ends with
    the server: an orphan would hold on to the port (granian listens with SO_REUSEPORT) and
    share it, with its old feeds, with the server started next."""
    from feeds.web import create_app

    processes.end_with(server)
    return create_app(config_path, background=True)


def _not_the_thread_count_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Configuration allows spawning up to")


def _refuse_taken(host: str, port: int) -> None:
    """Fail if something already listens on ``host:port``.

    granian listens with SO_REUSEPORT, so a second server would start on the same port and
    quietly take a share of its connections."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            probe.bind(address)
    except OSError as e:
        raise Failed(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


@main.command()
@click.pass_obj
def check(publisher: Publisher) -> None:
    """Validate the config and every article; one line per problem."""
    try:
        config = publisher.load_config()
        paths, problems = find(config.articles_folder, config.articles.patterns)
    except ConfigError as e:
        raise Failed(str(e)) from None
    except FeedsError as e:
        raise Failed(f"{publisher.config_path}: {e}") from None
    for path in paths:
        result = articles_module.read(path)
        if isinstance(result, Problem):
            problems.append(result)
    for problem in problems:
        click.echo(str(problem))
    click.echo(f"{len(paths)} article files, {len(problems)} problems.", err=True)
    if problems:
        raise click.exceptions.Exit(1)


class Override(click.ParamType):
    """``KEY=VALUE``: a config key and a YAML value, as config.yaml would give it."""

    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"expected KEY=VALUE, such as quality.min=60, got {value!r}", param, ctx)
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text  # the setting's check says what it expected
        return key.strip(), parsed


@main.command("stats")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    type=Override(),
    help="Use this value of a config key for this run only (repeatable), checked as in "
    "config.yaml: --set quality.min=60, --set 'quality.topics.AI Ethics=70'.",
)
@click.option("--feed", "feed_path", metavar="PATH", help="Only this feed, e.g. topics/ai.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (see README).")
@click.pass_obj
def stats_command(
    publisher: Publisher,
    overrides: tuple[tuple[str, Any], ...],
    feed_path: str | None,
    as_json: bool,
) -> None:
    """What the quality thresholds and the dedupe do to every feed."""
    given = dict(overrides)
    try:
        config = config_module.load(publisher.config_path, given)
        publisher.cache.restore(config.output_folder)  # read only files changed since a build
        snapshot = publisher.build(config, keep=False)
    except FeedsError as e:
        raise Failed(str(e)) from None
    found = stats.feed_stats(snapshot)
    if feed_path is not None:
        found = [s for s in found if s.path == _feed_path(feed_path, [s.path for s in found])]
    counts = stats.counts(snapshot)
    if as_json:
        document = stats_output.as_json(counts, found, str(publisher.config_path), given)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for problem in snapshot.problems:
        click.echo(str(problem), err=True)
    click.echo(stats.summary(counts))
    click.echo("\n".join(stats_output.table(found)))


def _feed_path(given: str, paths: list[str]) -> str:
    """The feed ``given`` names (with or without a format's extension), or a failure."""
    path = given.strip("/")
    stem, _, extension = path.rpartition(".")
    if stem and extension in FORMAT_NAMES and stem in paths:
        path = stem
    if path not in paths:
        near = difflib.get_close_matches(path, paths, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise Failed(f"--feed: no feed {given}{hint}")
    return path
