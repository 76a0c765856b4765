"""What bodega has done since it started, in one recorder: `/-/metrics` and the web UI's
cache page (and `/+status.json`) are two views of the same counters.

The recorder (`Telemetry`) keeps what belongs to the whole server: requests by route and
status, evictions, recent downloads. Each index's parts write to that index's view
(`telemetry.index("root/pypi")`), which keeps what belongs to one upstream: cache outcomes,
bytes, upstream latency, errors and health.

The definitions, one of each:

- A cache outcome is counted once per client request for a project page or a file (core
  metadata included), in the words of nginx's `$upstream_cache_status`: HIT (from the
  cache, upstream not asked), MISS (the body came from upstream: the request started a
  download or joined one under way), STALE (upstream failed, the cached copy was served),
  REVALIDATED (upstream confirmed the cached copy with a 304). bodega's own work (metadata
  extraction, search details) is no request and has no outcome.
- The hit ratio is the share of those requests whose body came from the cache: (HIT +
  STALE + REVALIDATED) / all, pages and files together; None before the first request.
  From `/-/metrics`: `sum(bodega_cache_requests_total{outcome!="miss"}) /
  sum(bodega_cache_requests_total)`.
- Bytes from the cache are the body bytes of HIT file responses; bytes from upstream are
  every byte received from upstream, by kind (failed and retried downloads included).
- A download is one transfer of a file from upstream into the cache, however many clients
  share it; a failed download is one that ended without the file in the cache.
- An upstream error is a request to upstream that failed (no answer, a timeout, an error
  status, bytes that do not match the index); a 404 is an answer. Upstream health is "ok"
  or "failing" by the last contact, "unknown" before the first.

Everything runs on the event loop, so plain integers need no lock. Nothing here does I/O.
"""

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from bodega.errors import IntegrityError, NotFound, UpstreamError


class CacheOutcome(StrEnum):
    """How one request was answered, in the words of nginx's `$upstream_cache_status`."""

    HIT = "HIT"  # from the cache, upstream not asked
    MISS = "MISS"  # the body came from upstream (nothing cached, or upstream had a newer page)
    STALE = "STALE"  # upstream failed; the cached copy was served anyway (stale-if-error)
    REVALIDATED = "REVALIDATED"  # upstream confirmed the cached copy (304)


# The `kind` labels: project pages, or distribution files and their core metadata.
KINDS = ("file", "page")

# Seconds; upstream answers range from a few ms (a nearby mirror) to the 60 s page deadline.
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

RECENT_FETCHES = 50


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


@dataclass(frozen=True, slots=True)
class Fetch:
    """One download from upstream into the cache."""

    index: str
    url: str
    bytes: int
    seconds: float
    finished_at: float  # epoch seconds
    error: str | None  # None: verified and cached


@dataclass(frozen=True, slots=True)
class Summary:
    """One index's numbers, or every index's together, as people read them."""

    hits: int  # requests whose body came from the cache (HIT, STALE, REVALIDATED)
    misses: int  # requests whose body came from upstream
    hit_ratio: float | None
    requests: dict[str, dict[str, int]]  # kind -> outcome (lower case) -> requests
    bytes_from_cache: int  # file bytes
    bytes_fetched: int  # file bytes from upstream: beside bytes_from_cache, the byte hit ratio
    page_bytes_fetched: int
    downloads: int
    fetch_errors: int  # downloads that failed
    upstream_health: str  # "ok", "failing" or "unknown"
    upstream_ok_at: float | None
    upstream_failed_at: float | None
    upstream_error: str | None


def hit_ratio(outcomes: Mapping[tuple[str, CacheOutcome], int]) -> float | None:
    """The share of requests answered with the cache's body; None before the first."""
    total = sum(outcomes.values())
    if total == 0:
        return None
    return (total - _misses(outcomes)) / total


