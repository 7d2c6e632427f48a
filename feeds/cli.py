"""The ``feeds`` command: build, serve and check."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from feeds import articles as articles_module
from feeds import websub
from feeds.errors import ConfigError, FeedsError, Problem
from feeds.export import Report, export
from feeds.files import find
from feeds.publisher import Publisher, Snapshot, feed_urls, paused_gc
from feeds.rebuild import Rebuilder

PROGRESS_FROM = 2000  # files; smaller builds finish before a bar would help
MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers `feeds serve` reads


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


@click.group()
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
    ctx.obj = Publisher(config_path)


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
            publisher.cache.restore(folder)
            if watch:
                rebuilder = Rebuilder(publisher, track=_progress)
                snapshot = rebuilder.first
            else:  # one export: each file rendered as it is written, none kept
                rebuilder = None
                snapshot = publisher.build(config, track=_progress, keep=False)
            report = export(snapshot.files, folder, gzip=config.output.gzip)
            publisher.cache.save(folder)
    except FeedsError as e:
        raise Failed(str(e)) from None
    _tell(snapshot, report, folder)
    if rebuilder:
        _keep_building(rebuilder, output, snapshot)
    elif strict and snapshot.problems:
        raise Failed(f"--strict: {len(snapshot.problems)} article files skipped")


def _tell(snapshot: Snapshot, report: Report, folder: Path) -> None:
    """Print what a build did, and tell the WebSub hub of the feeds it changed."""
    for problem in snapshot.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"Read {snapshot.articles + len(snapshot.problems)} article files: "
        f"{snapshot.articles} published, {len(snapshot.problems)} skipped.\n"
        f"{len(snapshot.feeds)} feeds in {folder}: {len(report.written)} files written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed."
    )
    hub = snapshot.config.websub.hub
    changed = feed_urls(snapshot, report.written)
    if hub and changed:
        told = websub.publish(hub, changed)
        click.echo(
            f"Told the WebSub hub of {len(changed)} changed feeds."
            if told
            else f"The WebSub hub {hub} did not take the {len(changed)} changed feeds.",
            err=not told,
        )


def _keep_building(rebuilder: Rebuilder, output: Path | None, last: Snapshot) -> None:
    """``build --watch``: export each new snapshot until interrupted (Ctrl-C or SIGTERM);
    a failure is shown and the next change tried. The parse cache is saved on the way out."""
    folder = output or last.config.output_folder
    default = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            rebuilder.wait(last.config.serve.reload_interval)
            snapshot = rebuilder.rebuild()
            if snapshot is None:
                continue
            folder = output or snapshot.config.output_folder
            config = snapshot.config
            try:
                report = export(snapshot.files, folder, gzip=config.output.gzip, since=last.files)
            except FeedsError as e:
                click.echo(str(e), err=True)
                continue
            last = snapshot
            _tell(snapshot, report, folder)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, default)
        rebuilder.publisher.cache.save(folder)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does


@main.command()
@click.option("-h", "--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--threads",
    # With fewer threads than requests in flight, granian answered 304s at 0.50 of nginx's
    # rate with 4 threads and 16 connections; at 0.77 with 16 (bench/run.py, one core each).
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

    from feeds.web import create_app

    _refuse_taken(host, port)
    try:
        app = create_app(publisher.config_path)
    except FeedsError as e:
        raise Failed(str(e)) from None
    click.echo(f"Serving the feeds of {publisher.config_path} on http://{host}:{port}/", err=True)
    server = Granian(
        "feeds",  # only named: the worker gets ``app`` from the loader below
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
    # The worker is a forked process: it inherits the feeds built above (spawned, it would
    # have to pickle them), and so does a worker respawned after a crash.
    multiprocessing.set_start_method("fork", force=True)
    server.serve(target_loader=lambda: app, wrap_loader=False)


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
