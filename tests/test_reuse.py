"""Rendering less: reused and lazily rendered files are what a full build gives."""

from feeds.publisher import Publisher

from .conftest import article


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


def test_a_rebuild_reuses_only_what_did_not_change(site):
    """A publisher that builds again after an article changed gives what a new one gives,
    and reuses the files of the feeds the article is not in."""
    site.configure(feeds={"items": 2})
    for n in range(1, 6):
        site.write(f"{n}.md", article(n=n, topics=["AI"] if n == 5 else ["Robots"]))
    publisher = Publisher(site.config_path)
    first = publisher.build().files
    site.write("5.md", article(n=5, title="Changed", topics=["AI"]))
    second = publisher.build().files
    assert {p: r.body for p, r in second.items()} == {
        p: r.body for p, r in Publisher(site.config_path).build().files.items()
    }
    assert second["topics/robots.rss"] is first["topics/robots.rss"]  # reused, not rendered
    assert second["topics/ai.rss"].body != first["topics/ai.rss"].body
