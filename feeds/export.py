"""Rendered feeds → files in the output folder, written atomically and only when changed.

Files whose body is already on disk (:class:`feeds.model.OnDisk`, the bodies of
:mod:`feeds.store`) go in as hard links to it: one copy on disk, and an unchanged file is
known by its inode without reading it back. Where linking fails (another file system, no
permission) they are written as copies, like the others.

A manifest in the output folder lists the files the publisher wrote, so a feed that no
longer exists is removed without touching anything else kept there. Optionally each file
gets a gzip copy beside it (``all.rss.gz``) for web servers that send pre-compressed files.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import secrets
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from feeds.errors import OutputError
from feeds.model import File

log = logging.getLogger(__name__)

MANIFEST = ".feeds-manifest"
GZIP_SUFFIX = ".gz"
_TEMP_PREFIX = ".feeds-"


@dataclass(frozen=True)
class Report:
    """What happened to the paths of the rendered files (a .gz copy goes with its file)."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def inside(root: Path, path: str) -> Path:
    """``root / path``, refusing any path that would land outside ``root``."""
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise OutputError(f"{path}: refusing to write outside {root}")
    return target


class _Targets:
    """:func:`inside` for every file of one export, with each folder resolved once (a
    resolve of every path was an eighth of a build's time at 100,000 articles). Only a
    plain name in a resolved folder is taken as it is: a name that is a symbolic link,
    ``..`` or ``.`` goes through :func:`inside`, as does a path whose folder leaves ``root``."""

    def __init__(self, root: Path):
        self._root = root
        self._folders: dict[str, Path] = {}

    def __call__(self, path: str) -> Path:
        folder, _, name = path.rpartition("/")
        resolved = self._folders.get(folder)
        if resolved is None:
            resolved = (self._root / folder).resolve()
            if not resolved.is_relative_to(self._root):
                return inside(self._root, path)  # which refuses it
            self._folders[folder] = resolved
        target = resolved / name
        if name in ("", ".", "..") or os.path.islink(target):
            return inside(self._root, path)
        return target


