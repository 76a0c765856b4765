"""`/-/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand:
the format is a few lines per metric, and a client library's process-global registry would
be the one global state this codebase avoids."""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web

from bodega.proxy.eviction import Eviction
from bodega.proxy.files import FileCache
from bodega.proxy.policy import Policies
from bodega.proxy.telemetry import KINDS, CacheOutcome, Histogram, IndexTelemetry, Telemetry
from bodega.web.routing import Match

if TYPE_CHECKING:  # worker_metrics merges with this module's merge_expositions
    from bodega.web.worker_metrics import WorkerMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]
# The gauges that state one fact of the shared cache: every worker of --workers sees it, so
# merged expositions take the largest value, not the sum.
SHARED_GAUGES = frozenset(
    {
        "bodega_cache_size_bytes",
        "bodega_cache_files",
        "bodega_cache_max_size_bytes",
        "bodega_policy_exemptions",
    }
)


class Metrics:
    """The telemetry recorder's counters, and the cache's gauges."""

    def __init__(
        self, telemetry: Telemetry, eviction: Eviction, files: FileCache, policies: Policies
    ) -> None:
        self._telemetry = telemetry
        self._eviction = eviction
        self._files = files
        self._policies = policies
        self._workers: WorkerMetrics | None = None

    def share(self, workers: "WorkerMetrics", app: web.Application) -> None:
        """One of --workers: its numbers are written for the others, and theirs added to
        every scrape's (web/worker_metrics.py), while the app runs."""
        self._workers = workers

        async def start(app: web.Application) -> None:
            workers.start(lambda: "".join(self._render()))

        async def stop(app: web.Application) -> None:
            await workers.close()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)

    async def metrics(self, request: web.Request, match: Match) -> web.Response:
        await self._policies.exemptions()  # the exemptions gauge as of now, not the last page
        text = "".join(self._render())
        if self._workers is not None:
            text = await self._workers.with_others(text)
        headers = {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
        return web.Response(body=text.encode(), headers=headers)

    def _render(self) -> Iterator[str]:
        yield from render_telemetry(self._telemetry)
        yield from render_policy(self._telemetry)
        yield from _family(
            "bodega_policy_exemptions",
            "gauge",
            "Break-glass exemptions in force (bodega allow), by index.",
            self._policies.active_exemptions(),
        )
        eviction = self._eviction
        yield from _family(
            "bodega_downloads_in_flight",
            "gauge",
            "Files being downloaded from upstream now.",
            [({}, self._files.in_flight)],
        )
        yield from _family(
            "bodega_cache_size_bytes",
            "gauge",
            "Bytes of files in the cache.",
            [({}, eviction.size_bytes)],
        )
        yield from _family(
            "bodega_cache_files", "gauge", "Files in the cache.", [({}, eviction.blob_count)]
        )
        yield from _family(
            "bodega_cache_max_size_bytes",
            "gauge",
            "The cache's size limit (--max-cache-size); 0: none.",
            [({}, eviction.max_bytes)],
        )


def render_policy(telemetry: Telemetry) -> Iterator[str]:
    """Supply-chain policy's counters (issue 15), by index and rule or change."""
    indexes = telemetry.indexes
    yield from _family(
        "bodega_policy_hidden_files_total",
        "counter",
        "Files left off the project pages served (each page answer counts its hidden files),"
        " by index and rule.",
        _by_label(indexes, lambda view: view.policy_hidden, "rule"),
    )
    yield from _family(
        "bodega_policy_blocked_total",
        "counter",
        "File URLs answered 404 because the index's policy hides the file, by index and rule.",
        _by_label(indexes, lambda view: view.policy_blocked, "rule"),
    )
    yield from _family(
        "bodega_policy_files_without_upload_time_total",
        "counter",
        "Files shown on pages although min_release_age cannot judge them (upstream gives no"
        " upload time; files_without_upload_time = pass), by index.",
        (({"index": view.name}, view.policy_without_upload_time) for view in indexes),
    )
    yield from _family(
        "bodega_policy_upstream_changes_total",
        "counter",
        "Files yanked or removed and projects quarantined upstream, seen on revalidation.",
        _by_label(indexes, lambda view: view.policy_upstream_changes, "change"),
    )
    yield from _family(
        "bodega_policy_removed_files_total",
        "counter",
        "Requests for a file upstream removed: served from the cache or refused"
        " (serve_removed), by index.",
        _by_label(indexes, lambda view: view.policy_removed_files, "outcome"),
    )


def _by_label(
    indexes: Iterable[IndexTelemetry],
    counter: Callable[[IndexTelemetry], Counter[str]],
    label: str,
) -> Iterator[Sample]:
    for view in indexes:
        for value, count in sorted(counter(view).items()):
            yield {"index": view.name, label: value}, count


def render_telemetry(telemetry: Telemetry) -> Iterator[str]:
    """The recorder's counters: per-index series carry `index="<user>/<index>"`; requests
    by route and evictions are the server's own."""
    indexes = telemetry.indexes
    yield from _family(
        "bodega_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
        (({"route": r, "status": str(s)}, n) for (r, s), n in sorted(telemetry.requests.items())),
    )
    yield from _family(
        "bodega_cache_requests_total",
        "counter",
        "Page and file requests by index, kind (page, file) and outcome (hit, miss, stale,"
        " revalidated); the hit ratio is the share whose outcome is not miss.",
        (
            (
                {"index": view.name, "kind": kind, "outcome": outcome.lower()},
                view.outcomes[kind, outcome],
            )
            for view in indexes
            for kind in KINDS
            for outcome in CacheOutcome
        ),
    )
    yield from _family(
        "bodega_cache_served_bytes_total",
        "counter",
        "File bytes of cache hits sent to clients, by index.",
        (({"index": view.name}, view.bytes_from_cache) for view in indexes),
    )
    yield from _family(
        "bodega_upstream_fetched_bytes_total",
        "counter",
        "Bytes received from upstream, by index and kind.",
        (
            ({"index": view.name, "kind": kind}, view.bytes_from_upstream[kind])
            for view in indexes
            for kind in KINDS
        ),
    )
    yield from _family(
        "bodega_upstream_errors_total",
        "counter",
        "Upstream requests that failed (errors, timeouts, bad bytes), by index and kind.",
        (
            ({"index": view.name, "kind": kind}, view.upstream_errors[kind])
            for view in indexes
            for kind in KINDS
        ),
    )
    yield from _family(
        "bodega_integrity_failures_total",
        "counter",
        "Downloads whose bytes did not match the hash or size the index declares (each is"
        " fetched once more; none is ever served as complete), by index.",
        (({"index": view.name}, view.integrity_failures) for view in indexes),
    )
    yield from _histograms(
        "bodega_upstream_request_duration_seconds",
        "Time until upstream answered a request (headers), by index and kind.",
        # Every series from the start, zeros included (an offline bodega never asks
        # upstream): a dashboard's rate() and a missing series are different answers.
        (
            ({"index": view.name, "kind": kind}, view.upstream_latency[kind])
            for view in indexes
            for kind in KINDS
        ),
    )
    yield from _family(
        "bodega_cache_evicted_files_total",
        "counter",
        "Files evicted to keep the cache under its size limit.",
        [({}, telemetry.evicted_blobs)],
    )
    yield from _family(
        "bodega_cache_evicted_bytes_total",
        "counter",
        "Bytes evicted to keep the cache under its size limit.",
        [({}, telemetry.evicted_bytes)],
    )


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
    for labels, value in samples:
        yield f"{name}{_labels(labels)} {_number(value)}\n"


def _histograms(
    name: str, help_text: str, series: Iterable[tuple[dict[str, str], Histogram]]
) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} histogram\n"
    for labels, histogram in series:
        for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
            yield f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} {count}\n"
        yield f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {histogram.count}\n"
        yield f"{name}_sum{_labels(labels)} {_number(histogram.total)}\n"
        yield f"{name}_count{_labels(labels)} {histogram.count}\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    # Label values are bodega's own words (routes, kinds, index names), but escape as the
    # format says.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def merge_expositions(texts: Iterable[str]) -> str:
    """Prometheus text expositions as one: every sample's value summed over the texts (the
    largest, for SHARED_GAUGES), families in the first text's order, a series that only a
    later text has added to its family."""
    families: dict[str, list[str]] = {}  # name -> its HELP and TYPE lines
    samples: dict[str, dict[str, float]] = {}  # family name -> series -> value
    for text in texts:
        family = ""
        for line in text.splitlines():
            if line.startswith("# HELP "):
                family = line.split(" ", 3)[2]
                families.setdefault(family, [])
                samples.setdefault(family, {})
            if line.startswith("#"):
                if line not in families[family]:
                    families[family].append(line)
                continue
            series, _, raw = line.rpartition(" ")
            if not series or not family:
                continue
            value = float(raw)
            seen = samples[family]
            if series not in seen:
                seen[series] = value
            elif family in SHARED_GAUGES:
                seen[series] = max(seen[series], value)
            else:
                seen[series] += value
    lines: list[str] = []
    for family, header in families.items():
        lines.extend(header)
        lines.extend(f"{series} {_number(value)}" for series, value in samples[family].items())
    return "\n".join(lines) + "\n"
