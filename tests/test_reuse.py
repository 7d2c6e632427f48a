"""Rendering less: reused and lazily rendered files are what a full build gives."""

from feeds.publisher import Publisher


def test_an_export_that_keeps_nothing_gives_the_same_files(corpus_site, corpus):
    """`feeds build` renders each file as it writes it and keeps none (a LazyFiles); asked in
    any order, even twice, it gives what a kept build gives, and lets go of every entry."""
    corpus_site.configure(articles={"folder": str(corpus)}, feeds={"items": 5})
    kept = {p: r.body for p, r in Publisher(corpus_site.config_path).build().files.items()}
    assert any("/archive/" in p for p in kept)
    files = Publisher(corpus_site.config_path).build(keep=False).files
    assert {p: files[p].body for p in files} == kept  # in its own order
    assert {p: files[p].body for p in sorted(files, reverse=True)} == kept
    renderer = files._renderer
    assert all(p in files for p in kept) and "nope.rss" not in files
    for _ in files.items():  # the order in which it lets each entry go after its last use
        pass
    assert not renderer._entries
