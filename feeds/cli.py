"""The ``feeds`` command: build, serve and check."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from feeds import articles as articles_module
from feeds import websub
from feeds.errors import ConfigError, FeedsError, Problem
from feeds.export import export
from feeds.publisher import Publisher, feed_urls

PROGRESS_FROM = 2000  # files; smaller builds finish before a bar would help


class Failed(click.ClickException):
    """A user-facing failure: printed as it is (``file: key: message``), exit 1."""

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def _progress(paths: list[Path]) -> Iterator[Path]:
    if len(paths) < PROGRESS_FROM or not sys.stderr.isatty():
        yield from paths
        return
    with click.progressbar(paths, label="Reading articles", file=sys.stderr) as bar:
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
@click.pass_obj
def build(publisher: Publisher, output: Path | None, strict: bool) -> None:
    """Write every feed into the output folder."""
    try:
        config = publisher.load_config()
        snapshot = publisher.build(config, track=_progress)
        folder = output or config.output_folder
        report = export(snapshot.files, folder)
    except FeedsError as e:
        raise Failed(str(e)) from None
    for problem in snapshot.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"Read {snapshot.articles + len(snapshot.problems)} article files: "
        f"{snapshot.articles} published, {len(snapshot.problems)} skipped.\n"
        f"{len(snapshot.feeds)} feeds in {folder}: {len(report.written)} files written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed."
    )
    hub = config["websub.hub"]
    changed = feed_urls(snapshot, report.written)
    if hub and changed:
        told = websub.publish(hub, changed)
        click.echo(
            f"Told the WebSub hub of {len(changed)} changed feeds."
            if told
            else f"The WebSub hub {hub} did not take the {len(changed)} changed feeds.",
            err=not told,
        )
    if strict and snapshot.problems:
        raise Failed(f"--strict: {len(snapshot.problems)} article files skipped")


@main.command()
@click.option("-h", "--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker threads of the WSGI server.",
)
@click.pass_obj
def serve(publisher: Publisher, host: str, port: int, threads: int) -> None:
    """Serve the feeds over HTTP with a production WSGI server (waitress)."""
    import waitress

    from feeds.web import create_app

    try:
        app = create_app(publisher.config_path)
    except FeedsError as e:
        raise Failed(str(e)) from None
    click.echo(f"Serving the feeds of {publisher.config_path} on http://{host}:{port}/", err=True)
    # Readers only GET feeds: small request limits keep hostile clients cheap to refuse.
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="feeds",
        max_request_header_size=16 * 1024,
        max_request_body_size=1024,
    )


@main.command()
@click.pass_obj
def check(publisher: Publisher) -> None:
    """Validate the config and every article; one line per problem."""
    try:
        config = publisher.load_config()
        paths, problems = articles_module.find(config.articles_folder, config["articles.patterns"])
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
