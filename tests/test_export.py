import errno
import gzip
import os
import time
from pathlib import Path

import pytest

from feeds.errors import OutputError
from feeds.export import MANIFEST, export, inside
from feeds.model import Rendered
from feeds.render import etag
from feeds.store import STORE, Store, Stored

from .conftest import article


def files(**bodies: bytes) -> dict[str, Rendered]:
    return {
        p.replace("__", "/"): Rendered(p.replace("__", "/"), "application/rss+xml", b, etag(b))
        for p, b in bodies.items()
    }


def test_writes_then_leaves_unchanged_files_alone(tmp_path):
    out = tmp_path / "public"
    report = export(files(all_rss=b"a", topics__x_rss=b"x"), out)
    assert report.written == ("all_rss", "topics/x_rss")
    assert (out / "topics" / "x_rss").read_bytes() == b"x"
    past = 1_000_000_000
    os.utime(out / "all_rss", (past, past))
    report = export(files(all_rss=b"a", topics__x_rss=b"y"), out)
    assert report.written == ("topics/x_rss",) and report.unchanged == ("all_rss",)
    assert (out / "all_rss").stat().st_mtime == past


def test_removes_only_what_it_wrote(tmp_path):
    out = tmp_path / "public"
    out.mkdir()
    (out / "index.html").write_text("mine")
    export(files(all_rss=b"a", topics__gone_rss=b"g"), out)
    report = export(files(all_rss=b"a"), out)
    assert report.removed == ("topics/gone_rss",)
    assert not (out / "topics").exists()  # emptied folders go too
    assert (out / "index.html").read_text() == "mine"
    assert (out / MANIFEST).read_text() == "all_rss\n"


