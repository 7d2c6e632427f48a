"""A bounded cache that request threads share: the server's memory for hot answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from contextlib import suppress
from typing import Generic, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class Lru(Generic[V]):
    """The values used last, up to ``limit`` in total ``size`` (1 each by default); the
    least recently used go first. Safe to share between threads."""

    def __init__(self, limit: int, size: Callable[[V], int] | None = None):
        self._cache: LRUCache[Hashable, V] = LRUCache(limit, getsizeof=size)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: V) -> V:
        """Keep ``value`` (unless it alone is over the limit); returns it."""
        with self._lock, suppress(ValueError):  # too large to keep: the caller still has it
            self._cache[key] = value
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value of ``key``, made by ``make`` if missing. ``make`` runs outside the
        lock, so a slow one never holds up other requests (two threads may both make the
        same value; either result is the same)."""
        value = self.get(key)
        return self.put(key, make()) if value is None else value

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def size(self) -> int:
        """The total size of the values kept."""
        return int(self._cache.currsize)
