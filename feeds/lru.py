"""A bounded cache that request threads share: the server's memory for hot answers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


def _one(value: object) -> int:
    return 1


class Lru(Generic[V]):
    """The values used last, up to ``limit`` in total ``size`` (1 each by default); the
    least recently used go first. Safe to share between threads.

    A look-up takes no lock, since it runs on every request the server answers: it is two
    operations of an OrderedDict, each of them atomic in CPython (the keys are strings and
    tuples, whose hashing and comparison run no Python code). Only :meth:`put`, which
    evicts, takes the lock."""

    def __init__(self, limit: int, size: Callable[[V], int] = _one):
        self.limit = limit
        self._size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()  # least recently used first
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        value = self._values.get(key)
        if value is not None:
            try:  # noqa: SIM105 - contextlib.suppress takes 7 times as long
                self._values.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread: still the value asked for
                pass
        return value

    def put(self, key: Hashable, value: V) -> V:
        """Keep ``value`` (unless it alone is over the limit); returns it."""
        size = self._size(value)
        if size > self.limit:
            return value  # too large to keep: the caller still has it
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self._total -= self._size(old)
            self._values[key] = value
            self._total += size
            while self._total > self.limit:
                self._total -= self._size(self._values.popitem(last=False)[1])
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value of ``key``, made by ``make`` if missing. ``make`` runs outside the
        lock, so a slow one never holds up other requests (two threads may both make the
        same value; either result is the same)."""
        value = self.get(key)
        return self.put(key, make()) if value is None else value

    def __len__(self) -> int:
        return len(self._values)

    @property
    def size(self) -> int:
        """The total size of the values kept."""
        return self._total
