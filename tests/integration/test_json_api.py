"""The PyPI JSON API built from the page and core metadata (spec item 40)."""

import hashlib
from urllib.parse import urljoin

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

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
    # As warehouse stores them: str(Requirement), markers in double quotes.
    assert info["requires_dist"] == ["six>=1.16", 'attrs; extra == "x"']
    assert sorted(document["releases"]) == ["1.0", "2.0", "3.0rc1"]
    assert {u["filename"] for u in document["urls"]} == {NEW.filename, NEW_SDIST.filename}
    wheel = next(u for u in document["urls"] if u["packagetype"] == "bdist_wheel")
    assert wheel["digests"] == {"sha256": NEW.sha256}
    assert wheel["python_version"] == "py3"
    assert wheel["size"] == NEW.size
    assert wheel["upload_time_iso_8601"].endswith("Z")
    assert "dist-info-metadata" not in wheel
    # Every URL resolves, against the request's URL, to a file bodega serves.
    for file in document["releases"]["2.0"]:
        served = await client.get(urljoin(bodega + path, file["url"]))
        assert served.status_code == 200
        assert served.content in (NEW.data, NEW_SDIST.data)


async def test_urls_keep_the_scheme_the_client_used_behind_a_tls_proxy(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """pip-tools matches these URLs against the simple page's links, which the client
    resolves against the https URL it asked for."""
    bodega = await start_bodega()
    headers = {"X-Forwarded-Proto": "https"}
    document = (await client.get(f"{bodega}pypi/demo/json", headers=headers)).json()
    https = bodega.replace("http://", "https://", 1)
    assert {u["url"] for u in document["urls"]} == {
        f"{https}files/demo/{NEW.filename}",
        f"{https}files/demo/{NEW_SDIST.filename}",
    }


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


async def test_an_sdist_only_release_is_described_from_its_pkg_info_downloaded_once(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    sdist = build_sdist("demo", "1.0", requires=["six>=1.16"], summary="Überall, 汉字")
    fake_index.add("demo", sdist)
    bodega = await start_bodega()
    for path in ("pypi/demo/1.0/json", "pypi/demo/json"):
        response = await client.get(bodega + path)
        assert response.status_code == 200
        info = response.json()["info"]
        assert (info["version"], info["summary"]) == ("1.0", "Überall, 汉字")
        assert info["requires_dist"] == ["six>=1.16"]
    # The sdist went through the verified file cache: a client's download is a hit.
    served = await client.get(f"{bodega}files/demo/{sdist.filename}")
    assert served.content == sdist.data
    assert fake_index.count("GET", sdist.filename) == 1


async def test_a_release_whose_metadata_cannot_be_had_is_described_from_the_page(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    # No hash on the page: bodega cannot verify the sdist, so it does not read it.
    fake_index.add("demo", build_sdist("demo", "1.0"), hash_in_page=False)
    bodega = await start_bodega()
    response = await client.get(f"{bodega}pypi/demo/1.0/json")
    assert response.status_code == 200
    info = response.json()["info"]
    assert (info["name"], info["version"], info["requires_dist"]) == ("demo", "1.0", None)
    assert fake_index.count("GET", ".tar.gz") == 0


async def test_non_ascii_metadata_reaches_the_client_intact(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("pinyin", build_wheel("pinyin", "1.0", summary="汉字拼音转换模块 – Łukasz"))
    bodega = await start_bodega()
    response = await client.get(f"{bodega}pypi/pinyin/json")
    assert response.json()["info"]["summary"] == "汉字拼音转换模块 – Łukasz"
    assert "汉字".encode() in response.content


async def test_releases_list_every_file_of_the_page_under_upstreams_spelling(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    legacy = [
        BuiltFile("pytz-2004d.tar.bz2", b"bz2 sdist", None),
        BuiltFile("pytz-2004d-py2.4.egg", b"an egg", None),
        BuiltFile("pytz-2004d.win32.exe", b"an installer", None),
        BuiltFile("pytz-0.6c11-1.noarch.rpm", b"an rpm", None),
    ]
    for file in [*legacy, build_wheel("pytz", "2024.1")]:
        fake_index.add("pytz", file)
    fake_index.set_versions("pytz", ["0.6c11", "2004d", "2004e", "2024.1"])
    bodega = await start_bodega()
    document = (await client.get(f"{bodega}pypi/pytz/json")).json()
    releases = {
        v: sorted(f["filename"] for f in files) for v, files in document["releases"].items()
    }
    assert releases == {
        "0.6c11": ["pytz-0.6c11-1.noarch.rpm"],
        "2004d": ["pytz-2004d-py2.4.egg", "pytz-2004d.tar.bz2", "pytz-2004d.win32.exe"],
        "2004e": [],
        "2024.1": ["pytz-2024.1-py3-none-any.whl"],
    }
    assert document["info"]["version"] == "2024.1"
    old = (await client.get(f"{bodega}pypi/pytz/2004d/json")).json()
    assert old["info"]["version"] == "2004d"
    assert {u["packagetype"] for u in old["urls"]} == {"sdist", "bdist_egg", "bdist_wininst"}


async def test_digests_gain_md5_and_blake2b_once_bodega_has_hashed_the_cached_file(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    assert (await client.get(f"{bodega}files/demo/{NEW.filename}")).content == NEW.data
    expected = {
        "sha256": NEW.sha256,
        "md5": hashlib.md5(NEW.data).hexdigest(),
        "blake2b_256": hashlib.blake2b(NEW.data, digest_size=32).hexdigest(),
    }

    async def digests() -> dict[str, dict[str, str]]:
        document = (await client.get(f"{bodega}pypi/demo/json")).json()
        return {f["filename"]: f["digests"] for f in document["urls"]}

    # The first request queues the hashing and answers with what is known; a later one has it.
    found = await eventually(digests, lambda d: len(d[NEW.filename]) == 3)
    assert found[NEW.filename] == expected
    assert found[NEW_SDIST.filename] == {"sha256": NEW_SDIST.sha256}  # not cached: not hashed


async def test_a_quarantined_project_lists_no_files_in_json(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", NEW)
    fake_index.set_status("demo", "quarantined")
    bodega = await start_bodega()
    document = (await client.get(f"{bodega}pypi/demo/json")).json()
    assert document["releases"] == {}
    assert document["urls"] == []