def export(
    files: Mapping[str, File],
    folder: Path,
    *,
    gzip: bool = False,
    since: Mapping[str, File] | None = None,
) -> Report:
    """Write ``files`` under ``folder``; remove files an earlier export wrote that are gone.

    With ``gzip``, every file also gets ``<file>.gz`` beside it, by the same rules and with
    the same mtime; without it, the .gz files an earlier export wrote are removed. ``since``
    are the files the same process exported there last: those of ``files`` that are still
    the very same objects are counted unchanged without reading the folder's copy back."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        root = folder.resolve()
        _remove_temp_files(root)
        old = _read_manifest(root)
        mine = files.keys() | ({p + GZIP_SUFFIX for p in files} if gzip else set())
        # Listed before writing, so a build killed half-way still knows every file it wrote.
        _update(root / MANIFEST, _manifest(old | mine))
        written: list[str] = []
        unchanged: list[str] = []
        compressed = 0
        target_of = _Targets(root)
        for path in files:  # in the order given: a LazyFiles renders them in that order
            file = files[path]
            if since is not None and since.get(path) is file:
                unchanged.append(path)
                continue
            changed, gzipped = _put(target_of(path), file, gzip)
            (written if changed else unchanged).append(path)
            compressed += gzipped
        removed = sorted(old - mine)
        for path in removed:
            _remove(root, path)
        _update(root / MANIFEST, _manifest(mine))
    except OSError as e:
        where = e.filename or folder
        raise OutputError(f"{where}: cannot write the feeds: {e.strerror or e}") from None
    copies = {p for p in removed if p.endswith(GZIP_SUFFIX) and p[: -len(GZIP_SUFFIX)] in old}
    if gzip or copies:
        log.info("%d .gz files written, %d removed", compressed, len(copies))
    removed = [p for p in removed if p not in copies]
    return Report(*(tuple(sorted(paths)) for paths in (written, unchanged, removed)))


def export_changed(
    files: Mapping[str, File], folder: Path, before: Mapping[str, str], *, gzip: bool = False
) -> Report:
    """:func:`export` into a folder known to hold what an earlier export left there:
    ``before``, each file's ETag by path (see :func:`inodes` for how that is checked).
    Only the files whose ETag differs are written (and their .gz copies), and those no
    longer there removed; the others are not looked at (at 100,000 articles, 37,000
    files). Temp files a killed export left are not looked for either: after a kill the
    next build is a whole one (see :mod:`feeds.incremental`)."""
    try:
        root = folder.resolve()
        stale = [p for p in files if before.get(p) != files[p].etag]
        removed = sorted(before.keys() - files.keys())
        suffix = (GZIP_SUFFIX,) if gzip else ()
        listed = {p + s for p in files for s in ("", *suffix)}
        if files.keys() != before.keys():  # the manifest first, as in export
            earlier = {p + s for p in before for s in ("", *suffix)}
            _update(root / MANIFEST, _manifest(listed | earlier))
        written: list[str] = []
        target_of = _Targets(root)
        for path in stale:
            if _put(target_of(path), files[path], gzip)[0]:
                written.append(path)
        for path in removed:
            for name in (path, *(path + s for s in suffix)):
                _remove(root, name)
        if files.keys() != before.keys():
            _update(root / MANIFEST, _manifest(listed))
    except OSError as e:
        where = e.filename or folder
        raise OutputError(f"{where}: cannot write the feeds: {e.strerror or e}") from None
    done = set(written)
    unchanged = [p for p in files if p not in done]
    return Report(*(tuple(sorted(paths)) for paths in (written, unchanged, removed)))


def inodes(folder: Path, paths: Iterable[str]) -> dict[str, int]:
    """The inode of each of ``paths`` (relative to ``folder``) that is there, and of the
    manifest: what tells, without a look at each file, that none was replaced or removed
    since (an export replaces a file by renaming a new one over it). One listing of each
    folder: at 37,000 files a tenth of the time of a look at each."""
    by_folder: dict[str, list[str]] = {"": [MANIFEST]}
    for path in paths:
        parent, _, name = path.rpartition("/")
        by_folder.setdefault(parent, []).append(name)
    found: dict[str, int] = {}
    for parent, names in by_folder.items():
        try:
            with os.scandir(folder / parent) as entries:
                present = {entry.name: entry.inode() for entry in entries}
        except (FileNotFoundError, NotADirectoryError):
            continue
        prefix = f"{parent}/" if parent else ""
        found.update((prefix + n, present[n]) for n in names if n in present)
    return found


def _put(target: Path, file: File, gzip: bool) -> tuple[bool, int]:
    """Put ``file`` at ``target``, a link to its stored body where it has one, and with
    ``gzip`` its .gz copy beside it: whether the file changed, and the .gz copies written."""
    # A model.OnDisk; not told by isinstance, which for a Protocol costs 10 µs a file.
    source: Path | None = getattr(file, "source", None)
    if source is not None:
        changed, linked = _link(target, source)
    else:
        changed, linked = _update(target, file.body), False
    return changed, _update_gzip(target, file, changed, linked) if gzip else 0


def _update(target: Path, body: bytes) -> bool:
    """Write ``target`` unless it already holds ``body`` (its mtime then stays); True if written."""
    try:
        if target.stat().st_size == len(body) and target.read_bytes() == body:
            return False
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, body)
    return True


def _link(target: Path, source: Path) -> tuple[bool, bool]:
    """Make ``target`` a hard link to ``source``, a stored body; whether it was written, and
    whether it was that link already (then unchanged, and not read).

    A new link gets the time of now, as a written file would: the body may be older (a
    feed back to an earlier version), and a web server's Last-Modified must not go back.
    A target with the same bytes in a copy of its own is unchanged; it becomes the link,
    with its own mtime, only where no other file links to the body yet (the mtime is the
    body's, and another export's must not go back either)."""
    try:
        have: os.stat_result | None = target.stat()
    except FileNotFoundError:
        have = None
    if have is not None:
        stored = source.stat()
        if (have.st_ino, have.st_dev) == (stored.st_ino, stored.st_dev):
            return False, True
        if have.st_size == stored.st_size and target.read_bytes() == source.read_bytes():
            if stored.st_nlink == 1:
                with contextlib.suppress(OSError):  # then the copy stays: the same bytes
                    _link_atomically(source, target, have.st_mtime_ns)
            return False, False
    try:
        if have is None:
            _link_new(source, target)
        else:
            _link_atomically(source, target)
    except OSError:  # another file system (EXDEV), no permission...: a copy of the body
        write_atomically(target, source.read_bytes())
    return True, False


def _link_new(source: Path, target: Path) -> None:
    """Make ``target``, which was not there, a hard link to ``source`` with the time of
    now: in place, as a link appears whole, with no temp name to rename (system calls are
    most of a cold export's time). The time is the body's, shared by its links: set
    first, so the link never shows an older one."""
    os.utime(source)
    try:
        try:
            os.link(source, target)
        except FileNotFoundError:  # the first file of its folder (or the body is gone)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
    except FileExistsError:  # made since it was looked for
        _link_atomically(source, target)


def _link_atomically(source: Path, target: Path, mtime_ns: int | None = None) -> None:
    """Replace ``target`` atomically with a hard link to ``source``, whose mtime (shared by
    every link to it) becomes ``mtime_ns``, or now."""
    temp = _temp_beside(target)
    try:
        os.link(source, temp)
        if mtime_ns is None:
            os.utime(temp)
        else:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _update_gzip(target: Path, file: File, changed: bool, linked: bool) -> bool:
    """Make ``target``.gz hold ``file``'s body compressed, with ``target``'s mtime; True if
    written.

    A .gz that already decompresses to the body is kept, so its bytes (and a web server's
    ETag, made from mtime and size) stay the same for an unchanged file. For a target that
    was already the link to its stored body it is not even read when its mtime is the
    target's to the nanosecond: it is given that mtime only when it is written from the
    target's bytes (or checked against them), and a stored body never changes, while a
    new link to it gets a new mtime."""
    gz = target.with_name(target.name + GZIP_SUFFIX)
    mtime = target.stat().st_mtime_ns
    if not changed and linked and _stamped(gz, mtime):
        return False
    if not changed and _decompresses_to(gz, file.body):
        if gz.stat().st_mtime_ns != mtime:
            os.utime(gz, ns=(mtime, mtime))
        return False
    # mtime=0 and no file name in the header: the same body always gives the same bytes.
    write_atomically(gz, gzip.compress(file.body, 9, mtime=0), mtime)
    return True


def _stamped(gz: Path, mtime_ns: int) -> bool:
    try:
        found = gz.stat()
    except FileNotFoundError:
        return False
    return found.st_mtime_ns == mtime_ns and found.st_size > 0


def _decompresses_to(gz: Path, body: bytes) -> bool:
    try:
        return gzip.decompress(gz.read_bytes()) == body
    except (FileNotFoundError, EOFError, gzip.BadGzipFile, zlib.error):
        return False


def write_atomically(
    target: Path,
    body: bytes | Iterable[bytes],
    mtime_ns: int | None = None,
    temp_prefix: str = _TEMP_PREFIX,
) -> None:
    """Replace ``target`` atomically: readers see the old bytes or the new, never a part.
    ``body`` may come in parts, each written as it comes. The temporary file's name starts
    with ``temp_prefix``."""
    temp = None
    try:
        # By hand, not with tempfile and a file object: half the system calls, which are
        # most of the time a small file takes.
        name = _temp_beside(target, temp_prefix)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        temp = name
        try:
            for part in [body] if isinstance(body, bytes) else body:
                left = memoryview(part)
                while left:
                    left = left[os.write(fd, left) :]
            os.fchmod(fd, 0o644)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as e:
        if temp:
            temp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno:
            # Name the feed: the error named the random temp file (gone by now) or, for a
            # full disk, nothing at all.
            raise OSError(e.errno, e.strerror, str(target)) from None
        raise


def _temp_beside(target: Path, prefix: str = _TEMP_PREFIX) -> Path:
    """A new temporary file's name beside ``target``: with the export's prefix, one that
    :func:`_remove_temp_files` removes if a killed build left it."""
    return target.with_name(f"{prefix}{secrets.token_hex(8)}.tmp")


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


def _manifest(paths: Iterable[str]) -> bytes:
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
