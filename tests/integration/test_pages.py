"""Project pages: kept with their validators, revalidated after the TTL, stale if upstream fails."""

import asyncio
import time

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.ports import free_port

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    return fake_index


def page_requests(index: FakeIndex) -> list[dict[str, str]]:
    return [dict(r.headers) for r in index.requests if r.path == "/simple/demo/"]


async def test_each_variant_has_its_own_etag_and_answers_304(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    for minor in range(20):  # a page large enough to be worth compressing
        index.add("demo", build_wheel("demo", f"1.{minor}"))
    url = f"{await start_bodega()}simple/demo/"
    as_json = await client.get(url, headers={"Accept": JSON, "Accept-Encoding": "identity"})
    as_html = await client.get(url, headers={"Accept": "text/html", "Accept-Encoding": "identity"})
    gzipped = await client.get(url, headers={"Accept": "text/html", "Accept-Encoding": "gzip"})
    etags = {r.headers["ETag"] for r in (as_json, as_html, gzipped)}
    assert len(etags) == 3
    for response in (as_json, as_html):
        again = await client.get(
            url,
            headers={
                "Accept": response.headers["Content-Type"].split(";")[0],
                "Accept-Encoding": "identity",
                "If-None-Match": response.headers["ETag"],
            },
        )
        assert again.status_code == 304
        assert again.headers["ETag"] in etags
        assert again.headers["Vary"].startswith("Accept")
        assert "max-age=" in again.headers["Cache-Control"]
    assert len(page_requests(index)) == 1


async def test_client_max_age_is_never_longer_than_what_is_left_of_the_ttl(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = f"{await start_bodega(index_ttl=120)}simple/demo/"
    response = await client.get(url)
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 120


async def test_a_stale_page_is_revalidated_with_a_conditional_get(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = f"{await start_bodega(index_ttl=0)}simple/demo/"
    first = await client.get(url, headers={"Accept": JSON})
    second = await client.get(url, headers={"Accept": JSON})
    assert first.content == second.content
    requests = page_requests(index)
    assert len(requests) == 2
    assert "If-None-Match" in requests[1] or "if-none-match" in {k.lower() for k in requests[1]}


async def test_within_the_ttl_upstream_is_not_asked_again(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = f"{await start_bodega(index_ttl=600)}simple/demo/"
    for _ in range(3):
        await client.get(url)
    assert len(page_requests(index)) == 1


@pytest.mark.parametrize(
    ("directive", "revalidate_after"),
    [("no-cache", 30), ("no-cache", 3600), ("max-age=0", 0), ("Pragma", 3600)],
)
async def test_a_refresh_request_sees_a_release_published_a_moment_ago(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    directive: str,
    revalidate_after: float,
) -> None:
    """What uv --refresh sends (no-cache), always; and pip --refresh-package (max-age=0)
    with --revalidate-after 0."""
    bodega = await start_bodega(index_ttl=600, revalidate_after=revalidate_after)
    url = f"{bodega}simple/demo/"
    await client.get(url, headers={"Accept": JSON})
    index.add("demo", build_wheel("demo", "2.0"))
    cached = await client.get(url, headers={"Accept": JSON})
    assert cached.json()["versions"] == ["1.0"]
    asked = {"Pragma": "no-cache"} if directive == "Pragma" else {"Cache-Control": directive}
    refreshed = await client.get(url, headers={"Accept": JSON, **asked})
    assert refreshed.json()["versions"] == ["1.0", "2.0"]


# (--revalidate-after, how long after the first request the second comes, its outcome):
# inside the window, a wait longer than the window, and 0 (every max-age=0 revalidates).
WINDOWS = [(3600, 0, "HIT"), (0.05, 0.1, "REVALIDATED"), (0, 0, "REVALIDATED")]


@pytest.mark.parametrize("window", WINDOWS)
async def test_max_age_0_revalidates_at_most_once_per_revalidate_after(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    window: tuple[float, float, str],
) -> None:
    """pip before 26.2 sends `Cache-Control: max-age=0` on every index request: within
    --revalidate-after of the last word from upstream it is a hit; 0 revalidates always."""
    revalidate_after, later, outcome = window
    bodega = await start_bodega(index_ttl=600, revalidate_after=revalidate_after)
    url = f"{bodega}simple/demo/"
    await client.get(url)
    await asyncio.sleep(later)  # only ever longer than a window it has to leave
    response = await client.get(url, headers={"Cache-Control": "max-age=0"})
    assert response.status_code == 200
    assert response.headers["X-Bodega-Cache"] == outcome
    assert len(page_requests(index)) == (1 if outcome == "HIT" else 2)


@pytest.mark.parametrize("fault", ["503", "down", "slow"])
async def test_the_cached_page_is_served_stale_when_upstream_fails(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, fault: str
) -> None:
    url = f"{await start_bodega(index_ttl=0, upstream_timeout=0.5)}simple/demo/"
    fresh = await client.get(url, headers={"Accept": JSON})
    assert "X-Bodega-Stale" not in fresh.headers
    if fault == "503":
        index.fail_with(503)
    elif fault == "down":
        index.set_down(True)
    else:
        index.delay_first_byte(5)
    started = time.monotonic()
    stale = await client.get(url, headers={"Accept": JSON})
    assert time.monotonic() - started < 3  # bounded by the timeout, not upstream's whim
    assert stale.status_code == 200
    assert stale.content == fresh.content
    assert stale.headers["X-Bodega-Stale"] == "1"
    assert stale.headers["Warning"].startswith("110")


@pytest.mark.parametrize(("fault", "status"), [("503", 502), ("down", 502), ("slow", 504)])
async def test_an_uncached_page_fails_fast_and_clearly_when_upstream_fails(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, fault: str, status: int
) -> None:
    url = f"{await start_bodega(upstream_timeout=0.5)}simple/demo/"
    if fault == "503":
        index.fail_with(503)
    elif fault == "down":
        index.set_down(True)
    else:
        index.delay_first_byte(5)
    started = time.monotonic()
    response = await client.get(url)
    assert response.status_code == status
    assert time.monotonic() - started < 3


async def test_error_pages_from_upstream_are_never_cached(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Threat 17."""
    url = f"{await start_bodega()}simple/demo/"
    index.fail_with(500)
    assert (await client.get(url)).status_code == 502
    index.reset_faults()
    response = await client.get(url, headers={"Accept": JSON})
    assert response.status_code == 200
    assert response.json()["versions"] == ["1.0"]


async def test_a_request_that_loops_back_to_bodega_is_refused(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Threat 24: an upstream that is bodega under another name (an IPv4-mapped IPv6
    address) slips past the start-up check; the Via marker turns the loop into one 508
    instead of a recursion."""
    port = free_port()
    bodega = await start_bodega(port=port, upstream=f"http://[::ffff:127.0.0.1]:{port}/simple/")
    response = await client.get(f"{bodega}simple/demo/")
    assert response.status_code == 508
