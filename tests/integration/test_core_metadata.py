"""Core metadata bodega extracts itself when upstream offers none (PEP 658; spec 15, 23, 24)."""

import hashlib
import re
from pathlib import Path

import httpx

from tests.conftest import StartBodega
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_in_process, make_settings

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "text/html"}
# Large enough that a whole download would stand out against a few small ranges.
LARGE = build_wheel("demo", "2.0", requires=["six>=1"], payload_size=3_000_000)
SMALL = build_wheel("demo", "1.0")


def wheel_requests(index: FakeIndex, file: BuiltFile) -> list[dict[str, str]]:
    return [
        dict(r.headers)
        for r in index.requests
        if r.server == "files" and r.path.endswith("/" + file.filename)
    ]


async def json_entry(client: httpx.AsyncClient, bodega: str, filename: str) -> dict[str, object]:
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    entry: dict[str, object] = next(f for f in page["files"] if f["filename"] == filename)
    return entry


async def test_metadata_of_a_large_wheel_is_advertised_and_served_after_range_requests_only(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", LARGE, serve_metadata=False)
    bodega = await start_bodega()

    entry = await json_entry(client, bodega, LARGE.filename)
    assert entry["core-metadata"] == {"sha256": LARGE.metadata_sha256}
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert f'data-core-metadata="sha256={LARGE.metadata_sha256}"' in html

    metadata = await client.get(f"{bodega}files/demo/{LARGE.filename}.metadata")
    assert metadata.status_code == 200
    assert metadata.content == LARGE.metadata
    assert hashlib.sha256(metadata.content).hexdigest() == LARGE.metadata_sha256

    seen = wheel_requests(fake_index, LARGE)
    assert seen, "bodega read nothing of the wheel"
    assert all("Range" in headers for headers in seen), seen
    assert len(seen) <= 3
    # Upstream's (missing) .metadata was never asked for: bodega served its own.
    assert fake_index.count("GET", f"{LARGE.filename}.metadata") == 0


async def test_a_small_wheel_needs_one_suffix_range(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", SMALL, serve_metadata=False)
    bodega = await start_bodega()
    assert (await json_entry(client, bodega, SMALL.filename))["core-metadata"] == {
        "sha256": SMALL.metadata_sha256
    }
    assert [h["Range"] for h in wheel_requests(fake_index, SMALL)] == ["bytes=-65536"]


async def test_upstream_without_ranges_falls_back_to_one_verified_whole_download(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    fake_index.serves_ranges = False
    fake_index.add("demo", LARGE, serve_metadata=False)
    bodega = await start_bodega()
    entry = await json_entry(client, bodega, LARGE.filename)
    assert entry["core-metadata"] == {"sha256": LARGE.metadata_sha256}
    metadata = await client.get(f"{bodega}files/demo/{LARGE.filename}.metadata")
    assert metadata.content == LARGE.metadata
    # The whole wheel is now cached: a client download is served without upstream.
    before = len(wheel_requests(fake_index, LARGE))
    wheel = await client.get(f"{bodega}files/demo/{LARGE.filename}")
    assert wheel.content == LARGE.data
    assert len(wheel_requests(fake_index, LARGE)) == before


async def test_a_cached_wheel_gives_its_metadata_without_asking_upstream(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake_index.add("demo", LARGE)  # upstream offers metadata: bodega extracts nothing
    bodega = await start_bodega(index_ttl=0)
    assert (await client.get(f"{bodega}files/demo/{LARGE.filename}")).content == LARGE.data
    fake_index.add("demo", LARGE, serve_metadata=False)  # now it does not
    seen = len(wheel_requests(fake_index, LARGE))

    entry = await json_entry(client, bodega, LARGE.filename)
    assert entry["core-metadata"] == {"sha256": LARGE.metadata_sha256}
    metadata = await client.get(f"{bodega}files/demo/{LARGE.filename}.metadata")
    assert metadata.content == LARGE.metadata
    assert len(wheel_requests(fake_index, LARGE)) == seen


async def test_metadata_it_cannot_read_is_never_advertised(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    broken = BuiltFile("demo-3.0-py3-none-any.whl", b"this is no zip" * 1000, None)
    fake_index.add("demo", broken, serve_metadata=False)
    fake_index.add("demo", build_sdist("demo", "1.0"))
    bodega = await start_bodega()
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert all(f["core-metadata"] is False for f in page["files"])
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert "data-core-metadata" not in html
    for filename in (broken.filename, "demo-1.0.tar.gz"):
        missing = await client.get(f"{bodega}files/demo/{filename}.metadata")
        assert missing.status_code == 404


async def test_extracted_metadata_is_advertised_again_after_a_restart(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake_index.add("demo", SMALL, serve_metadata=False)
    settings = make_settings(data_dir=tmp_path / "data", upstream=fake_index.simple_url)
    async with bodega_in_process(settings) as first:
        await json_entry(client, first, SMALL.filename)
    fake_index.set_down(True)
    second = await start_bodega(offline=True)
    html = (await client.get(f"{second}simple/demo/", headers=HTML)).text
    found = re.search(r'data-core-metadata="sha256=([0-9a-f]{64})"', html)
    assert found is not None
    assert found.group(1) == SMALL.metadata_sha256
    served = await client.get(f"{second}files/demo/{SMALL.filename}.metadata")
    assert served.content == SMALL.metadata


async def test_one_page_fetch_extracts_only_the_newest_release(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """A bound on the upstream work (and the wait) one cold page fetch causes: the newest
    release is what a resolver asks for first; older ones use the clients' fallbacks."""
    wheels = [build_wheel("demo", f"1.{minor}") for minor in range(5)]
    for wheel in wheels:
        fake_index.add("demo", wheel, serve_metadata=False)
    bodega = await start_bodega()
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    advertised = {f["filename"] for f in page["files"] if f["core-metadata"]}
    assert advertised == {wheels[-1].filename}
    fetched = {r.path.rsplit("/", 1)[-1] for r in fake_index.requests if r.server == "files"}
    assert fetched == {wheels[-1].filename}
