"""Rendered feeds → files in the output folder, written atomically and only when changed.

A manifest in the output folder lists the files the publisher wrote, so a feed that no
longer exists is removed without touching anything else kept there.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from feeds.errors import OutputError
from feeds.model import Rendered

log = logging.getLogger(__name__)

MANIFEST = ".feeds-manifest"
_TEMP_PREFIX = ".feeds-"


@dataclass(frozen=True)
class Report:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def inside(root: Path, path: str) -> Path:
    """``root / path``, refusing any path that would land outside ``root``."""
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise OutputError(f"{path}: refusing to write outside {root}")
    return target


def export(files: Mapping[str, Rendered], folder: Path) -> Report:
    """Write ``files`` under ``folder``; remove files an earlier export wrote that are gone."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        root = folder.resolve()
        _remove_temp_files(root)
        old = _read_manifest(root)
        # Listed before writing, so a build killed half-way still knows every file it wrote.
        _update(root / MANIFEST, _manifest(old | files.keys()))
        written, unchanged = [], []
        for path in sorted(files):
            changed = _update(inside(root, path), files[path].body)
            (written if changed else unchanged).append(path)
        removed = sorted(old - files.keys())
        for path in removed:
            _remove(root, path)
        _update(root / MANIFEST, _manifest(files.keys()))
    except OSError as e:
        where = e.filename or folder
        raise OutputError(f"{where}: cannot write the feeds: {e.strerror or e}") from None
    return Report(tuple(written), tuple(unchanged), tuple(removed))


def _update(target: Path, body: bytes) -> bool:
    """Write ``target`` unless it already holds ``body`` (its mtime then stays); True if written."""
    try:
        if target.stat().st_size == len(body) and target.read_bytes() == body:
            return False
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, body)
    return True


def _write(target: Path, body: bytes) -> None:
    """Replace ``target`` atomically: readers see the old bytes or the new, never a part."""
    temp = None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException as e:
        if temp:
            Path(temp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno:
            # Name the feed: the error named the random temp file (gone by now) or, for a
            # full disk, nothing at all.
            raise OSError(e.errno, e.strerror, str(target)) from None
        raise


def _remove(root: Path, path: str) -> None:
    try:
        target = inside(root, path)
    except OutputError:
        log.warning("manifest lists %s, outside the output folder: left alone", path)
        return
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _manifest(paths) -> bytes:
    return "".join(f"{p}\n" for p in sorted(paths)).encode()


def _read_manifest(root: Path) -> set[str]:
    try:
        return set((root / MANIFEST).read_text(encoding="utf-8").split("\n")) - {""}
    except FileNotFoundError:
        return set()


def _remove_temp_files(root: Path) -> None:
    """Temp files left by a build that was killed mid-write."""
    for temp in root.rglob(f"{_TEMP_PREFIX}*.tmp"):
        temp.unlink(missing_ok=True)
