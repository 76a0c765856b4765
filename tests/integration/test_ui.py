"""The web UI and the status JSON against the real bodega: content, escaping of every
upstream string, security headers (threat 45)."""

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bodega.proxy.catalog import VERSIONS_PER_PAGE
from tests.conftest import StartBodega
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.hostile import DESCRIPTION, MARKUP, SUMMARY, YANKED, publish_hostile
from tests.support.waiting import eventually

PAGES = ("", "+search?q=evil", "+project/evil", "+cache")


@pytest.fixture
def newest(fake_index: FakeIndex) -> BuiltFile:
    return publish_hostile(fake_index)


async def warm(client: httpx.AsyncClient, url: str, newest: BuiltFile) -> None:
    """A client's install: the page, the core metadata, the file; then search knows it."""
    await client.get(f"{url}simple/evil/")
    assert (await client.get(f"{url}files/evil/{newest.filename}.metadata")).status_code == 200
    assert (await client.get(f"{url}files/evil/{newest.filename}")).status_code == 200
    for _ in range(600):
        page = await client.get(f"{url}+search?q=evil")
        if "alert" in page.text:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the summary never reached search")


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_escapes_upstream_strings_and_sends_a_strict_csp(
    newest: BuiltFile, start_bodega: StartBodega, client: httpx.AsyncClient, path: str
) -> None:
    url = await start_bodega()
    await warm(client, url, newest)
    response = await client.get(f"{url}{path}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no scripts at all: default-src 'none' covers them
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for markup in MARKUP:
        assert markup not in response.text


async def test_project_page_shows_files_cached_yanked_and_the_description_sanitized(
    newest: BuiltFile, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    await warm(client, url, newest)
    text = await eventually(  # the wheel's blob is recorded just after its last byte is sent
        page_text(client, f"{url}+project/evil"), lambda text: 'class="tag cached"' in text
    )
    assert "evil-1.0-py3-none-any.whl" in text
    assert newest.filename in text
    assert text.count('class="tag cached"') == 1  # only 2.0 was downloaded
    assert 'class="tag yanked"' in text
    assert "&lt;img src=x onerror=alert(&#34;yanked&#34;)&gt;" in text
    assert "&lt;script&gt;alert(&#34;summary&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in text
    assert '<div class="description">' in text  # rendered as Markdown, its markup removed
    assert '<time datetime="2026-01-02T03:04:05' in text  # upload time, for people:
    assert ">2 Jan 2026</time>" in text
    assert YANKED not in text
    assert SUMMARY not in text
    assert DESCRIPTION not in text


async def test_project_page_redirects_to_the_normalized_name_and_404s_unknown_ones(
    newest: BuiltFile, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    response = await client.get(f"{url}+project/EVIL")
    assert response.status_code == 301
    assert response.headers["Location"] == "/+project/evil"
    assert (await client.get(f"{url}+project/nothing-here")).status_code == 404
    assert (await client.get(f"{url}+project/%3Cscript%3E")).status_code == 400


async def test_a_404_for_a_person_is_a_page_with_a_search_box(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("+project/nothing-here", "no/such/%3Cscript%3E/page"):
        response = await client.get(f"{url}{path}", headers=browser)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert '<form class="search-again" action="/+search"' in response.text
        assert "<script" not in response.text
    # Installers and scripts still get the short text answer.
    assert (await client.get(f"{url}no/such/page")).text == "no such page: /no/such/page\n"
    installer = await client.get(f"{url}simple/nothing-here/", headers=browser)
    assert installer.status_code == 404
    assert installer.headers["Content-Type"].startswith("text/plain")


def page_text(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[str]]:
    async def text() -> str:
        return (await client.get(url)).text

    return text


def with_description(name: str, version: str, description: str, content_type: str) -> BuiltFile:
    wheel = build_wheel(name, version)
    metadata = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: s\n"
        f"Description-Content-Type: {content_type}\n\n{description}"
    ).encode()
    return BuiltFile(wheel.filename, wheel.data, metadata)


@pytest.mark.parametrize(
    "case",
    [
        ("text/markdown", "# Usage\n\nRun **fast**.\n", "<strong>fast</strong>"),
        ("text/x-rst", "Usage\n=====\n\nRun *fast*.\n", "<em>fast</em>"),
        ("text/markdown; variant=CommonMark", "![logo](https://x.example/l.png) hi", "hi</p>"),
    ],
)
async def test_descriptions_are_rendered_as_the_public_index_renders_them(
    fake_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    case: tuple[str, str, str],
) -> None:
    content_type, description, rendered = case
    wheel = with_description("doc", "1.0", description, content_type)
    fake_index.add("doc", wheel)
    url = await start_bodega()
    await client.get(f"{url}simple/doc/")
    assert (await client.get(f"{url}files/doc/{wheel.filename}.metadata")).status_code == 200
    text = await eventually(page_text(client, f"{url}+project/doc"), lambda t: rendered in t)
    assert "<img" not in text  # nothing loads from elsewhere


async def test_many_versions_are_paginated(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    for minor in range(VERSIONS_PER_PAGE * 2 + 5):
        fake_index.add("many", build_sdist("many", f"1.{minor}"))
    url = await start_bodega()
    first = (await client.get(f"{url}+project/many")).text
    assert "page 1 of 3" in first
    assert "many-1.44.tar.gz" in first
    assert "many-1.24.tar.gz" not in first
    last = (await client.get(f"{url}+project/many?page=3")).text
    assert "many-1.0.tar.gz" in last
    assert "many-1.44.tar.gz" not in last
    assert "page 1 of 3" in (await client.get(f"{url}+project/many?page=x9")).text
    assert "page 3 of 3" in (await client.get(f"{url}+project/many?page=99")).text


async def test_the_cached_count_covers_every_page_of_a_long_project(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    for minor in range(VERSIONS_PER_PAGE * 2 + 5):
        fake_index.add("many", build_sdist("many", f"1.{minor}"))
    url = await start_bodega()
    await client.get(f"{url}simple/many/")
    assert (await client.get(f"{url}files/many/many-1.0.tar.gz")).status_code == 200
    first = await eventually(  # 1.0 is on page 3; its blob is recorded just after it is sent
        page_text(client, f"{url}+project/many"), lambda text: "1 of these files" in text
    )
    assert "45 files; 1 of these files are cached" in first
    assert 'class="tag cached"' not in first


async def test_status_json_has_the_numbers_of_the_cache_page(
    newest: BuiltFile, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    await warm(client, url, newest)
    await client.get(f"{url}files/evil/{newest.filename}")  # a hit
    status = (await client.get(f"{url}+status.json")).json()
    assert status["files"] == 2  # the wheel and its metadata
    assert status["bytes"] == newest.size + len(newest.metadata or b"")
    # Per request: the page, the metadata and the file were misses, the file again a hit.
    assert (status["misses"], status["hits"], status["hit_ratio"]) == (3, 1, 0.25)
    assert status["downloads"] == 2
    assert status["indexes"]["root/pypi"]["misses"] == 3
    assert status["bytes_from_cache"] == newest.size
    assert status["bytes_fetched"] == status["bytes"]
    assert status["upstream_health"] == "ok"
    assert status["search"]["projects_with_details"] == 1
    # The page starts extracting the wheel's metadata behind its answer, so which of the two
    # fetches finishes first is a race; both are listed.
    assert sorted(f["url"].rpartition("/")[2] for f in status["recent_fetches"]) == [
        newest.filename,
        newest.filename + ".metadata",
    ]
    page = (await client.get(f"{url}+cache")).text
    assert '<dd id="files">2</dd>' in page
    assert '<dd id="hit-ratio">25.0% (1 hits, 3 misses)</dd>' in page
    assert "<tr><td>root/pypi</td><td>25.0%</td><td>1</td><td>3</td>" in page


async def test_cache_page_reports_upstream_failing(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    url = await start_bodega(index_ttl=0)
    await client.get(f"{url}simple/demo/")
    fake_index.fail_with(503)
    await client.get(f"{url}simple/demo/")  # served stale
    status = (await client.get(f"{url}+status.json")).json()
    assert status["upstream_health"] == "failing"
    assert "503" in status["upstream_error"]
    assert "failing" in (await client.get(f"{url}+cache")).text


async def test_home_page_sets_up_every_client_for_this_server(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    text = (await client.get(url)).text
    for client_name in ("pip", "uv", "Poetry", "PDM", "Pipenv", "pip search"):
        assert f"<h2>{client_name}" in text
    assert f"pip install --index-url {url}simple/ PACKAGE" in text
    assert f"pip search --index {url}pypi QUERY" in text


async def test_home_page_behind_a_tls_proxy_gives_https_urls(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    text = (await client.get(url, headers={"X-Forwarded-Proto": "https"})).text
    https = url.replace("http://", "https://", 1)
    assert f"pip install --index-url {https}simple/ PACKAGE" in text
    ignored = (await client.get(url, headers={"X-Forwarded-Proto": "javascript"})).text
    assert f"pip install --index-url {url}simple/ PACKAGE" in ignored


async def test_static_files_are_served_and_nothing_else(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    css = await client.get(f"{url}+static/bodega.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert (await client.get(f"{url}+static/..%2Fui.py")).status_code == 404
    assert (await client.get(f"{url}+static/missing.css")).status_code == 404
