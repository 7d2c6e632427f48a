"""WebSub publish notifications: tell a hub which feed URLs changed, off the caller's thread.

WebSub (https://www.w3.org/TR/websub/) leaves the publisher → hub ping to the hub; this
sends the de-facto form that pubsubhubbub hubs accept: ``hub.mode=publish`` with each
changed topic URL as a repeated ``hub.url`` parameter.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from time import sleep
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

BATCH_SIZE = 50  # URLs per request: keeps each request small enough for any hub
MAX_RETRY_AFTER = 60.0  # seconds; a hub asking for longer is not waited for that long
_USER_AGENT = "feeds (WebSub publisher)"
RETRIED = frozenset({429, *range(500, 600)})  # answers that may pass later


class _Outcome(Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the hub refused this request: sending it again would not help
    UNREACHABLE = "unreachable"  # still failing after every attempt


def publish(
    hub: str,
    urls: Iterable[str],
    *,
    attempts: int = 3,
    backoff: float = 1.0,
    timeout: float = 10.0,
) -> bool:
    """Tell ``hub`` that ``urls`` changed; True if the hub accepted every one of them.

    The URLs are sorted, de-duplicated and sent in batches of ``BATCH_SIZE``. Each request
    is tried up to ``attempts`` times in all: network errors, 5xx and 429 are retried after
    ``backoff`` seconds, then twice that, and so on, or after the hub's numeric Retry-After
    (at most ``MAX_RETRY_AFTER``). Any other answer that is not 2xx fails the batch at once;
    redirects are not followed. ``timeout`` is per socket operation, not per request.
    Network problems are logged, never raised; a hub that is not http(s) is a ValueError.
    """
    _check(hub, attempts, backoff, timeout)
    if isinstance(urls, str):  # a str is an iterable of one-letter "URLs"
        raise TypeError("urls must be a collection of URLs, not one str")
    unique = sorted(set(urls))
    ok = True
    with _pool(hub) as pool:
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start : start + BATCH_SIZE]
            outcome = _send(pool, hub, batch, attempts, backoff, timeout)
            if outcome is _Outcome.UNREACHABLE:
                # The next batches would wait through the same failures: they are not sent.
                skipped = len(unique) - start - len(batch)
                if skipped:
                    log.error("WebSub hub %s: %d more URLs not sent", hub, skipped)
                return False
            ok = ok and outcome is _Outcome.ACCEPTED
    return ok


class Notifier:
    """Publishes to one hub from one background daemon thread, so callers never wait.

    URLs passed to :meth:`notify` while a notification is in flight are queued together
    and go out in the next one. A notification that fails after its retries is logged and
    dropped: the next change to those feeds notifies the hub again.
    """

    def __init__(self, hub: str, *, attempts: int = 3, backoff: float = 1.0, timeout: float = 10.0):
        _check(hub, attempts, backoff, timeout)  # here, not later in the worker thread
        self.hub = hub
        self._publish = functools.partial(
            publish, hub, attempts=attempts, backoff=backoff, timeout=timeout
        )
        self._pending: set[str] = set()  # the queue: a set, so repeated URLs coalesce
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="websub-notifier", daemon=True)
        self._thread.start()

    def notify(self, urls: Iterable[str]) -> None:
        """Queue ``urls`` for the hub and return at once; RuntimeError after :meth:`close`."""
        if isinstance(urls, str):
            raise TypeError("urls must be a collection of URLs, not one str")
        urls = set(urls)
        with self._cond:
            if self._closed:
                raise RuntimeError("notify() after close()")
            if urls:
                self._pending |= urls
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued URL was sent (or given up on); False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Accept no more URLs; the worker sends what is queued, then ends.

        Waits up to ``timeout`` seconds for that; the thread is a daemon, so one still
        busy does not keep the process alive."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                urls, self._pending = self._pending, set()
                self._busy = True
            try:
                self._publish(urls)
            except Exception:
                # A bug, not the hub: keep the traceback, and the worker for the next change.
                log.exception("WebSub notification to %s failed", self.hub)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class _Retry(Retry):
    """urllib3's retries, waiting as :func:`publish` says: ``backoff`` before the first
    retry too (urllib3 waits none), and a Retry-After capped at MAX_RETRY_AFTER (urllib3
    waits as long as any hub asks) with the backoff for one it cannot read."""

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        last = self.history[-1]
        retry_after = _retry_after(response.headers.get("Retry-After")) if response else None
        if retry_after is None:
            delay = self.backoff_factor * 2 ** (len(self.history) - 1)
        else:
            delay = retry_after
        log.warning("WebSub hub: %s; retrying in %.3g s", last.error or last.status, delay)
        sleep(delay)


def _pool(hub: str) -> urllib3.PoolManager:
    """Connections to the hub, through the proxy the environment names for it, as urllib
    would go (urllib3 alone ignores proxy variables)."""
    parts = urlsplit(hub)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy)
    return urllib3.PoolManager()


def _check(hub: str, attempts: int, backoff: float, timeout: float) -> None:
    parts = urlsplit(hub)
    # Checked here, once, with a clear message: a hub is only ever http(s).
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"WebSub hub must be an absolute http(s) URL, got {hub!r}")
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")
    if backoff < 0 or timeout <= 0:
        raise ValueError(f"need backoff >= 0 and timeout > 0, got {backoff!r}, {timeout!r}")


def _send(
    pool: urllib3.PoolManager,
    hub: str,
    urls: list[str],
    attempts: int,
    backoff: float,
    timeout: float,
) -> _Outcome:
    """POST one batch, retrying what may pass later."""
    retries = _Retry(
        total=attempts - 1,
        redirect=False,  # a POST is never replayed elsewhere: the 3xx is a rejection
        status_forcelist=RETRIED,
        allowed_methods=None,  # POST too: telling a hub twice does no harm
        backoff_factor=backoff,
        raise_on_status=False,  # the last 5xx or 429 is answered, not raised
    )
    try:
        response = pool.request(
            "POST",
            hub,
            body=urlencode([("hub.mode", "publish"), *(("hub.url", url) for url in urls)]),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": _USER_AGENT,
            },
            retries=retries,
            redirect=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
    except MaxRetryError as e:
        problem = str(e.reason or e)
    else:
        if 200 <= response.status < 300:
            log.info("WebSub hub %s accepted %d URLs", hub, len(urls))
            return _Outcome.ACCEPTED
        if response.status not in RETRIED:
            location = response.headers.get("Location")
            log.error(
                "WebSub hub %s rejected %d URLs: %d %s%s",
                hub,
                len(urls),
                response.status,
                response.reason,
                f" to {location}" if location else "",
            )
            return _Outcome.REJECTED
        problem = f"{response.status} {response.reason}"
    log.error(
        "WebSub hub %s: %s; giving up after attempt %d of %d", hub, problem, attempts, attempts
    )
    return _Outcome.UNREACHABLE


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After asks for, as a number or an HTTP date (RFC 9110 10.2.3), at
    most MAX_RETRY_AFTER; None for none or one that is neither (the backoff applies)."""
    try:
        seconds = float(value or "")
    except ValueError:
        try:
            when = parsedate_to_datetime(value or "")
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
            when = when.replace(tzinfo=UTC)
        seconds = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    if not 0 <= seconds < float("inf"):  # also refuses NaN
        return None
    return min(seconds, MAX_RETRY_AFTER)
