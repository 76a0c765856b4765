"""What the cache has been doing, for people: hits, bytes, recent fetches, upstream health.

Plain counters in memory, written by the use cases and the file handler, read by the status
page and JSON (and by anything else that reports on bodega). Nothing here does I/O.
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

RECENT_FETCHES = 50


@dataclass(frozen=True, slots=True)
class Fetch:
    """One download from upstream into the cache."""

    url: str
    bytes: int
    seconds: float
    finished_at: float  # epoch seconds
    error: str | None  # None: verified and cached


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started_at = clock()
        self.hits = 0  # files served from the cache
        self.misses = 0  # files that had to come from upstream
        self.bytes_from_cache = 0
        self.bytes_fetched = 0  # bytes read from upstream into the cache
        self.fetch_errors = 0
        self.recent: deque[Fetch] = deque(maxlen=RECENT_FETCHES)
        self.upstream_ok_at: float | None = None
        self.upstream_failed_at: float | None = None
        self.upstream_error: str | None = None

    def served_from_cache(self, size: int) -> None:
        self.hits += 1
        self.bytes_from_cache += size

    def fetch_started(self) -> None:
        self.misses += 1

    def fetch_finished(self, url: str, size: int, seconds: float, error: str | None) -> None:
        self.bytes_fetched += size
        if error is not None:
            self.fetch_errors += 1
        self.recent.appendleft(Fetch(url, size, seconds, self._clock(), error))

    def upstream_answered(self) -> None:
        self.upstream_ok_at = self._clock()

    def upstream_failed(self, error: str) -> None:
        self.upstream_failed_at = self._clock()
        self.upstream_error = error

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total

    @property
    def upstream_health(self) -> str:
        """ "ok", "failing" (the last contact failed) or "unknown" (no contact yet)."""
        ok, failed = self.upstream_ok_at, self.upstream_failed_at
        if ok is None and failed is None:
            return "unknown"
        if failed is not None and (ok is None or failed >= ok):
            return "failing"
        return "ok"
