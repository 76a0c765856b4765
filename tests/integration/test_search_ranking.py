"""Search over a big root list the tests serve (issue 16): what people mean is found first,
results fill in behind the answer, and search works from the first minute."""

import xmlrpc.client
from typing import Any

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

# Names that sort before the ones people mean, in numbers that pushed those past the old
# first-500-in-key-order candidates: httpcore was 97th for "http", zope.interface 83rd.
CROWD = [
    *(f"http-client-{i:02}" for i in range(20)),
    *(f"httpa{i:04}" for i in range(600)),
    *(f"yamlfile{i:04}" for i in range(600)),
    *(f"zope.app.component{i:04}" for i in range(600)),
    *(f"requests-{i:02}-helper" for i in range(50)),
    *(f"requestsa{i:04}" for i in range(600)),
]
MEANT = [
    "httpx",
    "httpcore",
    "aiohttp",
    "PyYAML",
    "zope.interface",
    "requests",
    "requests-oauthlib",
    "requestsH",
    "requestsaa",
]


def search_call(term: str) -> str:
    return xmlrpc.client.dumps(({"name": [term], "summary": [term]}, "or"), "search")


async def search(client: httpx.AsyncClient, url: str, term: str) -> list[dict[str, Any]]:
    response = await client.post(f"{url}pypi", content=search_call(term))
    assert response.status_code == 200
    hits: Any = xmlrpc.client.loads(response.content)[0][0]
    return list(hits)


def names(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["name"] for hit in hits]


async def names_synced(client: httpx.AsyncClient, url: str, count: int) -> None:
    async def synced() -> int:
        return int((await client.get(f"{url}+status.json")).json()["search"]["names"])

    await eventually(synced, lambda found: found >= count)


@pytest.fixture
def big_index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.list_names(CROWD + MEANT)
    return fake_index


@pytest.fixture
async def bodega(big_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient) -> str:
    url = await start_bodega(search_refresh=3600)
    await names_synced(client, url, len(CROWD) + len(MEANT))
    return url


async def test_http_finds_httpx_and_httpcore_first(bodega: str, client: httpx.AsyncClient) -> None:
    hits = names(await search(client, bodega, "http"))
    # "http" as a word of the name, then inside it, shortest first.
    assert hits[:20] == [f"http-client-{i:02}" for i in range(20)]
    assert hits[20:23] == ["httpx", "aiohttp", "httpcore"]
    assert len(hits) == 100


async def test_yaml_finds_pyyaml(bodega: str, client: httpx.AsyncClient) -> None:
    assert "PyYAML" in names(await search(client, bodega, "yaml"))


async def test_zope_puts_zope_interface_first(bodega: str, client: httpx.AsyncClient) -> None:
    assert names(await search(client, bodega, "zope"))[0] == "zope.interface"


async def test_requests_lists_name_words_before_names_that_merely_contain_it(
    bodega: str, client: httpx.AsyncClient
) -> None:
    hits = names(await search(client, bodega, "requests"))
    assert hits[:2] == ["requests", "requests-oauthlib"]
    assert hits.index("requests-oauthlib") < hits.index("requestsH") < hits.index("requestsaa")


async def test_projects_this_bodega_served_rank_first_in_their_tier(
    big_index: FakeIndex, bodega: str, client: httpx.AsyncClient
) -> None:
    wheel = build_wheel("httpcore", "1.0")
    big_index.add("httpcore", wheel)
    await client.get(f"{bodega}simple/httpcore/")
    assert (await client.get(f"{bodega}files/httpcore/{wheel.filename}")).status_code == 200
    hits = await eventually(
        lambda: search(client, bodega, "http"), lambda found: found[20]["name"] == "httpcore"
    )
    assert names(hits)[20:23] == ["httpcore", "httpx", "aiohttp"]


async def test_versions_and_summaries_are_filled_in_behind_the_answer(
    big_index: FakeIndex, bodega: str, client: httpx.AsyncClient
) -> None:
    big_index.add("zope.interface", build_wheel("zope.interface", "7.2", summary="Interfaces"))
    first = await search(client, bodega, "zope")
    assert first[0] == {"name": "zope.interface", "version": "0+unknown", "summary": ""}
    hits = await eventually(
        lambda: search(client, bodega, "zope"), lambda found: found[0]["summary"] != ""
    )
    assert hits[0] == {"name": "zope.interface", "version": "7.2", "summary": "Interfaces"}
    # Only the top results were looked up, not all of a search's hundred.
    looked_up = [r.path for r in big_index.requests if r.path.startswith("/simple/zope-")]
    assert 0 < len(looked_up) <= 10


async def test_the_first_search_starts_the_names_sync(
    big_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    # Without the first search, names would sync an hour after start.
    url = await start_bodega(search_refresh=3600, search_first_refresh=3600)
    # Names land a chunk at a time, in key order: wait for the one this search is for.
    hits = await eventually(
        lambda: search(client, url, "zope"), lambda found: "zope.interface" in names(found)
    )
    assert hits[0]["name"] == "zope.interface"


async def test_until_names_sync_search_answers_from_known_projects_and_says_so(
    big_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    big_index.add("httpx", build_wheel("httpx", "0.28.1", summary="The next generation HTTP"))
    url = await start_bodega(search_refresh=3600, search_first_refresh=3600)
    await client.get(f"{url}simple/httpx/")
    big_index.fail_with(503)  # the root list cannot be fetched: no names sync yet
    hits = await eventually(lambda: search(client, url, "http"), lambda found: len(found) > 0)
    assert names(hits) == ["httpx"]
    page = await client.get(f"{url}+search", params={"q": "http"})
    assert "full list of project names is loading" in page.text
    assert "httpx" in page.text
