"""PEP 700 (versions, size, upload-time), PEP 740 (provenance) and PEP 792 (project status)
pass through bodega (spec items 17, 18, 20, 21, 22, 44)."""

import httpx

from tests.conftest import StartBodega
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import DEFAULT_UPLOAD_TIME, FakeIndex

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "application/vnd.pypi.simple.v1+html"}
WHEEL = build_wheel("demo", "1.0")
SDIST = build_sdist("demo", "1.1")
PROVENANCE = "https://index.example/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance"


async def test_versions_size_and_upstreams_upload_time_are_in_json_at_api_1_1(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", WHEEL)
    fake_index.add("demo", SDIST, upload_time="2025-05-06T07:08:09.123456Z")
    bodega = await start_bodega()
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert page["meta"]["api-version"] == "1.1"
    assert page["versions"] == ["1.0", "1.1"]
    files = {f["filename"]: f for f in page["files"]}
    assert files[WHEEL.filename]["size"] == WHEEL.size
    assert files[WHEEL.filename]["upload-time"] == DEFAULT_UPLOAD_TIME
    assert files[SDIST.filename]["upload-time"] == "2025-05-06T07:08:09.123456Z"
    assert all(isinstance(f["hashes"], dict) for f in page["files"])
    assert all("dist-info-metadata" not in f for f in page["files"])


async def test_provenance_urls_pass_through_in_json_and_html(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", WHEEL, provenance=PROVENANCE)
    bodega = await start_bodega()
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert page["meta"]["api-version"] == "1.3"
    assert page["files"][0]["provenance"] == PROVENANCE
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert f'data-provenance="{PROVENANCE}"' in html
    assert '<meta name="pypi:repository-version" content="1.3">' in html


async def test_project_status_and_reason_pass_through(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", WHEEL)
    fake_index.set_status("demo", "archived", "no longer maintained")
    bodega = await start_bodega()
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert page["meta"]["api-version"] == "1.4"
    assert page["project-status"] == {"status": "archived", "reason": "no longer maintained"}
    assert len(page["files"]) == 1
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert '<meta name="pypi:project-status" content="archived">' in html
    assert '<meta name="pypi:project-status-reason" content="no longer maintained">' in html


async def test_a_quarantined_project_lists_and_serves_no_files_even_when_cached(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", WHEEL)
    bodega = await start_bodega(index_ttl=0)
    wheel_url = f"{bodega}files/demo/{WHEEL.filename}"
    assert (await client.get(wheel_url)).content == WHEEL.data  # now cached

    fake_index.set_status("demo", "quarantined")
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert page["project-status"] == {"status": "quarantined"}
    assert page["files"] == []
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert "<a " not in html
    assert (await client.get(wheel_url)).status_code == 404
    assert (await client.get(wheel_url + ".metadata")).status_code == 404


async def test_the_last_serial_header_passes_through(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", WHEEL)
    bodega = await start_bodega()
    response = await client.get(f"{bodega}simple/demo/", headers=JSON)
    upstream = [r for r in fake_index.requests if r.path == "/simple/demo/"]
    assert upstream
    assert int(response.headers["X-PyPI-Last-Serial"]) > 0
    assert response.json()["meta"]["_last-serial"] == int(response.headers["X-PyPI-Last-Serial"])


async def test_uploads_are_refused_never_forwarded(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    for path in ("legacy/", "simple/"):
        response = await client.post(bodega + path, content=b"x")
        assert response.status_code == 405
    assert not [r for r in fake_index.requests if r.method == "POST"]
