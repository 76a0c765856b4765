"""What the cache has done since this server started: requests, cache outcomes, bytes, and
upstream latency and errors. Plain counters in memory, owned by the services; the metrics
endpoint and the web UI read them, the use cases and the web edge add to them.

Everything runs on the event loop, so plain integers need no lock.
"""

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from bodega.errors import IntegrityError, UpstreamError


class CacheOutcome(StrEnum):
    """How one request was answered, in the words of nginx's `$upstream_cache_status`."""

    HIT = "HIT"  # from the cache, upstream not asked
    MISS = "MISS"  # the body came from upstream (nothing cached, or upstream had a newer page)
    STALE = "STALE"  # upstream failed; the cached copy was served anyway (stale-if-error)
    REVALIDATED = "REVALIDATED"  # upstream confirmed the cached copy (304)


# Seconds; upstream answers range from a few ms (a nearby mirror) to the 60 s page deadline.
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(slots=True)
class Histogram:
    """Observations counted into cumulative buckets, as Prometheus histograms are."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.count += 1


# The `kind` labels: project pages and the root list, or distribution files and metadata.
KINDS = ("file", "page")


@dataclass(slots=True)
class Stats:
    """Counters since start. `kind` labels are "page" (project pages, the root list) or
    "file" (distribution files and their core metadata)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (route, status)
    outcomes: Counter[tuple[str, CacheOutcome]] = field(default_factory=Counter)  # (kind, ...)
    bytes_from_cache: int = 0  # file bytes answered from verified blobs
    bytes_from_upstream: Counter[str] = field(default_factory=Counter)  # by kind
    upstream_latency: dict[str, Histogram] = field(default_factory=dict)  # by kind
    upstream_errors: Counter[str] = field(default_factory=Counter)  # by kind
    integrity_failures: int = 0  # downloads whose bytes did not match the index's hash or size
    evicted_blobs: int = 0
    evicted_bytes: int = 0

    def count_request(self, route: str, status: int) -> None:
        self.requests[route, status] += 1

    def count_outcome(self, kind: str, outcome: CacheOutcome) -> None:
        self.outcomes[kind, outcome] += 1

    def observe_upstream(self, kind: str, seconds: float, *, failed: bool) -> None:
        """One upstream request: time until its answer (headers) or its failure."""
        self.upstream_latency.setdefault(kind, Histogram()).observe(seconds)
        if failed:
            self.upstream_errors[kind] += 1

    @contextmanager
    def upstream_call(self, kind: str) -> Iterator[None]:
        """Times the block as one upstream request; an UpstreamError or IntegrityError out of
        it counts as an upstream error (a 404 is an answer, not an error)."""
        started = time.monotonic()
        failed = False
        try:
            yield
        except (UpstreamError, IntegrityError):
            failed = True
            raise
        finally:
            self.observe_upstream(kind, time.monotonic() - started, failed=failed)

    def hit_ratio(self) -> float | None:
        """Share of cache lookups answered without upstream sending a body (HIT, STALE and
        REVALIDATED count as hits); None before the first lookup."""
        total = sum(self.outcomes.values())
        if total == 0:
            return None
        misses = sum(n for (_, outcome), n in self.outcomes.items() if outcome is CacheOutcome.MISS)
        return (total - misses) / total