def test_no_temp_files_are_left_and_files_are_world_readable(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a"), out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "all_rss"]
    assert (out / "all_rss").stat().st_mode & 0o777 == 0o644


def test_paths_cannot_leave_the_output_folder(tmp_path):
    with pytest.raises(OutputError):
        inside(tmp_path.resolve(), "../escape.rss")
    (tmp_path / "public").mkdir()
    with pytest.raises(OutputError):
        export(files(**{"..__escape_rss": b"x"}), tmp_path / "public")
    assert not (tmp_path / "escape_rss").exists()


def test_a_read_only_output_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        # root writes anyway; a file in the way of the folder fails for everyone
        blocker = tmp_path / "public"
        blocker.write_text("not a folder")
    else:
        blocker = tmp_path / "public"
        blocker.mkdir()
        blocker.chmod(0o500)
    with pytest.raises(OutputError, match="cannot write the feeds"):
        export(files(all_rss=b"a"), blocker)


def test_a_tampered_manifest_cannot_remove_files_outside(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a"), out)
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    (out / MANIFEST).write_text("all_rss\n../keep.txt\n/etc/hostname\n")
    export(files(all_rss=b"a"), out)
    assert victim.read_text() == "precious"


def gz_files(out) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.gz")}


def test_gzip_writes_a_deterministic_copy_beside_every_file(tmp_path):
    out = tmp_path / "public"
    report = export(files(all_rss=b"a" * 500, topics__x_rss=b"x"), out, gzip=True)
    assert report.written == ("all_rss", "topics/x_rss")  # the copies go with their file
    assert set(gz_files(out)) == {"all_rss.gz", "topics/x_rss.gz"}
    for name in ("all_rss", "topics/x_rss"):
        plain, packed = out / name, out / f"{name}.gz"
        assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
        assert packed.stat().st_mtime_ns == plain.stat().st_mtime_ns
        assert packed.stat().st_mode & 0o777 == 0o644
        # No file name (flags 0) and mtime 0 in the header: the bytes depend on the body only.
        assert packed.read_bytes()[3:8] == bytes(5)
    assert (out / MANIFEST).read_text().split() == [
        "all_rss",
        "all_rss.gz",
        "topics/x_rss",
        "topics/x_rss.gz",
    ]
    export(files(all_rss=b"a" * 500, topics__x_rss=b"x"), tmp_path / "again", gzip=True)
    assert gz_files(tmp_path / "again") == gz_files(out)


def test_gzip_copies_of_unchanged_files_are_left_alone(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a", topics__x_rss=b"x"), out, gzip=True)
    past = 1_000_000_000
    for path in out.rglob("*_rss*"):
        os.utime(path, (past, past))
    before = gz_files(out)
    export(files(all_rss=b"a", topics__x_rss=b"y"), out, gzip=True)
    assert (out / "all_rss.gz").stat().st_mtime == past
    assert gz_files(out)["all_rss.gz"] == before["all_rss.gz"]
    changed = out / "topics" / "x_rss.gz"
    assert gzip.decompress(changed.read_bytes()) == b"y"
    assert changed.stat().st_mtime_ns == (out / "topics" / "x_rss").stat().st_mtime_ns > past


def test_a_gzip_copy_that_does_not_match_is_rewritten(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a", other_rss=b"b"), out, gzip=True)
    (out / "all_rss.gz").write_bytes(b"not gzip")
    (out / "other_rss.gz").write_bytes(gzip.compress(b"an older body", mtime=0))
    report = export(files(all_rss=b"a", other_rss=b"b"), out, gzip=True)
    assert report.unchanged == ("all_rss", "other_rss")
    for name, body in [("all_rss", b"a"), ("other_rss", b"b")]:
        packed = out / f"{name}.gz"
        assert gzip.decompress(packed.read_bytes()) == body
        assert packed.stat().st_mtime_ns == (out / name).stat().st_mtime_ns


def test_a_removed_feed_removes_its_gzip_copy(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a", topics__gone_rss=b"g"), out, gzip=True)
    report = export(files(all_rss=b"a"), out, gzip=True)
    assert report.removed == ("topics/gone_rss",)
    assert not (out / "topics").exists()
    assert set(gz_files(out)) == {"all_rss.gz"}


def test_turning_gzip_off_removes_the_copies_only(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a", topics__x_rss=b"x"), out, gzip=True)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*_rss")}
    report = export(files(all_rss=b"a", topics__x_rss=b"x"), out)
    assert report.unchanged == ("all_rss", "topics/x_rss") and report.removed == ()
    assert gz_files(out) == {}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*_rss")} == mtimes
    assert (out / MANIFEST).read_text() == "all_rss\ntopics/x_rss\n"


def test_feeds_build_honours_output_gzip(site, runner):
    site.configure(output={"folder": "public", "gzip": True})
    site.write("1.md", article())
    assert runner("build").exit_code == 0
    assert (site.output / "all.atom.gz").is_file()
    assert gzip.decompress((site.output / "all.atom.gz").read_bytes()) == site.feed("all.atom")


# --- files already on disk: hard links to the stored bodies --------------------------------


def stored(tmp_path, **bodies: bytes) -> dict[str, Stored]:
    store = Store(tmp_path / STORE)
    return {path: store.put(file) for path, file in files(**bodies).items()}


def test_stored_files_are_linked_and_known_unchanged_without_reading(tmp_path, monkeypatch):
    out = tmp_path / "public"
    kept = stored(tmp_path, all_rss=b"a" * 500, other_rss=b"b")
    report = export(kept, out, gzip=True)
    assert report.written == ("all_rss", "other_rss")
    for path, file in kept.items():
        assert (out / path).stat().st_ino == file.source.stat().st_ino
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*_rss*")}

    read, real_read = [], Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real_read(self))
    report = export(kept, out, gzip=True)
    assert set(read) == {out / MANIFEST}  # neither the files, their .gz nor the bodies

    assert report.unchanged == ("all_rss", "other_rss")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*_rss*")} == mtimes


def test_a_copy_with_the_same_bytes_is_unchanged_and_becomes_the_link(tmp_path):
    out = tmp_path / "public"
    export(files(all_rss=b"a"), out)  # an export from before the store
    past = 1_000_000_000
    os.utime(out / "all_rss", (past, past))
    kept = stored(tmp_path, all_rss=b"a")

    assert export(kept, out).unchanged == ("all_rss",)

    assert (out / "all_rss").stat().st_ino == kept["all_rss"].source.stat().st_ino
    assert (out / "all_rss").stat().st_mtime == past


def test_a_new_link_to_an_old_body_has_the_time_of_the_export(tmp_path):
    # A feed back to an earlier version: a web server's Last-Modified must not go back.
    kept = stored(tmp_path, **{"topics/ai/all_rss": b"a"})
    past = 1_000_000_000
    os.utime(kept["topics/ai/all_rss"].source, (past, past))
    out = tmp_path / "public"

    assert export(kept, out).written == ("topics/ai/all_rss",)

    target = (out / "topics/ai/all_rss").stat()
    assert target.st_ino == kept["topics/ai/all_rss"].source.stat().st_ino
    assert target.st_mtime > time.time() - 60


def test_a_file_made_while_exporting_is_replaced_by_the_link(tmp_path, monkeypatch):
    kept = stored(tmp_path, all_rss=b"a")
    out = tmp_path / "public"
    out.mkdir()
    real_link = os.link

    def another_writer_first(source, target):
        if Path(target) == out / "all_rss" and not Path(target).exists():
            Path(target).write_bytes(b"another build's body")
        real_link(source, target)

    monkeypatch.setattr(os, "link", another_writer_first)

    assert export(kept, out).written == ("all_rss",)
    assert (out / "all_rss").stat().st_ino == kept["all_rss"].source.stat().st_ino
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "all_rss"]  # no temp file left


def test_a_stored_file_is_copied_where_it_cannot_be_linked(tmp_path, monkeypatch):
    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    out = tmp_path / "public"
    kept = stored(tmp_path, all_rss=b"a")

    assert export(kept, out).written == ("all_rss",)

    assert (out / "all_rss").read_bytes() == b"a"
    assert (out / "all_rss").stat().st_ino != kept["all_rss"].source.stat().st_ino
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "all_rss"]  # no temp file left
    assert export(kept, out).unchanged == ("all_rss",)


def test_a_link_in_the_output_folder_cannot_lead_a_write_outside(tmp_path):
    out = tmp_path / "public"
    export(files(topics__x_rss=b"x"), out)
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    (out / "topics" / "x_rss").unlink()
    (out / "topics" / "x_rss").symlink_to(victim)
    (out / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    for path in ("topics/x_rss", "elsewhere/keep.txt"):
        with pytest.raises(OutputError, match="refusing to write outside"):
            export(files(**{path.replace("/", "__"): b"y"}), out)
    assert victim.read_text() == "precious"
