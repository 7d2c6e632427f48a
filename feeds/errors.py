"""The one exception root of the publisher and its subclasses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class FeedsError(Exception):
    """Root of every error the publisher reports to a user."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input file, reported as ``file:line: message``."""

    source: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


class ConfigError(FeedsError):
    """The config file is missing or invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


class ArticleError(FeedsError):
    """One article file cannot be published."""

    def __init__(self, path: Path | str, message: str, line: int | None = None):
        self.problem = Problem(str(path), message, line)
        super().__init__(str(self.problem))


class OutputError(FeedsError):
    """The output folder cannot be written."""
