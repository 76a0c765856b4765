"""`/-/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand:
the format is a few lines per metric, and a client library's process-global registry would
be the one global state this codebase avoids."""

from collections.abc import Iterable, Iterator

from aiohttp import web

from bodega.proxy.stats import KINDS, CacheOutcome, Histogram
from bodega.services import Services
from bodega.web.routing import Match

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


async def metrics(request: web.Request, services: Services, match: Match) -> web.Response:
    text = "".join(render(services))
    headers = {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
    return web.Response(body=text.encode(), headers=headers)


def render(services: Services) -> Iterator[str]:
    stats, eviction = services.stats, services.eviction
    yield from _family(
        "bodega_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
        (({"route": r, "status": str(s)}, n) for (r, s), n in sorted(stats.requests.items())),
    )
    yield from _family(
        "bodega_cache_requests_total",
        "counter",
        "Cache lookups by kind (page, file) and outcome (hit, miss, stale, revalidated).",
        (
            ({"kind": kind, "outcome": outcome.lower()}, stats.outcomes[kind, outcome])
            for kind in KINDS
            for outcome in CacheOutcome
        ),
    )
    yield from _family(
        "bodega_cache_served_bytes_total",
        "counter",
        "File bytes served from the cache.",
        [({}, stats.bytes_from_cache)],
    )
    yield from _family(
        "bodega_upstream_fetched_bytes_total",
        "counter",
        "Bytes received from upstream, by kind.",
        (({"kind": kind}, stats.bytes_from_upstream[kind]) for kind in KINDS),
    )
    yield from _family(
        "bodega_upstream_errors_total",
        "counter",
        "Upstream requests that failed (errors, timeouts, bad bytes), by kind.",
        (({"kind": kind}, stats.upstream_errors[kind]) for kind in KINDS),
    )
    yield from _family(
        "bodega_integrity_failures_total",
        "counter",
        "Downloads whose bytes did not match the hash or size the index declares (each is"
        " fetched once more; none is ever served as complete).",
        [({}, stats.integrity_failures)],
    )
    yield from _histograms(
        "bodega_upstream_request_duration_seconds",
        "Time until upstream answered a request (headers), by kind.",
        # Every series from the start, zeros included (an offline bodega never asks
        # upstream): a dashboard's rate() and a missing series are different answers.
        ((kind, stats.upstream_latency.get(kind, Histogram())) for kind in KINDS),
    )
    yield from _family(
        "bodega_downloads_in_flight",
        "gauge",
        "Files being downloaded from upstream now.",
        [({}, services.files.in_flight)],
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
    yield from _family(
        "bodega_cache_evicted_files_total",
        "counter",
        "Files evicted to keep the cache under its size limit.",
        [({}, stats.evicted_blobs)],
    )
    yield from _family(
        "bodega_cache_evicted_bytes_total",
        "counter",
        "Bytes evicted to keep the cache under its size limit.",
        [({}, stats.evicted_bytes)],
    )


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
    for labels, value in samples:
        yield f"{name}{_labels(labels)} {_number(value)}\n"


def _histograms(
    name: str, help_text: str, by_kind: Iterable[tuple[str, Histogram]]
) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} histogram\n"
    for kind, histogram in by_kind:
        for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
            yield f"{name}_bucket{_labels({'kind': kind, 'le': _number(bound)})} {count}\n"
        yield f"{name}_bucket{_labels({'kind': kind, 'le': '+Inf'})} {histogram.count}\n"
        yield f"{name}_sum{_labels({'kind': kind})} {_number(histogram.total)}\n"
        yield f"{name}_count{_labels({'kind': kind})} {histogram.count}\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    # Label values are bodega's own words (routes, kinds), but escape as the format says.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
