import os

import pytest

from feeds.errors import OutputError
from feeds.export import MANIFEST, export, inside
from feeds.model import Rendered
from feeds.render import etag


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
