"""The simple API as clients see it: negotiation, redirects, names, and what is kept."""

import json

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import FakeIndex

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture
def demo_index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add(
        "demo",
        build_wheel("demo", "1.0", requires_python=">=3.8,<4"),
        yanked='broken "build"',
        upload_time="2026-01-02T03:04:05.000000Z",
    )
    fake_index.add("demo", build_sdist("demo", "1.0"))
    fake_index.add("demo", build_wheel("demo", "2.0"))
    return fake_index


async def test_json_page_keeps_every_file_field_and_links_to_bodega(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    response = await client.get(f"{url}simple/demo/", headers={"Accept": PIP_ACCEPT})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON
    assert "Accept" in response.headers["Vary"]
    document = response.json()
    assert document["meta"]["api-version"] == "1.1"
    assert document["versions"] == ["1.0", "2.0"]
    files = {f["filename"]: f for f in document["files"]}
    wheel = files["demo-1.0-py3-none-any.whl"]
    built = build_wheel("demo", "1.0", requires_python=">=3.8,<4")
    assert wheel["hashes"] == {"sha256": built.sha256}
    assert wheel["requires-python"] == ">=3.8,<4"
    assert wheel["yanked"] == 'broken "build"'
    assert wheel["size"] == len(built.data)
    assert wheel["upload-time"] == "2026-01-02T03:04:05.000000Z"
    assert wheel["core-metadata"] == {"sha256": built.metadata_sha256}
    assert "dist-info-metadata" not in wheel
    assert files["demo-1.0.tar.gz"]["core-metadata"] is False
    for entry in document["files"]:
        absolute = httpx.URL(f"{url}simple/demo/").join(entry["url"])
        assert str(absolute).startswith(f"{url}files/demo/")


async def test_html_page_for_browsers_and_star_accept(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    for accept in ("*/*", None, "text/html"):
        headers = {"Accept": accept} if accept else {}
        response = await client.get(f"{url}simple/demo/", headers=headers)
        assert response.headers["Content-Type"].startswith("text/html")
    body = response.text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in body
    assert 'data-yanked="broken &quot;build&quot;"' in body
    assert "data-core-metadata=" in body
    assert 'href="../../files/demo/demo-2.0-py3-none-any.whl#sha256=' in body
    v1 = await client.get(
        f"{url}simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+html"}
    )
    assert v1.headers["Content-Type"] == "application/vnd.pypi.simple.v1+html"


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("simple/Demo/", "/simple/demo/"),
        ("simple/DEMO.", None),
        ("simple/demo", "/simple/demo/"),
        ("simple", "/simple/"),
        ("root/pypi/+simple/Demo/", "/root/pypi/+simple/demo/"),
    ],
)
async def test_redirects_to_the_normalized_slash_form(
    demo_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    path: str,
    location: str | None,
) -> None:
    url = await start_bodega()
    response = await client.get(url + path)
    if location is None:
        assert response.status_code == 400
    else:
        assert response.status_code == 301
        assert response.headers["Location"] == location


async def test_double_slashes_are_tolerated(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Pipenv's hash probe asks for /simple//six/ with Accept: */* and parses HTML."""
    url = await start_bodega()
    response = await client.get(f"{url}simple//demo/", headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.text.count("<a ") == 3


async def test_unknown_project_is_404_never_401_or_403(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    response = await client.get(f"{url}simple/no-such-project/")
    assert response.status_code == 404


async def test_devpi_layout_serves_the_same_tree(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    base = f"{url}root/pypi/+simple/demo/"
    page = await client.get(base, headers={"Accept": JSON})
    entry = page.json()["files"][0]
    file_url = httpx.URL(base).join(entry["url"])
    assert str(file_url).startswith(f"{url}root/pypi/files/demo/")
    response = await client.get(file_url)
    assert response.status_code == 200
    assert len(response.content) == entry["size"]


async def test_root_list_in_html_and_json(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    html = await client.get(f"{url}simple/")
    assert html.status_code == 200
    assert '<a href="demo/">demo</a>' in html.text
    as_json = await client.get(f"{url}simple/", headers={"Accept": JSON})
    assert as_json.headers["Content-Type"] == JSON
    assert json.loads(as_json.content)["projects"] == [{"name": "demo"}]
    assert as_json.headers["Vary"].startswith("Accept")


async def test_error_bodies_never_echo_markup(
    demo_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = await start_bodega()
    response = await client.get(f"{url}simple/%3Cscript%3E/?<script>")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
