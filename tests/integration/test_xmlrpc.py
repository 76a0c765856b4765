"""XML-RPC search over HTTP against the real bodega: results, ranking, and a 200 fault for
everything it cannot answer (threat 44)."""

import xmlrpc.client
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

PROJECTS = ("requests", "requests-oauthlib", "django-requests", "grequests", "flask")
T = TypeVar("T")
SEARCH = xmlrpc.client.dumps(({"name": ["requests"], "summary": ["requests"]}, "or"), "search")


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    for name in PROJECTS:
        fake_index.add(name, build_wheel(name, "1.0", summary=f"The {name} project"))
    fake_index.add("flask", build_wheel("flask", "2.0", summary="Web apps, with requests"))
    return fake_index


async def wait_for_names(client: httpx.AsyncClient, url: str, count: int) -> None:
    async def names() -> int:
        return int((await client.get(f"{url}+status.json")).json()["search"]["names"])

    await eventually(names, lambda found: found >= count)


@pytest.fixture
async def bodega(index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient) -> str:
    url = await start_bodega(search_refresh=3600)
    await wait_for_names(client, url, len(PROJECTS))
    return url


async def call(client: httpx.AsyncClient, url: str, body: bytes | str, **kw: Any) -> Any:
    response = await client.post(url, content=body, headers={"Content-Type": "text/xml"}, **kw)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    return xmlrpc.client.loads(response.content)[0][0]


async def test_search_ranks_exact_then_words_then_inside_then_summary(
    bodega: str, client: httpx.AsyncClient
) -> None:
    hits = await call(client, f"{bodega}pypi", SEARCH)
    # No summary is known yet (flask's "with requests" would come last).
    names = [h["name"] for h in hits]
    assert names == ["requests", "django-requests", "requests-oauthlib", "grequests"]
    assert all(h["version"] == "0+unknown" and h["summary"] == "" for h in hits)


async def test_summary_and_version_come_from_pages_and_core_metadata(
    index: FakeIndex, bodega: str, client: httpx.AsyncClient
) -> None:
    wheel = build_wheel("flask", "2.0", summary="Web apps, with requests")
    await client.get(f"{bodega}simple/flask/")
    await client.get(f"{bodega}files/flask/{wheel.filename}.metadata")
    hits = await eventually(
        lambda: call(client, f"{bodega}RPC2", SEARCH), lambda h: h[-1]["summary"]
    )
    assert hits[-1] == {"name": "flask", "version": "2.0", "summary": "Web apps, with requests"}


@pytest.mark.parametrize("path", ["pypi", "pypi/", "RPC2", "root/pypi", "root/pypi/"])
async def test_every_search_path_answers(bodega: str, client: httpx.AsyncClient, path: str) -> None:
    assert (await call(client, f"{bodega}{path}", SEARCH))[0]["name"] == "requests"


async def test_and_needs_every_criterion(bodega: str, client: httpx.AsyncClient) -> None:
    body = xmlrpc.client.dumps(({"name": ["requests", "oauthlib"]}, "and"), "search")
    assert [h["name"] for h in await call(client, f"{bodega}pypi", body)] == ["requests-oauthlib"]


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    "<methodCall><methodName>&c;</methodName></methodCall>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<methodCall><methodName>search</methodName><params><param><value>&e;</value></param>"
    "</params></methodCall>"
)
DEEP = (
    "<methodCall><methodName>search</methodName><params><param>"
    + ("<value><array><data>" * 3000)
    + "</params></methodCall>"
)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(BILLION_LAUGHS, -32700, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, -32700, id="external-entity"),
        pytest.param(DEEP, -32700, id="deep-nesting"),
        pytest.param("{'not': 'xml'}", -32700, id="not-xml"),
        pytest.param("", -32700, id="empty"),
        pytest.param(xmlrpc.client.dumps((), "list_packages"), -32601, id="unknown-method"),
        pytest.param(xmlrpc.client.dumps(({"author": ["x"]},), "search"), -32602, id="field"),
        pytest.param(xmlrpc.client.dumps(({"name": ["x"]}, "xor"), "search"), -32602, id="op"),
        pytest.param(xmlrpc.client.dumps((1,), "search"), -32602, id="params"),
        pytest.param("x" * (64 * 1024 + 1), -32600, id="over-64KiB"),
    ],
)
async def test_bad_calls_get_a_fault_with_status_200(
    bodega: str, client: httpx.AsyncClient, body: str, code: int
) -> None:
    with pytest.raises(xmlrpc.client.Fault) as fault:
        await call(client, f"{bodega}pypi", body)
    assert fault.value.faultCode == code


async def test_a_huge_chunked_body_is_cut_off_at_the_cap(
    bodega: str, client: httpx.AsyncClient
) -> None:
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(50 * 16):
            sent += 64 * 1024
            yield b"<" * (64 * 1024)

    try:
        response = await client.post(f"{bodega}pypi", content=fifty_megabytes())
    except httpx.HTTPError:
        pass  # bodega may hang up on the rest of the body once it has answered
    else:
        assert response.status_code == 200
        with pytest.raises(xmlrpc.client.Fault):
            xmlrpc.client.loads(response.content)
    assert sent < 50 * 1024 * 1024


async def test_a_content_type_lie_is_still_parsed_safely(
    bodega: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        f"{bodega}pypi", content=SEARCH, headers={"Content-Type": "application/json"}
    )
    hits: Any = xmlrpc.client.loads(response.content)[0][0]
    assert hits[0]["name"] == "requests"


async def test_get_on_the_search_path_is_405(bodega: str, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{bodega}pypi")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
