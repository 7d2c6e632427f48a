"""A word index over a snapshot's feeds, so that ``?q=`` costs time in proportion to the
articles that hold its words, not to the size of the feed.

``q`` keeps its meaning (:class:`feeds.filters.ItemFilter`): every word must occur,
anywhere, in the casefolded ``title excerpt``. A query word holds no whitespace, so each
occurrence lies inside one whitespace-separated token of that text: the index maps tokens
to the articles holding them, and finds the tokens holding a word by searching the text of
all tokens at once. It only narrows the articles to check; each is still checked by the
filter itself, so the answer is the filter's own.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from heapq import merge

from feeds.filters import ItemFilter, searchable
from feeds.model import Article, Feed

SEPARATOR = "\n"  # between tokens in the text searched: whitespace, so never in a word


def _newest_first(article: Article) -> tuple:
    # The order of every feed's items (feeds.select): the index numbers articles in it.
    return (-article.published.timestamp(), article.id, article.source)


class WordIndex:
    """Which articles of some feeds hold a word. Built once per snapshot, then read-only
    (any number of threads may search it).

    Memory is a few arrays of 4-byte numbers (one per distinct token of each article, one
    per feed item) and the text of the distinct tokens, once."""

    def __init__(self, feeds: Iterable[Feed]):
        feeds = tuple(feeds)
        # Articles by source file (one article per file), numbered newest first.
        unique: dict[str, Article] = {}
        plain = set()  # feeds searched by the plain scan (none of those select makes)
        for feed in feeds:
            for a in feed.items:
                first = unique.setdefault(a.source, a)
                if first is not a and first != a:  # the same object: the same article
                    plain.add(feed.spec.path)
        self._articles = sorted(unique.values(), key=_newest_first)
        number = {a.source: i for i, a in enumerate(self._articles)}
        # Each feed's items as article numbers: ascending, as both are newest first.
        self._members: dict[str, array] = {}
        for feed in feeds:
            members = array("I", (number[a.source] for a in feed.items))
            ordered = all(a < b for a, b in zip(members, members[1:], strict=False))
            if ordered and feed.spec.path not in plain:
                self._members[feed.spec.path] = members
        holders: dict[str, array] = {}
        for i, article in enumerate(self._articles):
            for token in set(searchable(article).split()):
                found = holders.get(token)
                if found is None:
                    holders[token] = array("I", (i,))
                else:
                    found.append(i)
        self._tokens = SEPARATOR.join(holders) + SEPARATOR  # the text words are found in
        self._starts = array("I")  # where each token starts in that text
        self._offsets = array("I", (0,))  # token t's holders: _holders[offsets[t]:offsets[t+1]]
        self._holders = array("I")
        at = 0
        for token, found in holders.items():
            self._starts.append(at)
            at += len(token) + 1
            self._holders.extend(found)
            self._offsets.append(len(self._holders))

    def apply(self, item_filter: ItemFilter, feed: Feed, default_limit: int) -> tuple[Article, ...]:
        """Exactly ``item_filter.apply(feed.items, default_limit)``, found through the index."""
        members = self._members.get(feed.spec.path)
        if not item_filter.words or members is None or len(members) != len(feed.items):
            return item_filter.apply(feed.items, default_limit)
        # The rarest word narrows most; the filter checks the others on the few left.
        tokens = min((self._holding(word) for word in item_filter.words), key=self._count)
        if self._count(tokens) >= len(members):
            return item_filter.apply(feed.items, default_limit)  # as cheap as the index here
        return item_filter.apply(self._in_feed(tokens, members), default_limit)

    def _holding(self, word: str) -> list[int]:
        """The tokens ``word`` occurs in, each once."""
        tokens = []
        text, starts = self._tokens, self._starts
        at = text.find(word)
        while at >= 0:
            token = bisect_right(starts, at) - 1
            tokens.append(token)
            if token + 1 == len(starts):
                break
            at = text.find(word, starts[token + 1])  # on from the next token
        return tokens

    def _count(self, tokens: list[int]) -> int:
        """How many (article, token) pairs hold one of ``tokens``: an article's work."""
        offsets = self._offsets
        return sum(offsets[t + 1] - offsets[t] for t in tokens)

    def _in_feed(self, tokens: list[int], members: array) -> Iterator[Article]:
        """The feed's articles holding any of ``tokens``, in the feed's order: lazily, so
        a filter that has its fill early stops early."""
        offsets, holders = self._offsets, self._holders
        holding = [holders[offsets[t] : offsets[t + 1]] for t in tokens]  # each ascending
        last = -1
        for number in merge(*holding):
            if number == last:
                continue  # an article holding two of the tokens
            last = number
            at = bisect_left(members, number)
            if at < len(members) and members[at] == number:
                yield self._articles[number]
