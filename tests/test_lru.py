"""The server's bounded cache: what it keeps, what it lets go, and threads sharing it."""

from __future__ import annotations

import random
import sys
import threading

from feeds.lru import Lru


def test_the_least_recently_used_go_first():
    cache: Lru[str] = Lru(3)
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") == "A"  # now used more recently than b and c

    cache.put("d", "D")

    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == ["A", "C", "D"]
    assert len(cache) == 3


def test_sizes_are_counted_and_a_value_over_the_limit_is_not_kept():
    cache: Lru[bytes] = Lru(10, len)
    cache.put("a", b"12345")
    cache.put("b", b"1234")
    cache.put("a", b"123")  # replaced: its old size no longer counts
    assert cache.size == 7

    too_large = b"x" * 11
    assert cache.put("c", too_large) is too_large  # the caller still gets it
    assert cache.get("c") is None and cache.size == 7

    cache.put("d", b"123456")  # a and b together would be 13: b, used least lately, goes
    assert cache.get("b") is None and cache.size == 9


def test_get_or_make_makes_only_what_is_missing():
    cache: Lru[int] = Lru(2)
    made: list[str] = []

    def make(key: str) -> int:
        made.append(key)
        return len(made)

    assert cache.get_or_make("a", lambda: make("a")) == 1
    assert cache.get_or_make("a", lambda: make("a")) == 1
    assert made == ["a"]


def test_threads_reading_and_evicting_at_once_never_fail_and_stay_in_bounds():
    cache: Lru[bytes] = Lru(1000, len)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(5000):
                key = ("/feed", rng.randrange(40))
                value = cache.get(key)
                if value is None:
                    cache.put(key, bytes(rng.randrange(1, 200)))
                else:
                    assert len(value) > 0
        except BaseException as e:
            errors.append(e)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)

    assert errors == []
    assert 0 < cache.size <= 1000
    kept = [value for n in range(40) if (value := cache.get(("/feed", n))) is not None]
    assert cache.size == sum(map(len, kept)) and len(kept) == len(cache)
