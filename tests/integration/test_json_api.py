"""The PyPI JSON API built from the page and core metadata (spec item 40)."""

from urllib.parse import urljoin

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import FakeIndex

OLD = build_wheel("demo", "1.0", requires=["six"], summary="The old one")
NEW = build_wheel("demo", "2.0", requires=["six>=1.16", "attrs; extra == 'x'"], summary="Demo")
NEW_SDIST = build_sdist("demo", "2.0")
PRE = build_wheel("demo", "3.0rc1")


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", OLD, yanked="broken")
    fake_index.add("demo", NEW)
    fake_index.add("demo", NEW_SDIST)
    fake_index.add("demo", PRE, serve_metadata=False)
    return fake_index


@pytest.mark.parametrize(
    "path", ["pypi/demo/json", "pypi/demo/json/", "root/pypi/pypi/demo/json", "demo/json"]
)
async def test_project_json_describes_the_latest_final_release_and_every_release(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, path: str
) -> None:
    bodega = await start_bodega()
    response = await client.get(bodega + path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    info = document["info"]
    assert (info["name"], info["version"], info["summary"]) == ("demo", "2.0", "Demo")
    assert info["requires_dist"] == ["six>=1.16", "attrs; extra == 'x'"]
    assert sorted(document["releases"]) == ["1.0", "2.0", "3.0rc1"]
    assert {u["filename"] for u in document["urls"]} == {NEW.filename, NEW_SDIST.filename}
    wheel = next(u for u in document["urls"] if u["packagetype"] == "bdist_wheel")
    assert wheel["digests"] == {"sha256": NEW.sha256}
    assert wheel["size"] == NEW.size
    assert wheel["upload_time_iso_8601"].endswith("Z")
    assert "dist-info-metadata" not in wheel
    # Every URL resolves, against the request's URL, to a file bodega serves.
    for file in document["releases"]["2.0"]:
        served = await client.get(urljoin(bodega + path, file["url"]))
        assert served.status_code == 200
        assert served.content in (NEW.data, NEW_SDIST.data)


async def test_release_json_gives_that_release_with_yanked_state(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    document = (await client.get(f"{bodega}pypi/demo/1.0/json")).json()
    assert "releases" not in document
    assert document["info"]["version"] == "1.0"
    assert document["info"]["requires_dist"] == ["six"]
    assert document["info"]["yanked"] is True
    assert document["info"]["yanked_reason"] == "broken"
    assert [u["filename"] for u in document["urls"]] == [OLD.filename]


async def test_release_json_uses_metadata_bodega_extracted_itself(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    document = (await client.get(f"{bodega}pypi/demo/3.0rc1/json")).json()
    assert document["info"]["name"] == "demo"
    assert document["info"]["requires_dist"] is None  # PRE has no Requires-Dist at all
    assert document["urls"][0]["core-metadata"] == {"sha256": PRE.metadata_sha256}


async def test_non_normalized_names_redirect_and_unknown_releases_are_404(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    moved = await client.get(f"{bodega}pypi/Demo/json")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/pypi/demo/json"
    moved = await client.get(f"{bodega}pypi/Demo/2.0/json")
    assert moved.headers["Location"] == "/pypi/demo/2.0/json"
    assert (await client.get(f"{bodega}pypi/demo/9.9/json")).status_code == 404
    assert (await client.get(f"{bodega}pypi/no-such-project/json")).status_code == 404


async def test_a_release_without_any_metadata_is_404_not_an_empty_dependency_list(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", build_sdist("demo", "1.0"))
    bodega = await start_bodega()
    assert (await client.get(f"{bodega}pypi/demo/1.0/json")).status_code == 404
    project = (await client.get(f"{bodega}pypi/demo/json")).json()
    assert "requires_dist" not in project["info"]
    assert project["releases"]["1.0"][0]["digests"]["sha256"]


async def test_a_quarantined_project_lists_no_files_in_json(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", NEW)
    fake_index.set_status("demo", "quarantined")
    bodega = await start_bodega()
    document = (await client.get(f"{bodega}pypi/demo/json")).json()
    assert document["releases"] == {}
    assert document["urls"] == []
