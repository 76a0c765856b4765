"""Health, readiness, metrics, and the cache outcome of every request (header and log line)."""

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartBodega, needs_file_blobs
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

WHEEL = build_wheel("demo", "1.0", payload_size=50_000)
JSON = "application/vnd.pypi.simple.v1+json"
MIRROR = "root/pypi"  # the one index until the [indexes] table configures more


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", WHEEL)
    return fake_index


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by Prometheus' own client library."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(
    client: httpx.AsyncClient, bodega: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get(f"{bodega}-/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


# ------------------------------------------------------------------------------ offline


async def test_offline_metrics_show_the_upstream_series_with_zeros(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega(offline=True)
    scraped = await scrape(client, bodega)
    for kind in ("file", "page"):
        labels = frozenset({("index", MIRROR), ("kind", kind)})
        assert scraped[("bodega_upstream_fetched_bytes_total", labels)] == 0
        assert scraped[("bodega_upstream_errors_total", labels)] == 0
        assert scraped[("bodega_upstream_request_duration_seconds_count", labels)] == 0
        assert scraped[("bodega_upstream_request_duration_seconds_sum", labels)] == 0
        hit = frozenset({("index", MIRROR), ("kind", kind), ("outcome", "hit")})
        assert scraped[("bodega_cache_requests_total", hit)] == 0


# ------------------------------------------------------------------------------ health, ready


async def test_health_answers_ok(start_bodega: StartBodega, client: httpx.AsyncClient) -> None:
    bodega = await start_bodega()
    response = await client.get(f"{bodega}-/health")
    assert response.status_code == 200
    assert response.text == "ok\n"


@needs_file_blobs
async def test_ready_when_the_store_is_writable_and_upstream_answers(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    response = await client.get(f"{bodega}-/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "store": "ok", "upstream": "ok"}


async def test_not_ready_while_upstream_is_unreachable(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    index.set_down(True)
    bodega = await start_bodega()
    response = await client.get(f"{bodega}-/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["store"] == "ok"
    assert "unreachable" in body["upstream"]
    health = await client.get(f"{bodega}-/health")
    assert health.status_code == 200  # alive all the same: nothing to restart


@needs_file_blobs
async def test_ready_offline_without_upstream(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    index.set_down(True)
    bodega = await start_bodega(offline=True)
    response = await client.get(f"{bodega}-/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "store": "ok", "upstream": "offline"}


# ------------------------------------------------------------------------------ cache outcomes


async def test_every_answer_says_how_the_cache_answered(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega(index_ttl=600)
    page = f"{bodega}simple/demo/"
    file = f"{bodega}files/demo/{WHEEL.filename}"
    outcomes = [
        (await client.get(page)).headers["X-Bodega-Cache"],
        (await client.get(page)).headers["X-Bodega-Cache"],
        (await client.get(page, headers={"Cache-Control": "no-cache"})).headers["X-Bodega-Cache"],
        (await client.get(file)).headers["X-Bodega-Cache"],
        (await client.get(file)).headers["X-Bodega-Cache"],
    ]
    index.fail_with(503)
    stale = await client.get(page, headers={"Cache-Control": "no-cache"})
    outcomes.append(stale.headers["X-Bodega-Cache"])
    assert outcomes == ["MISS", "HIT", "REVALIDATED", "MISS", "HIT", "STALE"]


async def test_the_access_log_line_ends_with_the_cache_outcome(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    bodega = await start_bodega()
    await client.get(f"{bodega}simple/demo/")
    await client.get(f"{bodega}simple/demo/")
    await client.get(f"{bodega}-/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3
    assert '"GET /simple/demo/ HTTP/1.1" 200' in lines[0]
    assert lines[0].endswith(" MISS")
    assert lines[1].endswith(" HIT")
    assert lines[2].endswith(" -")  # no cache lookup


async def test_the_access_log_counts_the_body_bytes_sendfile_sent(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17: a file sent by sendfile (streamed while downloading, or from the cache,
    whole or a range) was logged with its headers' size only."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    bodega = await start_bodega()
    file = f"{bodega}files/demo/{WHEEL.filename}"
    streamed = await client.get(file)
    cached = await client.get(file)
    ranged = await client.get(file, headers={"Range": "bytes=100-20099"})

    async def file_lines() -> list[str]:  # a line is written once the response has ended
        records = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
        return [line for line in records if "/files/" in line]

    lines = await eventually(file_lines, lambda found: len(found) == 3)
    logged = [int(line.split('" 20')[1].split()[1]) for line in lines]
    bodies = [len(streamed.content), len(cached.content), len(ranged.content)]
    assert bodies == [WHEEL.size, WHEEL.size, 20_000]
    assert all(body < count < body + 1024 for body, count in zip(bodies, logged, strict=True))


# ------------------------------------------------------------------------------ metrics


async def test_metrics_count_requests_outcomes_and_bytes(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    file = f"{bodega}files/demo/{WHEEL.filename}"
    await client.get(f"{bodega}simple/demo/", headers={"Accept": JSON})
    await client.get(f"{bodega}simple/demo/")
    assert (await client.get(file)).content == WHEEL.data
    assert (await client.get(file)).content == WHEEL.data
    await client.get(f"{bodega}simple/nothing-here/")

    scraped = await scrape(client, bodega)
    size = len(WHEEL.data)
    assert value(scraped, "bodega_requests_total", route="project", status="200") == 2
    assert value(scraped, "bodega_requests_total", route="project", status="404") == 1
    assert value(scraped, "bodega_requests_total", route="file", status="200") == 2
    assert (
        value(scraped, "bodega_cache_requests_total", index=MIRROR, kind="page", outcome="miss")
        == 1
    )
    assert (
        value(scraped, "bodega_cache_requests_total", index=MIRROR, kind="page", outcome="hit") == 1
    )
    assert (
        value(scraped, "bodega_cache_requests_total", index=MIRROR, kind="file", outcome="miss")
        == 1
    )
    assert (
        value(scraped, "bodega_cache_requests_total", index=MIRROR, kind="file", outcome="hit") == 1
    )
    assert value(scraped, "bodega_cache_served_bytes_total", index=MIRROR) == size
    assert value(scraped, "bodega_upstream_fetched_bytes_total", index=MIRROR, kind="file") == size
    assert value(scraped, "bodega_upstream_fetched_bytes_total", index=MIRROR, kind="page") > 0
    assert (
        value(scraped, "bodega_upstream_request_duration_seconds_count", index=MIRROR, kind="page")
        == 2
    )
    assert (
        value(scraped, "bodega_upstream_request_duration_seconds_count", index=MIRROR, kind="file")
        == 1
    )
    assert value(scraped, "bodega_upstream_errors_total", index=MIRROR, kind="page") == 0
    assert value(scraped, "bodega_downloads_in_flight") == 0
    assert value(scraped, "bodega_cache_size_bytes") == size
    assert value(scraped, "bodega_cache_files") == 1


async def test_metrics_count_upstream_errors_and_stale_serves(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega(index_ttl=0)
    await client.get(f"{bodega}simple/demo/")
    index.fail_with(500)
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200
    scraped = await scrape(client, bodega)
    assert value(scraped, "bodega_upstream_errors_total", index=MIRROR, kind="page") == 1
    assert (
        value(scraped, "bodega_cache_requests_total", index=MIRROR, kind="page", outcome="stale")
        == 1
    )


async def test_metrics_and_status_json_report_one_hit_ratio(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Issue 12: the UI's numbers and /-/metrics are two views of one recorder, with one
    definition of a miss (per request, not per download)."""
    bodega = await start_bodega(index_ttl=0)
    file = f"{bodega}files/demo/{WHEEL.filename}"
    await client.get(f"{bodega}simple/demo/")  # page: miss
    await client.get(f"{bodega}simple/demo/")  # page: revalidated (index_ttl=0)
    assert (await client.get(file)).status_code == 200  # file: miss
    assert (await client.get(file)).status_code == 200  # file: hit
    await client.get(file, headers={"Range": "bytes=0-9"})  # file: hit

    scraped = await scrape(client, bodega)
    by_outcome = {
        (kind, outcome): value(
            scraped, "bodega_cache_requests_total", index=MIRROR, kind=kind, outcome=outcome
        )
        for kind in ("page", "file")
        for outcome in ("hit", "miss", "stale", "revalidated")
    }
    assert sum(by_outcome.values()) == 5
    misses = by_outcome["page", "miss"] + by_outcome["file", "miss"]
    assert misses == 2
    # The ratio as the README tells a dashboard to compute it.
    from_metrics = (sum(by_outcome.values()) - misses) / sum(by_outcome.values())

    status = (await client.get(f"{bodega}+status.json")).json()
    assert status["hit_ratio"] == pytest.approx(from_metrics) == pytest.approx(3 / 5)
    assert (status["hits"], status["misses"]) == (3, 2)
    assert status["requests"]["page"]["revalidated"] == 1
    assert status["indexes"][MIRROR]["hit_ratio"] == status["hit_ratio"]
    assert status["bytes_from_cache"] == WHEEL.size + 10
    assert value(scraped, "bodega_cache_served_bytes_total", index=MIRROR) == WHEEL.size + 10
    page = (await client.get(f"{bodega}+cache")).text
    assert '<dd id="hit-ratio">60.0% (3 hits, 2 misses)</dd>' in page
    assert f"<tr><td>{MIRROR}</td><td>60.0%</td>" in page


async def test_metrics_show_a_download_in_flight(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    index.stall(WHEEL.filename, after_bytes=1000)
    bodega = await start_bodega()
    async with client.stream("GET", f"{bodega}files/demo/{WHEEL.filename}") as response:
        assert response.status_code == 200
        scraped = await scrape(client, bodega)
        assert value(scraped, "bodega_downloads_in_flight") == 1
        index.reset_faults()  # the stalled download ends; its response is dropped
