"""Rendering on every core (feeds.parallel): a build whose documents are rendered by worker
processes exports the very files one process renders, and keeps what the next build needs
to reuse them."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from feeds import parallel, processes, reuse

from .test_handover import exported


@pytest.mark.parametrize(
    ("pages", "early"),
    [
        pytest.param(True, True, id="pages, workers forked before the parse"),
        pytest.param(False, False, id="no pages, workers spawned for the render"),
    ],
)
def test_worker_processes_export_what_one_process_does(
    corpus_site, corpus, runner, monkeypatch, pages, early
):
    # Five items a document: many documents, with archive pages, for a few hundred articles.
    corpus_site.configure(articles={"folder": str(corpus)}, feeds={"items": 5, "pages": pages})
    monkeypatch.setattr(reuse, "LEAST", 10**9)  # every document rendered here
    assert runner("build").exit_code == 0
    alone = exported(corpus_site)

    sent: list[int] = []
    documents = parallel.Renderers.documents

    def counted(self, docs):
        sent.append(len(docs))
        return documents(self, docs)

    monkeypatch.setattr(parallel.Renderers, "documents", counted)
    monkeypatch.setattr(parallel, "cores", lambda: 2)  # whatever the cores here
    monkeypatch.setattr(parallel, "ITEMS_PER_TASK", 40)  # many tasks for each worker
    monkeypatch.setattr(reuse, "LEAST", 1)
    monkeypatch.setattr(parallel, "FORK_FOR", range(1, 10**9) if early else range(0))
    started: list[str] = []  # how each worker process started

    def context(grown: bool = False):
        found = processes.context(grown)
        started.append(found.get_start_method())
        return found

    monkeypatch.setattr(parallel, "context", context)
    shutil.rmtree(corpus_site.output)
    result = runner("build")
    assert result.exit_code == 0, result.output
    assert sent and sent[0] > 10
    assert exported(corpus_site) == alone
    # Forked before the parse (from the forkserver where this process has other threads
    # running, as a test process may), or spawned for the render.
    assert len(started) == 2 and ("spawn" not in started) == early, started
    assert any(p.endswith(".html") for p in alone) == pages

    # What the workers kept is what the next build finds: nothing to write again.
    again = runner("build")
    assert again.exit_code == 0, again.output
    assert " 0 files written" in again.output


def documents(*holding: range) -> list[SimpleNamespace]:
    """Documents (as far as the lanes look at them) holding the articles numbered in each range."""
    articles = [object() for _ in range(max(r.stop for r in holding))]
    return [SimpleNamespace(items=tuple(articles[n] for n in r)) for r in holding]


def work(lane: list) -> int:
    return len({id(a) for doc in lane for a in doc.items}) + 2 * len(lane)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_lanes_share_the_work_not_the_items(count):
    # Archive pages of three feeds over the same 50 articles (150 items, 50 entries to
    # make), then the newest pages of 60 small feeds of one article each (60 items, 60
    # entries): cut by items, the last lane took most of the work (204 of 280, in two).
    docs = documents(
        *[range(k * 10, k * 10 + 10) for k in range(5)] * 3,
        *[range(50 + k, 51 + k) for k in range(60)],
    )
    lanes = parallel._lanes(docs, count)

    assert [doc for lane in lanes for doc in lane] == docs  # every one once, in order
    assert len(lanes) == count
    shares = [work(lane) for lane in lanes]
    assert max(shares) <= 1.15 * sum(shares) / count, shares


def test_fewer_documents_than_cores_make_fewer_lanes():
    docs = documents(range(0, 3), range(3, 5))
    assert parallel._lanes(docs, 4) == [[docs[0]], [docs[1]]]
    assert parallel._lanes([], 4) == []
