"""Core metadata bodega extracts itself when upstream offers none (PEP 658; spec 15, 23, 24),
behind the page that asked for it: no client waits for it (issue 11)."""

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bodega.services import Services
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_and_services, make_settings

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "text/html"}
# Large enough that a whole download would stand out against a few small ranges.
LARGE = build_wheel("demo", "2.0", requires=["six>=1"], payload_size=3_000_000)
SMALL = build_wheel("demo", "1.0")

Started = tuple[str, Services]
Start = Callable[..., Awaitable[Started]]


@pytest.fixture
async def start(tmp_path: Path, fake_index: FakeIndex, database_url: str) -> AsyncIterator[Start]:
    """The real bodega in front of the fake index, with its services, to wait for the
    extraction it does in the background."""
    async with AsyncExitStack() as stack:

        async def started(**overrides: Any) -> Started:
            overrides.setdefault("data_dir", tmp_path / "data")
            overrides.setdefault("upstream", fake_index.simple_url)
            overrides.setdefault("database", database_url)
            return await stack.enter_async_context(bodega_and_services(make_settings(**overrides)))

        yield started


def wheel_requests(index: FakeIndex, file: BuiltFile) -> list[dict[str, str]]:
    return [
        dict(r.headers)
        for r in index.requests
        if r.server == "files" and r.path.endswith("/" + file.filename)
    ]


def files_requested(index: FakeIndex) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in index.requests if r.server == "files"]


async def page_files(
    client: httpx.AsyncClient, bodega: str, project: str = "demo"
) -> dict[str, object]:
    page = (await client.get(f"{bodega}simple/{project}/", headers=JSON)).json()
    return {f["filename"]: f["core-metadata"] for f in page["files"]}


async def extracted(client: httpx.AsyncClient, started: Started, filename: str) -> object:
    """The page's word on a file's metadata once bodega's background work is done."""
    bodega, services = started
    await page_files(client, bodega)  # the first, cold request starts the extraction
    await services.indexes.mirror("root/pypi").core_metadata.settled()
    return (await page_files(client, bodega))[filename]


