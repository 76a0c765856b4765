"""Section D scenarios 44 and 45 for the parts that exist: the web UI and XML-RPC search.

Scenario 44 (hostile XML-RPC: billion laughs, external entities, a 50 MB body, deep nesting,
unknown methods, non-XML, a Content-Type lie) is covered in tests/integration/test_xmlrpc.py;
these tests add what scenario 45 asks of the UI.
"""

import time

import httpx

from bodega.proxy.catalog import VERSIONS_PER_PAGE
from tests.conftest import StartBodega
from tests.hardening.hostile import hostile_upstream

VERSIONS = 10_000


async def test_scenario_45_a_project_with_10k_versions_is_paginated_in_bounded_time(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    async with hostile_upstream() as upstream:
        files = [
            {
                "filename": f"many-1.{minor}.tar.gz",
                "url": f"{upstream.url}files/many-1.{minor}.tar.gz",
                "hashes": {"sha256": f"{minor:064x}"},
                "size": 100,
            }
            for minor in range(VERSIONS)
        ]
        upstream.json_page("many", files)
        bodega = await start_bodega(upstream=upstream.simple_url)
        started = time.monotonic()
        response = await client.get(f"{bodega}+project/many")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    pages = -(-VERSIONS // VERSIONS_PER_PAGE)
    assert f"page 1 of {pages}" in response.text
    assert response.text.count(".tar.gz</") <= VERSIONS_PER_PAGE
    assert elapsed < 20  # generous: one upstream fetch, one parse, one page of rows


async def test_scenario_45_the_ui_changes_no_state_so_no_form_needs_a_csrf_token(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Every UI form is a GET search; a POST to a UI page changes nothing and is refused."""
    async with hostile_upstream() as upstream:
        bodega = await start_bodega(upstream=upstream.simple_url)
        for path in ("", "+search", "+cache", "+project/demo"):
            page = await client.get(bodega + path)
            assert 'method="post"' not in page.text.lower()
            assert "Content-Security-Policy" in page.headers
            posted = await client.post(bodega + path, data={"x": "1"})
            assert posted.status_code in (404, 405)