class IndexTelemetry:
    """One index's counters: what its project pages and file cache record."""

    def __init__(self, name: str, recent: deque[Fetch], clock: Callable[[], float]) -> None:
        self.name = name
        self._recent = recent  # the recorder's, shared by every index
        self._clock = clock
        self.outcomes: Counter[tuple[str, CacheOutcome]] = Counter()  # (kind, outcome)
        self.bytes_from_cache = 0
        self.bytes_from_upstream: Counter[str] = Counter()  # by kind
        self.upstream_latency: dict[str, Histogram] = {kind: Histogram() for kind in KINDS}
        self.upstream_errors: Counter[str] = Counter()  # by kind
        self.integrity_failures = 0  # downloads whose bytes did not match the hash or size
        self.downloads = 0
        self.fetch_errors = 0
        self.upstream_ok_at: float | None = None
        self.upstream_failed_at: float | None = None
        self.upstream_error: str | None = None
        # Supply-chain policy (issue 15), each by its rule (core.policy's names) or change.
        self.policy_hidden: Counter[str] = Counter()  # files left off pages served
        self.policy_blocked: Counter[str] = Counter()  # file URLs refused
        self.policy_without_upload_time = 0  # files shown on pages whose age is unknown
        self.policy_upstream_changes: Counter[str] = Counter()  # yanked, removed, quarantined
        self.policy_removed_files: Counter[str] = Counter()  # served, refused

    def count_outcome(self, kind: str, outcome: CacheOutcome) -> None:
        """One client request for a page or file, and how it was answered."""
        self.outcomes[kind, outcome] += 1

    def served_from_cache(self, size: int) -> None:
        """Body bytes of a HIT sent to a client."""
        self.bytes_from_cache += size

    def received(self, kind: str, size: int) -> None:
        """Bytes that came from upstream."""
        self.bytes_from_upstream[kind] += size

    def upstream_answered(self, kind: str, seconds: float) -> None:
        """Upstream answered a request (its headers) after `seconds`."""
        self.upstream_latency[kind].observe(seconds)
        self.upstream_ok_at = self._clock()

    def upstream_failed(self, kind: str, error: Exception) -> None:
        """A request to upstream ended in `error`: counted if upstream is to blame."""
        if isinstance(error, UpstreamError | IntegrityError):
            self.upstream_errors[kind] += 1
        if isinstance(error, UpstreamError):
            self.upstream_failed_at = self._clock()
            self.upstream_error = str(error)

    @contextmanager
    def upstream_call(self, kind: str) -> Iterator[None]:
        """Times the block as one request to upstream: answered, or failed when an
        UpstreamError or IntegrityError comes out of it (a NotFound is upstream's answer)."""
        started = time.monotonic()
        try:
            yield
        except (UpstreamError, IntegrityError) as error:
            self.upstream_latency[kind].observe(time.monotonic() - started)
            self.upstream_failed(kind, error)
            raise
        except NotFound:
            self.upstream_answered(kind, time.monotonic() - started)
            raise
        self.upstream_answered(kind, time.monotonic() - started)

    def integrity_failure(self) -> None:
        self.integrity_failures += 1

    def download_started(self) -> None:
        self.downloads += 1

    def download_finished(self, url: str, size: int, seconds: float, error: str | None) -> None:
        if error is not None:
            self.fetch_errors += 1
        self._recent.appendleft(Fetch(self.name, url, size, seconds, self._clock(), error))

    @property
    def upstream_health(self) -> str:
        """ "ok", "failing" (the last contact failed) or "unknown" (no contact yet)."""
        ok, failed = self.upstream_ok_at, self.upstream_failed_at
        if ok is None and failed is None:
            return "unknown"
        if failed is not None and (ok is None or failed >= ok):
            return "failing"
        return "ok"

    def summary(self) -> Summary:
        return _summarize([self])


class Telemetry:
    """The recorder: the server's own counters, and one view per index."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started_at = clock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.evicted_blobs = 0
        self.evicted_bytes = 0
        self.recent: deque[Fetch] = deque(maxlen=RECENT_FETCHES)
        self._indexes: dict[str, IndexTelemetry] = {}

    def index(self, name: str) -> IndexTelemetry:
        """The view of index `name` (`<user>/<index>`), made on first use."""
        view = self._indexes.get(name)
        if view is None:
            view = self._indexes[name] = IndexTelemetry(name, self.recent, self._clock)
        return view

    @property
    def indexes(self) -> list[IndexTelemetry]:
        """Every index's view, by name."""
        return [self._indexes[name] for name in sorted(self._indexes)]

    def count_request(self, route: str, status: int) -> None:
        self.requests[route, status] += 1

    def evicted(self, size: int) -> None:
        self.evicted_blobs += 1
        self.evicted_bytes += size

    def totals(self) -> Summary:
        """Every index's numbers together."""
        return _summarize(self.indexes)


def _misses(outcomes: Mapping[tuple[str, CacheOutcome], int]) -> int:
    return sum(n for (_, outcome), n in outcomes.items() if outcome is CacheOutcome.MISS)


def _summarize(views: Sequence[IndexTelemetry]) -> Summary:
    outcomes: Counter[tuple[str, CacheOutcome]] = Counter()
    for view in views:
        outcomes.update(view.outcomes)
    ratio = hit_ratio(outcomes)
    misses = _misses(outcomes)
    ok_at = max((v.upstream_ok_at for v in views if v.upstream_ok_at is not None), default=None)
    # One failing upstream makes the whole "failing", named by its latest failure.
    failing = [v for v in views if v.upstream_health == "failing"]
    failed = [v for v in views if v.upstream_failed_at is not None]
    last_failure = max(failing or failed, key=lambda v: v.upstream_failed_at or 0.0, default=None)
    health = "failing" if failing else "ok" if ok_at is not None else "unknown"
    return Summary(
        hits=sum(outcomes.values()) - misses,
        misses=misses,
        hit_ratio=ratio,
        requests={
            kind: {outcome.lower(): outcomes[kind, outcome] for outcome in CacheOutcome}
            for kind in KINDS
        },
        bytes_from_cache=sum(v.bytes_from_cache for v in views),
        bytes_fetched=sum(v.bytes_from_upstream["file"] for v in views),
        page_bytes_fetched=sum(v.bytes_from_upstream["page"] for v in views),
        downloads=sum(v.downloads for v in views),
        fetch_errors=sum(v.fetch_errors for v in views),
        upstream_health=health,
        upstream_ok_at=ok_at,
        upstream_failed_at=None if last_failure is None else last_failure.upstream_failed_at,
        upstream_error=None if last_failure is None else last_failure.upstream_error,
    )