async def test_metadata_of_a_large_wheel_is_advertised_and_served_after_range_requests_only(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", LARGE, serve_metadata=False)
    started = await start()
    bodega = started[0]

    assert await extracted(client, started, LARGE.filename) == {"sha256": LARGE.metadata_sha256}
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
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", SMALL, serve_metadata=False)
    started = await start()
    assert await extracted(client, started, SMALL.filename) == {"sha256": SMALL.metadata_sha256}
    assert [h["Range"] for h in wheel_requests(fake_index, SMALL)] == ["bytes=-65536"]


async def test_a_cold_page_is_answered_while_extraction_waits_upstream(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """No client waits for work bodega does for itself: the page goes out as soon as
    upstream's page is read; a later request advertises the metadata, under a new ETag."""
    fake_index.add("demo", SMALL, serve_metadata=False)
    fake_index.hold("ranges")
    bodega, services = await start()

    cold = await client.get(f"{bodega}simple/demo/", headers=JSON)
    assert cold.status_code == 200
    assert cold.json()["files"][0]["core-metadata"] is False
    # The extraction is under way and held upstream, unanswered.
    await _until(lambda: len(wheel_requests(fake_index, SMALL)) == 1)

    fake_index.release("ranges")
    await services.indexes.mirror("root/pypi").core_metadata.settled()
    later = await client.get(f"{bodega}simple/demo/", headers=JSON)
    assert later.json()["files"][0]["core-metadata"] == {"sha256": SMALL.metadata_sha256}
    assert later.headers["ETag"] != cold.headers["ETag"]
    again = await client.get(
        f"{bodega}simple/demo/", headers={**JSON, "If-None-Match": cold.headers["ETag"]}
    )
    assert again.status_code == 200  # the client's copy is outdated: it gets the new one


async def test_extraction_waits_while_a_client_is_served_and_runs_once_it_is_done(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """An installer's burst does not share the CPU with extraction it does not wait for: a
    cold `uv pip compile` through a far upstream took 1.3x as long with it (issue 11)."""
    other = build_wheel("other", "1.0")
    fake_index.add("other", other)  # its page offers metadata: nothing to extract for it
    fake_index.add("demo", SMALL, serve_metadata=False)
    fake_index.pause(other.filename, 100)  # a download in flight until reset_faults()
    bodega, services = await start()
    await client.get(f"{bodega}simple/other/", headers=JSON)

    async with client.stream("GET", f"{bodega}files/other/{other.filename}") as download:
        body = download.aiter_raw()
        await anext(body)  # the first bytes: the client is being served
        cold = await client.get(f"{bodega}simple/demo/", headers=JSON)
        assert cold.json()["files"][0]["core-metadata"] is False
        await asyncio.sleep(0.3)  # long enough for an extraction that did not wait to start
        assert wheel_requests(fake_index, SMALL) == []  # queued, not started
        fake_index.reset_faults()
        async for _ in body:
            pass

    await services.indexes.mirror("root/pypi").core_metadata.settled()
    assert (await page_files(client, bodega))[SMALL.filename] == {"sha256": SMALL.metadata_sha256}
    assert len(wheel_requests(fake_index, SMALL)) == 1


# Platform wheels of the newest release, all listed before its pure wheel (c < p): more
# than the 32 a page fetch used to extract, in page order.
PLATFORMS = [
    "manylinux_2_17_x86_64",
    "manylinux_2_17_aarch64",
    "musllinux_1_2_x86_64",
    "macosx_11_0_arm64",
    "win_amd64",
    "win32",
]
PLATFORM_WHEELS = [
    build_wheel("demo", "2.0", tag=f"cp3{minor}-cp3{minor}-{platform}")
    for minor in range(8, 15)
    for platform in PLATFORMS
]
PURE = build_wheel("demo", "2.0")


async def test_the_newest_release_is_extracted_pure_and_commonest_wheels_first(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    old = build_wheel("demo", "1.0")
    for wheel in [old, *PLATFORM_WHEELS, PURE]:
        fake_index.add("demo", wheel, serve_metadata=False)
    assert len(PLATFORM_WHEELS) > 32
    fake_index.hold("ranges")
    bodega, services = await start()

    await page_files(client, bodega)
    # Four extractions at once; while upstream holds them, the first four are in flight.
    await _until(lambda: len(files_requested(fake_index)) == 4)
    first = set(files_requested(fake_index))
    newest_linux = {f"demo-2.0-cp3{m}-cp3{m}-manylinux_2_17_x86_64.whl" for m in (14, 13, 12)}
    assert first == {PURE.filename} | newest_linux

    fake_index.release("ranges")
    await services.indexes.mirror("root/pypi").core_metadata.settled()
    advertised = {name for name, meta in (await page_files(client, bodega)).items() if meta}
    assert advertised == {w.filename for w in [*PLATFORM_WHEELS, PURE]}  # the rest as well
    assert old.filename not in files_requested(fake_index)


async def test_a_refresh_never_walks_back_to_an_older_release(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """Each forced refresh used to extract the next older release (Django 6.1.3, 6.1.2, ...):
    the newest one without metadata was picked after the newest had got it."""
    wheels = [build_wheel("demo", f"1.{minor}") for minor in range(5)]
    for wheel in wheels:
        fake_index.add("demo", wheel, serve_metadata=False)
    bodega, services = await start()
    await page_files(client, bodega)
    await services.indexes.mirror("root/pypi").core_metadata.settled()
    for _ in range(2):
        await client.get(f"{bodega}simple/demo/", headers={"Cache-Control": "no-cache"})
        await services.indexes.mirror("root/pypi").core_metadata.settled()
    advertised = {name for name, meta in (await page_files(client, bodega)).items() if meta}
    assert advertised == {wheels[-1].filename}
    assert set(files_requested(fake_index)) == {wheels[-1].filename}


async def test_a_downloaded_wheel_gets_its_metadata_from_the_cached_file(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """An older release (not extracted for the page) that a client downloads: its METADATA
    is read from the verified blob, with no further upstream request."""
    fake_index.add("demo", LARGE, serve_metadata=False)
    fake_index.add("demo", SMALL, serve_metadata=False)
    bodega, services = await start()
    await page_files(client, bodega)
    assert (await client.get(f"{bodega}files/demo/{SMALL.filename}")).content == SMALL.data
    await services.indexes.mirror("root/pypi").core_metadata.settled()

    assert (await page_files(client, bodega))[SMALL.filename] == {"sha256": SMALL.metadata_sha256}
    assert [h.get("Range") for h in wheel_requests(fake_index, SMALL)] == [None]
    served = await client.get(f"{bodega}files/demo/{SMALL.filename}.metadata")
    assert served.content == SMALL.metadata


async def test_an_upstream_ignoring_range_sends_each_wheel_once_and_is_remembered(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """Its 200 to the range request is the wheel's download, teed into the cache and
    verified; later extractions from that host download whole at once, and only the
    wheels clients are likely to fetch anyway."""
    fake_index.serves_ranges = False
    fake_index.add("demo", LARGE, serve_metadata=False)
    started = await start()
    bodega, services = started
    assert await extracted(client, started, LARGE.filename) == {"sha256": LARGE.metadata_sha256}
    assert len(wheel_requests(fake_index, LARGE)) == 1
    # The whole wheel is cached: a client download is served without upstream.
    assert (await client.get(f"{bodega}files/demo/{LARGE.filename}")).content == LARGE.data
    metadata = await client.get(f"{bodega}files/demo/{LARGE.filename}.metadata")
    assert metadata.content == LARGE.metadata
    assert len(wheel_requests(fake_index, LARGE)) == 1

    pure = build_wheel("other", "1.0")
    rare = build_wheel("other", "1.0", tag="cp312-cp312-win32")
    for wheel in (pure, rare):
        fake_index.add("other", wheel, serve_metadata=False)
    await page_files(client, bodega, "other")
    await services.indexes.mirror("root/pypi").core_metadata.settled()
    assert [h.get("Range") for h in wheel_requests(fake_index, pure)] == [None]
    assert wheel_requests(fake_index, rare) == []
    assert (await page_files(client, bodega, "other"))[pure.filename] == {
        "sha256": pure.metadata_sha256
    }


async def test_a_cached_wheel_gives_its_metadata_without_asking_upstream(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    fake_index.add("demo", LARGE)  # upstream offers metadata: bodega extracts nothing
    started = await start(index_ttl=0)
    bodega, _ = started
    assert (await client.get(f"{bodega}files/demo/{LARGE.filename}")).content == LARGE.data
    fake_index.add("demo", LARGE, serve_metadata=False)  # now it does not
    seen = len(wheel_requests(fake_index, LARGE))

    assert await extracted(client, started, LARGE.filename) == {"sha256": LARGE.metadata_sha256}
    metadata = await client.get(f"{bodega}files/demo/{LARGE.filename}.metadata")
    assert metadata.content == LARGE.metadata
    assert len(wheel_requests(fake_index, LARGE)) == seen


async def test_metadata_it_cannot_read_is_never_advertised(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    broken = BuiltFile("demo-3.0-py3-none-any.whl", b"this is no zip" * 1000, None)
    fake_index.add("demo", broken, serve_metadata=False)
    fake_index.add("demo", build_sdist("demo", "1.0"))
    started = await start()
    bodega, _ = started
    assert await extracted(client, started, broken.filename) is False
    page = (await client.get(f"{bodega}simple/demo/", headers=JSON)).json()
    assert all(f["core-metadata"] is False for f in page["files"])
    html = (await client.get(f"{bodega}simple/demo/", headers=HTML)).text
    assert "data-core-metadata" not in html
    for filename in (broken.filename, "demo-1.0.tar.gz"):
        missing = await client.get(f"{bodega}files/demo/{filename}.metadata")
        assert missing.status_code == 404


async def test_extracted_metadata_is_advertised_again_after_a_restart(
    fake_index: FakeIndex,
    start: Start,
    client: httpx.AsyncClient,
    tmp_path: Path,
    database_url: str,
) -> None:
    fake_index.add("demo", SMALL, serve_metadata=False)
    settings = make_settings(
        data_dir=tmp_path / "data", upstream=fake_index.simple_url, database=database_url
    )
    async with bodega_and_services(settings) as first:
        await extracted(client, first, SMALL.filename)
    fake_index.set_down(True)
    second, _ = await start(offline=True)
    html = (await client.get(f"{second}simple/demo/", headers=HTML)).text
    found = re.search(r'data-core-metadata="sha256=([0-9a-f]{64})"', html)
    assert found is not None
    assert found.group(1) == SMALL.metadata_sha256
    served = await client.get(f"{second}files/demo/{SMALL.filename}.metadata")
    assert served.content == SMALL.metadata


async def _until(condition: Callable[[], bool]) -> None:
    """Waits for what bodega does in the background to show upstream."""
    deadline = time.monotonic() + 30  # a bound on a wait, not a measured result
    while not condition():
        assert time.monotonic() < deadline, "bodega never asked upstream"
        await asyncio.sleep(0.01)


async def test_metadata_landing_while_its_page_is_refreshed_is_kept(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """The refresh reads what was extracted before upstream answers; what lands meanwhile
    is laid over the new page too, not only over the one it replaces."""
    fake_index.add("demo", SMALL, serve_metadata=False)
    fake_index.hold("ranges")
    bodega, services = await start()
    await page_files(client, bodega)
    await _until(lambda: len(wheel_requests(fake_index, SMALL)) == 1)

    fake_index.hold("pages")
    refresh = asyncio.ensure_future(
        client.get(f"{bodega}simple/demo/", headers={**JSON, "Cache-Control": "no-cache"})
    )
    await _until(lambda: fake_index.count("GET", "/simple/demo/") == 2)
    fake_index.release("ranges")
    await services.indexes.mirror(
        "root/pypi"
    ).core_metadata.settled()  # landed while upstream holds the refresh
    fake_index.add("demo", build_sdist("demo", "1.0"))  # a new page, not a 304
    fake_index.release("pages")
    refreshed = await refresh
    assert len(refreshed.json()["files"]) == 2
    assert (await page_files(client, bodega))[SMALL.filename] == {"sha256": SMALL.metadata_sha256}


async def test_metadata_of_a_zip64_wheel_is_served(
    fake_index: FakeIndex, start: Start, client: httpx.AsyncClient
) -> None:
    """Issue 17: ZIP64 wheels (the largest, e.g. with CUDA libraries) had no metadata."""
    zip64 = build_wheel("demo", "3.0", payload_size=3_000_000, zip64=True)
    fake_index.add("demo", zip64, serve_metadata=False)
    bodega, _ = await start()
    metadata = await client.get(f"{bodega}files/demo/{zip64.filename}.metadata")
    assert metadata.status_code == 200
    assert metadata.content == zip64.metadata
    assert all("Range" in headers for headers in wheel_requests(fake_index, zip64))
